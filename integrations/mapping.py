"""Field mappings: from a dataset row to a destination payload, and its hash."""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_datetime

from exports.datasets import Dataset
from mktintegration import bounds


class MappingError(ValueError):
    pass


def template_fields(template: str) -> list[str]:
    """The dataset fields a template such as '{first_name} {last_name}' uses.

    Only plain ``{field}`` placeholders: a format spec or conversion (``{name:>1000000}``,
    ``{name!r}``) is refused, so a template's output stays the size of its fields (use a
    transform to change a value)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise MappingError(f"template {template!r} is malformed: {exc}") from None
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if spec or conversion:
            shown = (
                f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
            )
            raise MappingError(
                f"template placeholder {shown[:40]!r} has a format; write {{{name[:30]}}} and "
                "pick a transform instead"
            )
        if not name:
            raise MappingError("template placeholders name a field: {first_name}, not {}")
        names.append(name)
    return names


def _as_datetime(value: Any) -> datetime:
    """A value (not None: transforms pass None through) as an aware date-time."""
    if isinstance(value, datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is None:
        raise MappingError(f"{value!r} is not a date-time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _transform(kind: str, value: Any) -> Any:
    if not kind:
        return value
    if value is None:
        return None
    if kind == "text":
        return str(value)
    if kind == "lower":
        return str(value).lower()
    if kind == "upper":
        return str(value).upper()
    if kind == "trim":
        return str(value).strip()
    if kind == "date":
        moment = value if isinstance(value, date) and not isinstance(value, datetime) else None
        return (moment or _as_datetime(value).date()).isoformat()
    if kind == "epoch_ms":
        return int(_as_datetime(value).timestamp() * 1000)
    if kind == "bool_text":
        return "true" if value in (True, 1, "1", "true", "t") else "false"
    if kind == "number":
        return float(value) if isinstance(value, Decimal | float) else int(value)
    raise MappingError(f"unknown transform {kind!r}")


def value_map_check(value_map: Any) -> dict[str, str]:
    """A value map is text -> text, at most bounds.MAPPING_VALUES entries of bounded length."""
    if not isinstance(value_map, dict):
        raise MappingError("the value map is an object of source value -> destination value")
    if len(value_map) > bounds.MAPPING_VALUES:
        raise MappingError(
            f"the value map has {len(value_map)} entries; at most {bounds.MAPPING_VALUES}"
        )
    for source, target in value_map.items():
        if not isinstance(target, str):
            raise MappingError(f"value map: {source!r} maps to {target!r}; give text")
        for text in (source, target):
            try:
                bounds.text_check("value map", text)
            except bounds.BoundError as exc:
                raise MappingError(exc.message) from None
    return value_map


@dataclass(frozen=True)
class CompiledMapping:
    destination: str
    source: str
    template: str
    transform: str
    value_map: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def value(self, row: dict[str, Any]) -> Any:
        raw: Any
        if self.template:
            safe = {k: ("" if v is None else v) for k, v in row.items()}
            raw = self.template.format_map(safe).strip()
        else:
            raw = row.get(self.source)
        if self.value_map:
            raw = self.value_map.get("" if raw is None else str(raw), raw)
        return _transform(self.transform, raw)


def compile_mappings(mappings, dataset: Dataset) -> list[CompiledMapping]:
    """Check each mapping's source against the dataset and freeze it for the hot path."""
    compiled = []
    for mapping in mappings:
        used = template_fields(mapping.template) if mapping.template else [mapping.source_field]
        unknown = [name for name in used if name not in dataset.field_names]
        if unknown:
            raise MappingError(
                f"{', '.join(unknown)} is not a field of {dataset.name}; fields: "
                f"{', '.join(dataset.field_names)}"
            )
        compiled.append(
            CompiledMapping(
                mapping.destination_field,
                mapping.source_field,
                mapping.template,
                mapping.transform,
                dict(mapping.value_map or {}),
            )
        )
    return compiled


def source_fields(compiled: list[CompiledMapping], extra: list[str]) -> list[str]:
    names = list(extra)
    for mapping in compiled:
        for name in template_fields(mapping.template) if mapping.template else [mapping.source]:
            if name not in names:
                names.append(name)
    return names


def build_payload(compiled: list[CompiledMapping], row: dict[str, Any]) -> dict[str, Any]:
    payload = {}
    for mapping in compiled:
        if mapping.template or mapping.transform or mapping.value_map:
            payload[mapping.destination] = mapping.value(row)
        else:  # the common case, without a call per value
            payload[mapping.destination] = row.get(mapping.source)
    return payload


def _json_default(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot hash {type(value).__name__}")


def stable_hash(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()


_SCALARS = (str, int, float, bool, type(None))


def payload_hash(head: tuple[str, ...], payload: dict[str, Any]) -> str:
    """The hash of a payload (and what it is sent as), on the planner's hot path.

    Payload values are scalars from the database, so their repr is stable and a sorted join
    costs a third of a JSON encoding; anything else falls back to stable_hash.
    """
    if not all(isinstance(v, _SCALARS) for v in payload.values()):
        return stable_hash(*head, payload)
    text = "\x1f".join((*head, *(f"{k}\x1e{v!r}" for k, v in sorted(payload.items()))))
    return hashlib.sha256(text.encode()).hexdigest()
