"""Working out what a configure document changes: the connection and syncs it names, the
fields that differ, the mappings to create, update and delete. No vendor is asked here (see
``validate``) and nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from integrations.connectors import REGISTRY
from integrations.credentials import connection_credentials_save, credentials_plan
from integrations.models import Connection, FieldMapping, Sync
from integrations.operations.configure.document import Errors, join
from integrations.operations.models import AlertRecipients

CONNECTION_FIELDS = (
    "vendor",
    "auth_kind",
    "config",
    "base_url",
    "allowed_regions",
    "rate_limit_requests",
    "rate_limit_seconds",
    "daily_quota_requests",
)
SYNC_FIELDS = (
    "dataset",
    "filters",
    "destination_object",
    "destination_config",
    "mode",
    "match_source_field",
    "match_destination_field",
    "consent_purpose",
    "cron",
    "every_minutes",
    "realtime",
    "enabled",
    "mirror_max_delete_share",
    "lookback_minutes",
)
MAPPING_FIELDS = ("source_field", "template", "transform", "value_map", "position")
# sync_validate's error keys that are document fields of the sync as they are.
_SYNC_KEY_PATHS = {"connection": "destination_object"}


class NotVisible(Exception):
    """The document names an object that exists and is not granted to the caller."""


@dataclass
class SyncPlan:
    index: int
    sync: Sync
    created: bool
    changes: dict[str, dict[str, Any]]
    mappings: list[FieldMapping]
    mapping_diff: list[dict[str, Any]]
    removed_mappings: list[FieldMapping]
    alert_emails: list[str]
    alert_emails_changed: bool

    @property
    def changed(self) -> bool:
        return bool(
            self.created
            or self.changes
            or self.mapping_diff
            or self.removed_mappings
            or self.alert_emails_changed
        )


@dataclass
class Plan:
    connection: Connection
    connection_created: bool
    connection_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    credentials: dict[str, str] | None = None  # the secrets to store, when they change
    connection_emails: list[str] = field(default_factory=list)
    connection_emails_changed: bool = False
    syncs: list[SyncPlan] = field(default_factory=list)
    prune: list[Sync] = field(default_factory=list)
    errors: Errors = field(default_factory=list)

    @property
    def connection_changed(self) -> bool:
        return bool(
            self.connection_created
            or self.connection_changes
            or self.credentials is not None
            or self.connection_emails_changed
        )

    @property
    def changed(self) -> bool:
        return self.connection_changed or any(s.changed for s in self.syncs) or bool(self.prune)

    def diff(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        name = self.connection.name
        if self.connection_created:
            entries.append(
                {"op": "create", "path": "connection", "object": "connection", "name": name}
            )
        elif self.connection_changed:
            changes = dict(self.connection_changes)
            if self.credentials is not None:
                changes["credentials"] = {"changed": True}
            if self.connection_emails_changed:
                changes["alert_emails"] = {"to": self.connection_emails}
            entries.append(
                {
                    "op": "update",
                    "path": "connection",
                    "object": "connection",
                    "name": name,
                    "changes": changes,
                }
            )
        for plan in self.syncs:
            path = join("syncs", plan.index)
            if plan.created:
                entries.append(
                    {"op": "create", "path": path, "object": "sync", "name": plan.sync.name}
                )
            elif plan.changes or plan.alert_emails_changed:
                changes = dict(plan.changes)
                if plan.alert_emails_changed:
                    changes["alert_emails"] = {"to": plan.alert_emails}
                entries.append(
                    {
                        "op": "update",
                        "path": path,
                        "object": "sync",
                        "name": plan.sync.name,
                        "changes": changes,
                    }
                )
            entries += plan.mapping_diff
            for mapping in plan.removed_mappings:
                entries.append(
                    {
                        "op": "delete",
                        "path": join(path, "mappings"),
                        "object": "field_mapping",
                        "name": mapping.destination_field,
                    }
                )
        for sync in self.prune:
            entries.append({"op": "delete", "path": "syncs", "object": "sync", "name": sync.name})
        return entries


def _emails_of(**target) -> list[str]:
    row = AlertRecipients.objects.filter(**target).first() if all(target.values()) else None
    return list(row.emails) if row else []


def _changes(obj, values: dict[str, Any], names) -> dict[str, dict[str, Any]]:
    changes = {}
    for name in names:
        before, after = getattr(obj, name), values[name]
        if before != after:
            changes[name] = {"from": before, "to": after}
    return changes


# --- the connection ------------------------------------------------------------------------


def plan_connection(doc: dict, *, visible) -> Plan:
    """The connection part; NotVisible when it exists and the caller may not see it."""
    existing = Connection.objects.filter(name=doc["name"]).first()
    if existing is not None and not visible.filter(pk=existing.pk).exists():
        raise NotVisible(f"No connection named {doc['name']!r} is visible to you.")
    connection = existing or Connection(name=doc["name"])
    values = {name: doc[name] for name in CONNECTION_FIELDS}
    connector = REGISTRY.get(values["vendor"])
    if not values["auth_kind"] and connector is not None:
        values["auth_kind"] = connector.auth_kinds[0]
    plan = Plan(connection=connection, connection_created=existing is None)
    if existing is not None:
        plan.connection_changes = _changes(existing, values, CONNECTION_FIELDS)
    for name, value in values.items():
        setattr(connection, name, value)
    try:  # the fields' bounds and the vendor's rules, as the admin form checks them
        connection.full_clean(
            exclude=["owner", "credentials_ciphertext"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            plan.errors += [(join("connection", key), m) for m in messages]
    _plan_credentials(plan, doc.get("credentials") or {}, connector)
    plan.connection_emails = doc["alert_emails"]
    stored = _emails_of(connection=existing) if existing else []
    plan.connection_emails_changed = plan.connection_emails != stored
    return plan


def _plan_credentials(plan: Plan, given: dict[str, str], connector) -> None:
    """What the connection would store (integrations.credentials), staged on the instance so
    the syncs are checked with it; an OAuth auth kind may be given its seed token."""
    connection = plan.connection
    if connector is None:
        return
    wanted = credentials_plan(connection=connection, given=given, seeding=True)
    plan.errors += [(join("connection.credentials", name), m) for name, m in wanted.problems]
    if wanted.changed:
        plan.credentials = wanted.values
        connection_credentials_save(connection=connection, values=wanted.values, commit=False)
    elif plan.connection_changes.keys() & {"vendor", "base_url", "config", "auth_kind"}:
        # A new address or vendor: the destination's cached field list no longer applies.
        connection.updated_at = timezone.now()


# --- syncs ---------------------------------------------------------------------------------


def plan_syncs(plan: Plan, docs: list[dict], *, visible_syncs, prune: bool) -> None:
    """The syncs part: what changes (no vendor is asked; see ``validate_syncs``)."""
    connection = plan.connection
    existing = (
        {s.name: s for s in Sync.objects.filter(connection=connection)} if connection.pk else {}
    )
    seen: set[str] = set()
    for index, doc in enumerate(docs):
        path = join("syncs", index)
        name = doc["name"]
        if name in seen:
            plan.errors.append((join(path, "name"), f"the document lists {name!r} twice"))
            continue
        seen.add(name)
        sync = existing.get(name)
        if sync is not None and not visible_syncs.filter(pk=sync.pk).exists():
            raise NotVisible(f"No sync named {name!r} is visible to you.")
        if sync is None and Sync.objects.filter(name=name).exists():
            plan.errors.append(
                (join(path, "name"), f"the name {name!r} belongs to a sync of another connection")
            )
            continue
        plan.syncs.append(_plan_sync(plan, index, doc, sync))
    if prune:
        plan.prune = [s for n, s in sorted(existing.items()) if n not in seen]
        if any(not visible_syncs.filter(pk=s.pk).exists() for s in plan.prune):
            raise NotVisible("prune_syncs would delete syncs that are not visible to you.")


def _plan_sync(plan: Plan, index: int, doc: dict, sync: Sync | None) -> SyncPlan:
    path = join("syncs", index)
    values = {name: doc[name] for name in SYNC_FIELDS}
    values["cron"] = " ".join(values["cron"].split())
    created = sync is None
    changes = {} if created else _changes(sync, values, SYNC_FIELDS)
    if created:
        sync = Sync(name=doc["name"])
    sync.connection = plan.connection
    for name, value in values.items():
        setattr(sync, name, value)
    current = {m.destination_field: m for m in sync.mappings.all()} if sync.pk else {}
    mappings, mapping_diff = [], []
    for position, mdoc in enumerate(doc["mappings"]):
        target = mdoc["destination_field"]
        mapping = current.get(target) or FieldMapping(destination_field=target)
        wanted = {
            **{k: mdoc[k] for k in ("source_field", "template", "transform", "value_map")},
            "position": position,
        }
        mpath = join(join(path, "mappings"), position)
        if mapping.pk is None:
            mapping_diff.append(
                {"op": "create", "path": mpath, "object": "field_mapping", "name": target}
            )
        else:
            mchanges = _changes(mapping, wanted, MAPPING_FIELDS)
            if mchanges:
                mapping_diff.append(
                    {
                        "op": "update",
                        "path": mpath,
                        "object": "field_mapping",
                        "name": target,
                        "changes": mchanges,
                    }
                )
        for name, value in wanted.items():
            setattr(mapping, name, value)
        mappings.append(mapping)
    kept = {m.destination_field for m in mappings}
    removed = [m for target, m in current.items() if target not in kept]
    emails = doc["alert_emails"]
    stored = _emails_of(sync=sync) if sync.pk else []
    return SyncPlan(
        index=index,
        sync=sync,
        created=created,
        changes=changes,
        mappings=mappings,
        mapping_diff=mapping_diff,
        removed_mappings=removed,
        alert_emails=emails,
        alert_emails_changed=emails != stored,
    )
