"""The sync form's names picked from lists, not typed: the destination object (the
connection's tool's objects), the match field of the source (the dataset's fields) and of the
destination, once the object is known: the object's declared match fields, or for an object
that matches on any unique field (HubSpot's companies, Salesforce's external ids) the unique
fields the vendor lists; a text input saying why when the vendor could not be asked.

Each is an OpenChoiceField: the list is for picking, and what is posted is checked by the one
sync validator (integrations.services.sync_validate), which says why a value is wrong, as it
does for the configure API. A stored value missing from the list is kept and marked.
"""

from __future__ import annotations

from django import forms
from django.utils.text import capfirst

from exports.datasets import DATASETS
from integrations.connectors import REGISTRY
from integrations.mapping_widgets import OpenChoiceField, with_current
from integrations.models import Sync
from integrations.selectors import destination_fields
from mktintegration.errors import ConnectorError


def _max_length(name: str) -> int:
    return Sync._meta.get_field(name).max_length or 100


def _pick(name: str, choices: list, current: str, note: str, help_text: str) -> forms.Field:
    return OpenChoiceField(
        max_length=_max_length(name),
        label=capfirst(Sync._meta.get_field(name).verbose_name),
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
    if obj is None or connector is None or connection is None:
        return fields
    if obj.match_fields:
        names: dict[str, str] = {name: name for name in obj.match_fields}
    else:
        try:
            known = destination_fields(
                connection=connection,
                object_name=object_name,
                destination_config=(sync.destination_config if sync else None) or {},
            )
        except (ConnectorError, ValueError, KeyError, OSError) as exc:
            reason = exc.message if isinstance(exc, ConnectorError) else str(exc)
            fields["match_destination_field"] = forms.CharField(
                max_length=_max_length("match_destination_field"),
                label=capfirst(Sync._meta.get_field("match_destination_field").verbose_name),
                help_text=(
                    f"A unique field of {obj.label}: {connector.label}'s fields could not be "
                    f"read ({reason[:300]}), type its name."
                ),
            )
            return fields
        by_name = {f.name: f for f in known}
        names = {n: f"{by_name[n].label} [{n}]" for n in obj.match_candidates(by_name)}
    fields["match_destination_field"] = _pick(
        "match_destination_field",
        list(names.items()),
        sync.match_destination_field if sync else "",
        "not a match field of this object",
        f"The {obj.label} field the record is matched on (the fields {connector.label} "
        "matches by).",
    )
    return fields
