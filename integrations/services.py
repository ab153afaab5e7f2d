"""Integration services: what admin actions, APIs, tasks and commands call."""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Outcome
from exports.backbone.router import backbone_alias
from exports.datasets import DATASETS
from exports.query import ExportInputError, export_query_parse
from exports.selectors import filter_values_unmatched
from integrations.connectors import REGISTRY
from integrations.connectors.base import OutRecord
from integrations.engine.access import plan_access_log
from integrations.engine.dispatch import dispatch_run
from integrations.engine.planner import Planner
from integrations.engine.realtime import realtime_subscriptions_apply
from integrations.engine.state import sync_pause
from integrations.mapping import template_fields
from integrations.mapping_rules import mapping_problems
from integrations.models import (
    Connection,
    ConnectionCheck,
    ConnectionStatus,
    DeadLetter,
    DeadLetterStatus,
    FieldMapping,
    GrantState,
    LedgerEntry,
    LedgerStatus,
    OAuthGrant,
    RealtimeLag,
    RealtimePending,
    RunStatus,
    Sync,
    SyncBatch,
    SyncRun,
    Trigger,
)
from integrations.selectors import (  # noqa: F401 - part of the services' interface
    connector_for,
    destination_fields,
    sync_destination_fields,
)
from mktintegration.errors import ConnectorError
from mktintegration.scheduling import periodic_task_remove, periodic_task_sync, schedule_validate


class SyncBusy(Exception):
    """The sync already has a run queued or in progress."""

    def __init__(self, run: SyncRun | None):
        super().__init__(f"sync already has run {run.pk if run else '?'} in progress")
        self.run = run


# --- connections ---------------------------------------------------------------------------


def connection_test(*, connection: Connection) -> tuple[bool, str]:
    """Call the vendor; record the check and the connection's status; say why it failed.
    A connection by OAuth that was never connected is not tested (nor counted as failing)."""
    if OAuthGrant.objects.filter(pk=connection.pk, state=GrantState.NOT_CONNECTED).exists():
        return False, "not connected yet: use Connect on the connection's page"
    started = time.monotonic()
    try:
        message, ok = connector_for(connection).test_connection(), True
        status = ConnectionStatus.HEALTHY
    except ConnectorError as exc:
        message, ok = exc.message, False
        status = ConnectionStatus.AUTH_FAILED if exc.kind == "auth" else ConnectionStatus.FAILING
    now = timezone.now()
    ConnectionCheck.objects.create(
        connection=connection,
        checked_at=now,
        ok=ok,
        message=message[:500],
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    Connection.objects.filter(pk=connection.pk).update(
        status=status, last_error="" if ok else message, last_checked_at=now
    )
    return ok, message


# --- syncs ---------------------------------------------------------------------------------


def sync_validate(sync: Sync, mappings: list) -> None:
    """Everything a sync needs to run, as form errors naming the field."""
    errors: dict[str, list[str]] = {}

    def add(field, message):
        errors.setdefault(field, []).append(message)

    try:  # the fields' own bounds (mktintegration.bounds), whoever filled them in
        sync.clean_fields(exclude=["connection", "owner"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            for message in messages:
                add(field, message)
    dataset = DATASETS.get(sync.dataset)
    if dataset is None:
        add("dataset", f"Unknown dataset {sync.dataset!r}; known: {', '.join(DATASETS)}.")
    connector = REGISTRY.get(sync.connection.vendor) if sync.connection_id else None
    destination = connector.objects.get(sync.destination_object) if connector else None
    if connector and destination is None:
        add(
            "destination_object",
            f"{connector.label} has no object {sync.destination_object!r}; "
            f"objects: {', '.join(connector.objects)}.",
        )
    if dataset:
        try:
            export_query_parse(dataset, sync.filters or {}, allow_cursor=False)
        except ExportInputError as exc:
            add("filters", exc.message)
        if sync.match_source_field not in dataset.field_names:
            add(
                "match_source_field",
                f"{sync.match_source_field!r} is not a field of {dataset.name}; "
                f"fields: {', '.join(dataset.field_names)}.",
            )
        if destination and destination.personal_data and dataset.personal_data:
            if not sync.consent_purpose:
                add(
                    "consent_purpose",
                    "Personal data sent to this destination needs a consent "
                    "purpose (e.g. email_marketing).",
                )
            elif dataset.consent_subject_sql is None:
                add("consent_purpose", f"{dataset.name} carries no consent records.")
    if destination and sync.mode == "mirror" and not destination.supports_delete:
        add("mode", f"{destination.label} cannot archive records: mirror is not offered here.")
    if destination and connector:
        for needed in destination.requires:
            if not (sync.destination_config or {}).get(needed):
                add("destination_config", f"{destination.label} needs {needed!r}.")
        for spec in connector.config_fields(sync.destination_object):
            problem = spec.problem((sync.destination_config or {}).get(spec.name))
            if problem:
                add("destination_config", problem)
    if sync.realtime:
        if not (sync.cron or sync.every_minutes):
            add(
                "realtime",
                "A real-time sync needs a schedule too (cron or every minutes): its scheduled "
                "runs retry what failed and send what no change announced.",
            )
        if dataset and not dataset.realtime_subjects:
            add("realtime", f"{dataset.name} announces no changes: it cannot be real-time.")
    try:
        schedule_validate(cron=sync.cron, every_minutes=sync.every_minutes)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            for message in messages:
                add(field, message)
    fields = None
    if not errors and destination:
        fields = _validate_destination_fields(sync, destination, add)
    if dataset:
        for problem in mapping_problems(
            mappings,
            dataset=dataset,
            fields=fields,
            label=connector.label if connector else "the destination",
            object_name=sync.destination_object,
            match_field=sync.match_destination_field,
        ):
            where = f"mapping {problem.index + 1}: " if problem.index is not None else ""
            add("mappings", where + problem.message)
    if errors:
        raise ValidationError(errors)


def _validate_destination_fields(sync, destination, add) -> dict | None:
    """The match field is a unique field of the destination; the destination's fields by
    name (None when they could not be read, which is an error of its own)."""
    try:
        fields = sync_destination_fields(sync)
    except ConnectorError as exc:
        add("connection", f"Could not read the destination's fields to check the mapping: {exc}")
        return None
    match = sync.match_destination_field
    unique = destination.match_candidates(fields)
    if match not in fields:
        add("match_destination_field", f"{match!r} is not a field of {destination.label}.")
    elif match not in unique:
        add(
            "match_destination_field",
            f"{match!r} is not unique at the destination; unique "
            f"fields: {', '.join(unique) or 'none'}.",
        )
    return fields


def sync_filter_warnings(*, sync: Sync) -> list[str]:
    """The sync's filter values that no record has (saved, but they select nothing)."""
    dataset = DATASETS.get(sync.dataset)
    if dataset is None:
        return []
    try:
        query = export_query_parse(dataset, sync.filters or {}, allow_cursor=False)
    except ExportInputError:
        return []  # an error, reported as one by sync_validate
    return filter_values_unmatched(query, alias=backbone_alias())


@transaction.atomic
def sync_save(*, sync: Sync, mappings: list | None = None) -> Sync:
    """Validate, save (bumping the config version) and keep its beat schedule in step."""
    mappings = list(sync.mappings.all()) if mappings is None and sync.pk else (mappings or [])
    sync_validate(sync, mappings)
    if sync.pk:
        sync.config_version += 1
    sync.save()
    for mapping in mappings:
        mapping.sync = sync
        mapping.save()
    sync_schedule_apply(sync=sync)
    realtime_subscriptions_apply()
    return sync


def sync_schedule_apply(*, sync: Sync) -> None:
    periodic_task_sync(
        name=sync.periodic_task_name,
        task="integrations.run_schedule",
        kwargs={"sync_id": sync.pk},
        cron=sync.cron,
        every_minutes=sync.every_minutes,
        enabled=sync.enabled and not sync.paused,
        description=f"Sync {sync.name}",
    )


@transaction.atomic
def sync_delete(*, sync: Sync) -> None:
    """Delete a sync with its ledger, runs and dead letters (the destination is untouched).

    The big child tables go first in plain DELETEs: Django's cascade would load every one of
    possibly millions of ledger rows into memory first.
    """
    periodic_task_remove(name=sync.periodic_task_name)
    for queryset in (
        DeadLetter.objects.filter(sync=sync),
        SyncBatch.objects.filter(run__sync=sync),
        RealtimeLag.objects.filter(sync=sync),
        RealtimePending.objects.filter(sync=sync),
        SyncRun.objects.filter(sync=sync),
        LedgerEntry.objects.filter(sync=sync),
    ):
        queryset._raw_delete(queryset.db)
    sync.delete()
    realtime_subscriptions_apply()


def sync_delete_summary(syncs) -> dict[str, int]:
    """What deleting these syncs removes (for the admin's confirmation page)."""
    return {
        "syncs": len(syncs),
        "field mappings": FieldMapping.objects.filter(sync__in=syncs).count(),
        "ledger entries": LedgerEntry.objects.filter(sync__in=syncs).count(),
        "runs": SyncRun.objects.filter(sync__in=syncs).count(),
        "dead letters": DeadLetter.objects.filter(sync__in=syncs).count(),
    }


def sync_run_start(*, sync: Sync, trigger: str, user=None, full: bool = False) -> SyncRun:
    """Queue a run and send its task on commit; SyncBusy if one is already going."""
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                sync=sync,
                trigger=trigger,
                triggered_by=user,
                config_version=sync.config_version,
                full_plan=full,
            )
            dispatch_run(run.pk)
    except IntegrityError:
        active = SyncRun.objects.filter(
            sync=sync, status__in=[RunStatus.QUEUED, RunStatus.PLANNING, RunStatus.DELIVERING]
        ).first()
        raise SyncBusy(active) from None
    return run


def quota_runs_start(*, now=None) -> int:
    """Start a run of every sync whose records the daily quota deferred, once the quota's
    next window is open (beat: every minute). A sync with a run going keeps its turn for the
    next minute."""
    now = now or timezone.now()
    started = 0
    for sync in Sync.objects.filter(
        quota_resume_at__lte=now, enabled=True, paused=False
    ).select_related("connection"):
        try:
            sync_run_start(sync=sync, trigger=Trigger.QUOTA)
        except SyncBusy:
            continue
        Sync.objects.filter(pk=sync.pk, quota_resume_at=sync.quota_resume_at).update(
            quota_resume_at=None
        )
        started += 1
    return started


def sync_preview(*, sync: Sync, user=None, client_address: str | None = None) -> SyncRun:
    """Plan without writing or sending: counts per bucket and the first payloads. The records
    shown are access-logged (integrations.engine.access)."""
    run = SyncRun(
        sync=sync,
        trigger=Trigger.PREVIEW,
        triggered_by=user,
        status=RunStatus.PREVIEW,
        config_version=sync.config_version,
        started_at=timezone.now(),
    )
    planner = Planner(run, dry_run=True)
    started = time.monotonic()
    log = {"planner": planner, "started": started, "user": user, "client_address": client_address}
    try:
        result = planner.plan()
    except Exception:
        plan_access_log(**log, outcome=Outcome.ERROR, preview_shown=0)
        raise
    run.planned = result.planned
    for bucket, count in result.counts.items():
        if bucket != "would_send":
            setattr(run, bucket, count)
    _preview_outcomes(sync, result.preview)
    run.preview = {"would_send": result.counts.get("would_send", 0), "records": result.preview}
    run.finished_at = timezone.now()
    run.save()
    plan_access_log(**log, outcome=Outcome.OK, preview_shown=len(result.preview))
    return run


def _preview_outcomes(sync: Sync, shown: list[dict]) -> None:
    """What the destination says a write of each previewed record would do ("would update
    Contact 003...", "would create Lead"), where the connector can tell (one look-up)."""
    sending = [record for record in shown if record["bucket"] == "send"]
    if not sending:
        return
    records = [OutRecord(r["key"], r["match"], r["payload"]) for r in sending]
    try:
        said = connector_for(sync.connection).preview_writes(
            sync.destination_object,
            records,
            match_field=sync.match_destination_field,
            destination_config=sync.destination_config or {},
        )
    except ConnectorError as exc:
        said = {r.key: f"(the destination could not say: {exc.message[:200]})" for r in records}
    for record in sending:
        if record["key"] in said:
            record["would"] = said[record["key"]]


def sync_set_paused(*, sync: Sync, paused: bool, reason: str = "") -> None:
    if paused:
        sync_pause(sync=sync, reason=reason or "paused by a user")
    else:
        sync.paused, sync.pause_reason = False, ""
        sync.save(update_fields=["paused", "pause_reason", "updated_at"])
    sync_schedule_apply(sync=sync)
    realtime_subscriptions_apply()


@transaction.atomic
def deadletters_replay(
    *, sync: Sync, user=None, ids: list[int] | None = None
) -> tuple[int, SyncRun | None]:
    """Send dead-lettered records again (with the source's current data) in a new run."""
    letters = DeadLetter.objects.filter(sync=sync, status=DeadLetterStatus.OPEN)
    if ids is not None:
        letters = letters.filter(pk__in=ids)
    entry_ids = list(letters.values_list("entry_id", flat=True))
    if not entry_ids:
        return 0, None
    letters.update(status=DeadLetterStatus.REPLAYED, resolved_at=timezone.now(), resolved_by=user)
    LedgerEntry.objects.filter(pk__in=entry_ids, status=LedgerStatus.DEAD).update(
        status=LedgerStatus.FAILED, attempts=0
    )
    try:
        run = sync_run_start(sync=sync, trigger=Trigger.REPLAY, user=user)
    except SyncBusy:
        run = None  # the running run's successor plans them (they are failed, so re-planned)
    return len(entry_ids), run


def mapping_sources(mapping) -> list[str]:
    return template_fields(mapping.template) if mapping.template else [mapping.source_field]
