"""The mapping editor's choices: the dataset's fields (with type and an example value) as
sources, the vendor's writable fields (label, type, required, unique) as destinations, the
template's placeholders and the transform the two types suggest.

Built once per formset (``mapping_editor``): one small query of the backbone per dataset for
the examples, and the destination's field list through the selectors' cache. What is chosen
is checked by the one validator (integrations.mapping_rules), not by these lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django import forms
from django.core.validators import MaxLengthValidator
from django.db import connections

from audit.models import Outcome
from audit.pages import admin_actor
from audit.services import access_log_write
from exports.backbone.router import backbone_alias
from exports.datasets import DATASETS, Dataset, DatasetField, FieldType
from exports.guardrails import export_regions
from exports.query import Dialect, ExportQuery, where_sql
from integrations.connectors import REGISTRY
from integrations.connectors.base import DestinationField
from integrations.mapping_rules import suggested_transforms
from integrations.selectors import sync_destination_fields
from mktintegration.errors import ConnectorError

EXAMPLE_ROWS = 20  # rows read for the examples: the first non-empty value of each field
EXAMPLE_CHARS = 30


@dataclass
class MappingEditor:
    """What every mapping row of one sync's editor offers."""

    dataset: Dataset | None
    source_choices: list  # (name, label) or, dataset unknown, (dataset label, [(name, label)])
    source_types: dict[str, str]  # field name -> type (the JS's transform suggestion)
    source_titles: dict[str, str]  # field name -> its description (the option's tooltip)
    template_help: str
    destination: dict[str, DestinationField] | None  # None: a text input, ``reason`` says why
    destination_error: ConnectorError | None = None  # the vendor did not answer
    reason: str = ""
    suggestions: dict[str, str] = field(default_factory=suggested_transforms)

    @property
    def destination_choices(self) -> list[tuple[str, str]]:
        offered = [f for f in (self.destination or {}).values() if not f.read_only]
        offered.sort(key=lambda f: (not f.required, f.label.casefold(), f.name))
        return [("", "---------"), *((f.name, destination_label(f)) for f in offered)]

    def source_type(self, name: str) -> str:
        return self.source_types.get(name, "")

    def destination_kind(self, name: str) -> str:
        spec = (self.destination or {}).get(name)
        return str(spec.kind) if spec else ""


def destination_label(spec: DestinationField) -> str:
    """``Number of Employees [numberofemployees] (number, required)``."""
    notes = [
        spec.type,
        *(word for word, on in (("required", spec.required), ("unique", spec.unique)) if on),
    ]
    return f"{spec.label} [{spec.name}] ({', '.join(notes)})"


def _shown(spec: DatasetField, value: Any) -> str:
    if spec.type == FieldType.BOOL:
        text = "true" if value in (True, 1, "1", "t", "true") else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    else:
        text = " ".join(str(value).split())
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


def field_examples(dataset: Dataset, *, names: list[str], user) -> dict[str, str]:
    """The first non-empty value of each named field among the first EXAMPLE_ROWS rows (by
    key: an index serves it on any size) of the regions the user may read."""
    if not names:
        return {}
    specs = [dataset.field(name) for name in names]
    connection = connections[backbone_alias()]
    dialect = Dialect(connection.vendor)
    query = ExportQuery(dataset=dataset, fields=[], regions=export_regions(user=user))
    where, params = where_sql(query, dialect)
    columns = ", ".join(spec.sql for spec in specs)
    key = dataset.field(dataset.key).sql
    # Column expressions come from the dataset registry; the regions are parameters.
    sql = f"SELECT {columns} FROM {dataset.from_sql}{where} ORDER BY {key} LIMIT {EXAMPLE_ROWS}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    examples: dict[str, str] = {}
    for row in rows:
        for spec, value in zip(specs, row, strict=True):
            if spec.name not in examples and value not in (None, ""):
                examples[spec.name] = _shown(spec, value)
    return examples


def source_label(spec: DatasetField, example: str | None) -> str:
    """``employees (int), e.g. 250`` (the description is the option's tooltip)."""
    label = f"{spec.name} ({spec.type.value})"
    return f"{label}, e.g. {example}" if example else label


def _examples(dataset: Dataset, *, request, may_change: bool) -> dict[str, str]:
    """Examples the user may see: personal fields only with the dataset's permission (the
    read is access-logged), the others with it or to who may change the sync."""
    user = request.user
    may_read = user.has_perm(dataset.permission)
    names = [f.name for f in dataset.fields if may_read or (may_change and not f.personal)]
    examples = field_examples(dataset, names=names, user=user)
    personal = [f.name for f in dataset.fields if f.personal and f.name in examples]
    if personal:
        access_log_write(
            **admin_actor(request),
            dataset=dataset.name,
            fields=personal,
            rows=1,
            outcome=Outcome.OK,
            detail="example values in the sync's mapping editor",
        )
    return examples


def _sources(datasets: list[Dataset], *, request, may_change: bool):
    choices: list = []
    types: dict[str, str] = {}
    for dataset in datasets:
        examples = _examples(dataset, request=request, may_change=may_change)
        group = [(f.name, source_label(f, examples.get(f.name))) for f in dataset.fields]
        choices.append((dataset.label, group))
        types.update({f.name: f.type.value for f in dataset.fields})
    if len(datasets) == 1:
        choices = choices[0][1]
    else:  # a name in several datasets with different types: no suggestion from it
        types = {
            name: kind
            for name, kind in types.items()
            if len({d.field(name).type for d in datasets if name in d.field_names}) == 1
        }
    return [("", "--------- (or a template)"), *choices], types


def template_help(datasets: list[Dataset]) -> str:
    """The template's help: the placeholders the dataset offers (mapping.template_fields)."""
    names = list(dict.fromkeys(name for d in datasets for name in d.field_names))
    texts = [f.name for f in datasets[0].fields if f.type == FieldType.TEXT][:2]
    example = " ".join(f"{{{name}}}" for name in texts)
    return (
        "Instead of a source field: text with the dataset's fields as placeholders, e.g. "
        f"'{example}'. Placeholders: {', '.join(f'{{{name}}}' for name in names)}"
    )


def _destination(sync) -> tuple[dict | None, ConnectorError | None, str]:
    connector = REGISTRY.get(sync.connection.vendor) if sync.connection_id else None
    if connector is None:
        return None, None, "Type the field's name: choose and save the connection to pick it."
    if sync.destination_object not in connector.objects:
        return (
            None,
            None,
            (
                f"Type the field's name: choose {connector.label}'s destination object "
                f"({', '.join(connector.objects)}) and save to pick it."
            ),
        )
    try:
        return sync_destination_fields(sync), None, ""
    except ConnectorError as exc:
        return (
            None,
            exc,
            (f"Type the field's name: {connector.label}'s fields could not be read ({exc})."),
        )


def mapping_editor(*, sync, request, may_change: bool) -> MappingEditor:
    """The editor for ``sync`` (saved or not) as ``request.user`` sees it."""
    dataset = DATASETS.get(sync.dataset)
    datasets = [dataset] if dataset else list(DATASETS.values())
    choices, types = _sources(datasets, request=request, may_change=may_change)
    titles = {f.name: f.description for d in reversed(datasets) for f in d.fields}
    fields, error, reason = _destination(sync)
    return MappingEditor(
        dataset=dataset,
        source_choices=choices,
        source_types=types,
        source_titles=titles,
        template_help=template_help(datasets),
        destination=fields,
        destination_error=error,
        reason=reason,
    )


class OptionDataSelect(forms.Select):
    """A select whose options carry attributes by value (``data-type``, ``title``...)."""

    def __init__(self, *, option_attrs: dict[str, dict[str, str]], attrs=None):
        super().__init__(attrs)
        self.option_attrs = option_attrs

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"].update(self.option_attrs.get(value, {}))
        return option


class OpenChoiceField(forms.ChoiceField):
    """A choice list to pick from whose value is checked by the mapping validator (which says
    why a value is wrong, as for the configure API), not by the list; bounded in length."""

    def __init__(self, *, max_length: int, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.validators.append(MaxLengthValidator(max_length))

    def to_python(self, value):
        return super().to_python(value).strip()

    def valid_value(self, value):
        return True


def with_current(choices: list, value: str, note: str) -> list:
    """The choices, plus the stored value when it is not among them (kept, and refused with
    its reason by the validator on save)."""
    flat = {v for v, label in choices if not isinstance(label, list | tuple)}
    flat |= {v for _, group in choices if isinstance(group, list | tuple) for v, _ in group}
    if not value or value in flat:
        return choices
    return [*choices, (value, f"{value} ({note})")]
