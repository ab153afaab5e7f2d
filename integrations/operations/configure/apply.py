"""``configure_apply``: one document, validated as a whole, applied in one transaction.

Order: resolve the names (404 for objects not granted), check the document (400 with every
error by JSON path), work out the diff, check the caller may make each change (403), then
write through the same services as the admin (``sync_save`` keeps beat in step). A document
that changes nothing writes nothing. A dry run, or any error, rolls everything back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from audit.context import audit_actor
from integrations import services
from integrations.credentials import connection_credentials_save
from integrations.models import Connection, FieldMapping, Sync
from integrations.operations.configure.document import Errors, join
from integrations.operations.configure.plan import (
    SYNC_FIELDS,
    NotVisible,  # noqa: F401 - raised through configure_apply
    Plan,
    SyncPlan,
    plan_connection,
    plan_syncs,
)
from integrations.operations.configure.validate import validate_syncs
from integrations.operations.models import AlertRecipients, ConfigRevision
from mktintegration.api_base import may, objects_for
from mktintegration.grants import creator_grant


class ConfigureInvalid(Exception):
    def __init__(self, errors: Errors):
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors


class ConfigureForbidden(Exception):
    def __init__(self, refusals: Errors):
        super().__init__(f"{len(refusals)} change(s) refused")
        self.refusals = refusals


@dataclass
class ConfigureResult:
    changed: bool
    dry_run: bool
    diff: list[dict[str, Any]]
    config: dict[str, Any]
    version: dict[str, Any] = field(default_factory=dict)


class _Rollback(Exception):
    def __init__(self, result):
        self.result = result


def configure_apply(*, document: dict, user, extra_errors: Errors = ()) -> ConfigureResult:
    """Apply a validated-shape document (ConfigureDocument's data). Raises NotVisible,
    ConfigureInvalid or ConfigureForbidden; changes nothing unless it returns changed=True."""
    try:
        # audit_actor fills in the actor of the request's open audit context (the API view
        # opened it with the client address) instead of opening, and leaking, another.
        with transaction.atomic(), audit_actor(user):
            result = _configure(document, user, list(extra_errors))
            if result.dry_run or not result.changed:
                raise _Rollback(result)
            return result
    except _Rollback as rollback:
        return rollback.result


def _configure(document: dict, user, extra_errors: Errors) -> ConfigureResult:
    plan = plan_connection(document["connection"], visible=objects_for(user, Connection))
    plan_syncs(
        plan,
        document["syncs"],
        visible_syncs=objects_for(user, Sync),
        prune=document["prune_syncs"],
    )
    # Who may do what comes first: a caller refused learns nothing from the vendor.
    refusals = _refusals(plan, user)
    if refusals:
        raise ConfigureForbidden(refusals)
    if plan.connection_created and not plan.errors:
        # Saved (and rolled back unless applied) so its syncs can be checked against the
        # destination's real fields.
        plan.connection.owner = user
        connection_credentials_save(
            connection=plan.connection, values=plan.credentials or {}, user=user
        )
    validate_syncs(plan)
    if extra_errors or plan.errors:
        raise ConfigureInvalid(extra_errors + plan.errors)
    dry_run = document["dry_run"]
    if plan.changed and not dry_run:
        _write(plan, user)
    config = config_of(plan, user=user)
    if dry_run and plan.connection_created:
        config["connection"]["id"] = None  # saved only for the check, and rolled back
    return ConfigureResult(
        changed=plan.changed,
        dry_run=dry_run,
        diff=plan.diff(),
        config=config,
        version=version_of(plan.connection) if not plan.connection_created or not dry_run else {},
    )


def _refusals(plan: Plan, user) -> Errors:
    refused: Errors = []
    connection = plan.connection
    if plan.connection_created:
        if not user.has_perm("integrations.add_connection"):
            refused.append(("connection", "you may not create connections"))
    elif plan.connection_changed and not may(user, "integrations.change_connection", connection):
        refused.append(("connection", f"you may not change connection {connection.name!r}"))
    credentials_changed = plan.credentials is not None and not plan.connection_created
    if credentials_changed and not user.has_perm("integrations.change_connection"):
        refused.append(("connection.credentials", "credentials are changed by Integration Admins"))
    for sync_plan in plan.syncs:
        path = join("syncs", sync_plan.index)
        if sync_plan.created and not user.has_perm("integrations.add_sync"):
            refused.append((path, "you may not create syncs"))
        elif (
            sync_plan.changed
            and not sync_plan.created
            and not may(user, "integrations.change_sync", sync_plan.sync)
        ):
            refused.append((path, f"you may not change sync {sync_plan.sync.name!r}"))
    for sync in plan.prune:
        if not may(user, "integrations.delete_sync", sync):
            refused.append(("syncs", f"you may not delete sync {sync.name!r}"))
    return refused


def _recipients(emails: list[str], **target) -> None:
    if emails:
        AlertRecipients.objects.update_or_create(**target, defaults={"emails": emails})
    else:
        AlertRecipients.objects.filter(**target).delete()


def _write(plan: Plan, user) -> None:
    connection = plan.connection
    if plan.connection_created:
        creator_grant(obj=connection, user=user)
    elif plan.credentials is not None:
        connection_credentials_save(connection=connection, values=plan.credentials, user=user)
    elif plan.connection_changes:
        connection.save()
    if plan.connection_emails_changed:
        _recipients(plan.connection_emails, connection=connection)
    for sync_plan in plan.syncs:
        _write_sync(sync_plan, user)
    for sync in plan.prune:
        services.sync_delete(sync=sync)
    revision, _ = ConfigRevision.objects.get_or_create(connection=connection)
    ConfigRevision.objects.filter(pk=revision.pk).update(
        revision=revision.revision + 1, applied_at=timezone.now(), applied_by=user
    )


def _write_sync(plan: SyncPlan, user) -> None:
    sync = plan.sync
    if plan.created or plan.changes or plan.mapping_diff or plan.removed_mappings:
        if plan.removed_mappings:
            FieldMapping.objects.filter(pk__in=[m.pk for m in plan.removed_mappings]).delete()
        if plan.created:
            sync.owner = user
        services.sync_save(sync=sync, mappings=plan.mappings)
        if plan.created:
            creator_grant(obj=sync, user=user)
    if plan.alert_emails_changed:
        _recipients(plan.alert_emails, sync=sync)


# --- the answer ----------------------------------------------------------------------------


def version_of(connection: Connection) -> dict[str, Any]:
    """The configure revision of the connection and the latest change-history entry of it,
    its syncs and their mappings (auditlog LogEntry id)."""
    revision = ConfigRevision.objects.filter(connection=connection).first()
    sync_ids = list(Sync.objects.filter(connection=connection).values_list("pk", flat=True))
    mapping_ids = FieldMapping.objects.filter(sync_id__in=sync_ids).values_list("pk", flat=True)
    types = ContentType.objects.get_for_models(Connection, Sync, FieldMapping)
    entries = LogEntry.objects.filter(
        Q(content_type=types[Connection], object_pk=str(connection.pk))
        | Q(content_type=types[Sync], object_pk__in=[str(i) for i in sync_ids])
        | Q(content_type=types[FieldMapping], object_pk__in=[str(i) for i in mapping_ids])
    )
    return {
        "revision": revision.revision if revision else 0,
        "audit_log_id": entries.aggregate(latest=Max("id"))["latest"],
    }


def config_of(plan: Plan, *, user) -> dict[str, Any]:
    connection = plan.connection
    listed = {p.sync.name for p in plan.syncs}
    unlisted = []
    if connection.pk:
        unlisted = list(
            objects_for(user, Sync)
            .filter(connection_id=connection.pk)
            .exclude(name__in=listed)
            .exclude(pk__in=[s.pk for s in plan.prune])
            .order_by("name")
            .values_list("name", flat=True)
        )
    return {
        "connection": {
            "id": connection.pk,
            "name": connection.name,
            "vendor": connection.vendor,
            "auth_kind": connection.auth_kind,
            "credentials_set": sorted(connection.get_credentials()),
            "config": connection.config,
            "base_url": connection.base_url,
            "allowed_regions": connection.allowed_regions,
            "rate_limit_requests": connection.rate_limit_requests,
            "rate_limit_seconds": connection.rate_limit_seconds,
            "daily_quota_requests": connection.daily_quota_requests,
            "alert_emails": plan.connection_emails,
        },
        "syncs": [_sync_config(p) for p in plan.syncs],
        "unlisted_syncs": unlisted,
    }


def _sync_config(plan: SyncPlan) -> dict[str, Any]:
    sync = plan.sync
    return {
        "id": sync.pk,
        "name": sync.name,
        **{name: getattr(sync, name) for name in SYNC_FIELDS},
        "paused": sync.paused,
        "config_version": sync.config_version,
        "mappings": [
            {
                "source_field": m.source_field,
                "template": m.template,
                "destination_field": m.destination_field,
                "transform": m.transform,
                "value_map": m.value_map,
            }
            for m in plan.mappings
        ],
        "alert_emails": plan.alert_emails,
    }
