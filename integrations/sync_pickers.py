"""The sync form's names picked from lists, not typed: the destination object (the
connection's tool's objects), the match field of the source (the dataset's fields) and of the
destination (the object's declared match fields, once the object is known; a text input for an
object that matches on any unique field, such as HubSpot's companies).

Each is an OpenChoiceField: the list is for picking, and what is posted is checked by the one
sync validator (integrations.services.sync_validate), which says why a value is wrong, as it
does for the configure API. A stored value missing from the list is kept and marked.
"""

from __future__ import annotations

from django import forms

from exports.datasets import DATASETS
from integrations.connectors import REGISTRY
from integrations.mapping_widgets import OpenChoiceField, with_current
from integrations.models import Sync


def _max_length(name: str) -> int:
    return Sync._meta.get_field(name).max_length or 100


def _pick(name: str, choices: list, current: str, note: str, help_text: str) -> forms.Field:
    return OpenChoiceField(
        max_length=_max_length(name),
        label=Sync._meta.get_field(name).verbose_name,
        choices=[("", "---------"), *with_current(choices, current, note)],
        help_text=help_text,
    )


def _objects(connector) -> list[tuple[str, str]]:
    return [(name, f"{o.label} [{name}]") for name, o in connector.objects.items()]


def sync_pickers(*, sync: Sync | None, dataset, connection, object_name: str) -> dict:
    """The form fields for the destination object and the two match fields, as choices from
    what this request's form knows (the posted or stored connection, dataset and object)."""
    fields: dict[str, forms.Field] = {}
    connector = REGISTRY.get(connection.vendor) if connection is not None else None
    if connector is not None:
        objects: list = _objects(connector)
    else:  # no connection chosen yet: every tool's objects, by tool
        objects = [(c.label, _objects(c)) for c in REGISTRY.values()]
    fields["destination_object"] = _pick(
        "destination_object",
        objects,
        sync.destination_object if sync else "",
        "not an object of this tool",
        "What the sync writes at the destination (the connection's tool's objects).",
    )
    if dataset is not None:
        sources: list = [(f.name, f"{f.name} ({f.type})") for f in dataset.fields]
    else:
        sources = [
            (d.label, [(f.name, f"{f.name} ({f.type})") for f in d.fields])
            for d in DATASETS.values()
        ]
    fields["match_source_field"] = _pick(
        "match_source_field",
        sources,
        sync.match_source_field if sync else "",
        "not a field of the dataset",
        "The dataset's field that identifies the record at the destination.",
    )
    obj = connector.objects.get(object_name) if connector is not None else None
    if obj is not None and obj.match_fields:  # else a text input: any unique field there
        fields["match_destination_field"] = _pick(
            "match_destination_field",
            [(name, name) for name in obj.match_fields],
            sync.match_destination_field if sync else "",
            "not a match field of this object",
            f"The {obj.label} field the record is matched on (the fields {connector.label} "
            "matches by).",
        )
    return fields
