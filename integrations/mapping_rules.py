"""The one validator of a sync's field mappings, used by the admin's formset, the configure
API and the services (``sync_validate``), so each rule is stated once and every path refuses
the same mappings with the same words.

Each problem names the mapping (its position) and the field of it at fault. The rules:

- a mapping has a source field or a template (one of them); the fields they use exist in the
  dataset; a template has plain ``{field}`` placeholders; its value map is text -> text;
- its destination field is mapped once, exists at the destination and is writable;
- the value it sends fits the destination field's kind: a text source is refused for a number,
  date or yes/no field unless a transform makes it one (``city -> numberofemployees`` would
  dead-letter every record), only text goes to an e-mail field, and a value map's targets
  must be values the field takes;
- every field the destination requires is mapped (or is the match field).

``suggested_transform`` says which transform makes a source type fit a destination kind (the
mapping editor offers it); every suggestion passes these rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from exports.datasets import Dataset, FieldType
from integrations.connectors.values import ValueKind, value_map_problems
from integrations.mapping import MappingError, template_fields, value_map_check


@dataclass(frozen=True)
class MappingProblem:
    index: int | None  # the mapping's position; None: about the mappings as a whole
    field: str  # source_field, template, destination_field, transform or value_map
    message: str


# What a transform turns any value into (None: the value keeps its own type).
_TRANSFORMED = {
    "text": FieldType.TEXT,
    "lower": FieldType.TEXT,
    "upper": FieldType.TEXT,
    "trim": FieldType.TEXT,
    "bool_text": FieldType.TEXT,
    "date": FieldType.DATETIME,  # an ISO date, which date fields take
    "epoch_ms": FieldType.INT,
    "number": FieldType.DECIMAL,
}
# The source types each destination kind takes (date fields also take epoch milliseconds).
_TAKES = {
    ValueKind.NUMBER: {FieldType.INT, FieldType.DECIMAL},
    ValueKind.DATE: {FieldType.DATETIME, FieldType.INT},
    ValueKind.DATETIME: {FieldType.DATETIME, FieldType.INT},
    ValueKind.BOOL: {FieldType.BOOL},
    ValueKind.EMAIL: {FieldType.TEXT},
}
_KIND_WORDS = {
    ValueKind.NUMBER: "a number",
    ValueKind.DATE: "a date",
    ValueKind.DATETIME: "a date-time",
    ValueKind.BOOL: "a yes/no value",
    ValueKind.EMAIL: "an e-mail address",
}
_FIXES = {
    ValueKind.NUMBER: "map a number field, or pick the number transform if the text holds numbers",
    ValueKind.DATE: "map a date field, or pick the date or epoch_ms transform",
    ValueKind.DATETIME: "map a date field, or pick the epoch_ms transform",
    ValueKind.BOOL: "map a true/false field",
    ValueKind.EMAIL: "map a text field holding e-mail addresses",
}
# The transform that makes a source type fit a destination kind (the editor's suggestion).
_SUGGESTED: dict[tuple[str, str], str] = {
    (FieldType.TEXT, ValueKind.NUMBER): "number",
    (FieldType.TEXT, ValueKind.DATE): "date",
    (FieldType.TEXT, ValueKind.DATETIME): "epoch_ms",
    (FieldType.DATETIME, ValueKind.DATE): "date",
    (FieldType.BOOL, ValueKind.TEXT): "bool_text",
    (FieldType.BOOL, ValueKind.CHOICE): "bool_text",
}


def suggested_transform(source_type: FieldType | str, kind: str) -> str:
    """The transform for a source of ``source_type`` sent to a field of ``kind`` ("": none)."""
    return _SUGGESTED.get((str(source_type), str(kind)), "")


def suggested_transforms() -> dict[str, str]:
    """Every suggestion as "source type:destination kind" -> transform (for the editor's JS)."""
    return {f"{source}:{kind}": transform for (source, kind), transform in _SUGGESTED.items()}


def _sent_type(dataset: Dataset, mapping) -> FieldType | None:
    """The type of what the mapping sends (None when its source is unknown)."""
    transformed = _TRANSFORMED.get(mapping.transform or "")
    if transformed is not None:
        return transformed
    if mapping.template:
        return FieldType.TEXT
    if mapping.source_field in dataset.field_names:
        return dataset.field(mapping.source_field).type
    return None


def mapping_problems(
    mappings: list,
    *,
    dataset: Dataset,
    fields: dict | None,
    label: str = "the destination",
    object_name: str = "",
    match_field: str = "",
) -> list[MappingProblem]:
    """Everything wrong with these mappings (FieldMapping instances, saved or not).

    ``fields``: the destination object's fields by name, or None when they are not known (a
    connection not saved yet, the vendor unreachable): the checks against them are skipped.
    """
    problems: list[MappingProblem] = []

    def add(index, field, message):
        problems.append(MappingProblem(index, field, message))

    targets: set[str] = set()
    for index, mapping in enumerate(mappings):
        source, template = mapping.source_field, mapping.template
        if bool(source) == bool(template):
            add(index, "source_field", "give a source field or a template (one of them)")
        else:
            try:
                used = template_fields(template) if template else [source]
            except MappingError as exc:
                add(index, "template", str(exc))
                used = []
            unknown = [name for name in used if name not in dataset.field_names]
            if unknown:
                add(
                    index,
                    "template" if template else "source_field",
                    f"{', '.join(unknown)} is not a field of {dataset.name}; fields: "
                    f"{', '.join(dataset.field_names)}",
                )
        try:
            value_map_check(mapping.value_map or {})
        except MappingError as exc:
            add(index, "value_map", str(exc))
        target = mapping.destination_field
        if target in targets:
            add(index, "destination_field", f"{target!r} is mapped twice")
        targets.add(target)
        if fields is None:
            continue
        spec = fields.get(target)
        if spec is None:
            sample = ", ".join(sorted(fields)[:30])
            where = f"{label} ({object_name})" if object_name else label
            add(
                index,
                "destination_field",
                f"{target!r} does not exist at {where}; fields include: {sample}",
            )
            continue
        if spec.read_only:
            add(index, "destination_field", f"{target!r} is read-only at the destination")
            continue
        sent = _sent_type(dataset, mapping)
        takes = _TAKES.get(spec.kind)
        if takes is not None and sent is not None and sent not in takes and not mapping.value_map:
            what = (template and "a template") or f"{source} ({sent.value})"
            add(
                index,
                "transform" if mapping.transform else "destination_field",
                f"{target} at {label} takes {_KIND_WORDS[spec.kind]}; {what} is not one: "
                f"{_FIXES[spec.kind]}",
            )
        for problem in value_map_problems(spec, mapping.value_map or {}):
            add(index, "value_map", f"value map: {problem}")
    if fields is not None:
        missing = sorted(
            name
            for name, spec in fields.items()
            if spec.required and name not in targets and name != match_field
        )
        if missing:
            add(None, "destination_field", f"{label} requires {', '.join(missing)}: map them")
    return problems
