"""Plan: which records a run must send, and why every other record is left alone.

Candidates are the source rows that may have changed since the sync's watermark (minus a
look-back window), plus every ledger entry still pending or failed, plus (mirror) records
this sync created that left the source. Each candidate is mapped, hashed, gated, and diffed
against the ledger; it lands in exactly one bucket with a reason. The cost grows with what
changed, not with the table: unchanged rows are not even read on an incremental plan.

Where the destination has a daily quota and what the run would send may not fit in what is
left of it, the plan is cut to fit (``integrations.engine.quota_fit``): the records changed
longest ago go, the others are *deferred* (pending, planned again by the run that starts when
the quota's next window opens).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.utils import timezone

from exports.backbone.providers.consent import ConsentDecision
from exports.datasets import dataset_get
from exports.query import export_query_parse
from integrations.connectors import connector_class
from integrations.connectors.base import OutRecord
from integrations.connectors.values import ValueKind, value_problem
from integrations.engine.ledger_io import (
    PlannedRow,
    ledger_analyze,
    ledger_insert,
    ledger_match_owners,
    ledger_states,
    ledger_update,
)
from integrations.engine.plan_sql import key_order, sql_first_plan, sql_gate
from integrations.engine.quota_fit import QuotaFit, quota_fit
from integrations.engine.source import SourceReader
from integrations.mapping import build_payload, compile_mappings, source_fields
from integrations.mapping import payload_hash as hash_payload
from integrations.models import LedgerEntry, LedgerStatus, Sync, SyncRun, Trigger
from integrations.selectors import sync_destination_fields
from mktintegration.errors import ConnectorError

log = logging.getLogger(__name__)
PREVIEW_PAYLOADS = 20
ANALYZE_AFTER_ROWS = 10_000
RETRY_STATUSES = (LedgerStatus.PENDING, LedgerStatus.FAILED, LedgerStatus.INTENT_CREATE)
# Not sent now: stays pending, planned again next run (no consent answer: fail closed; a
# daily quota's next window).
DEFERRED = "deferred"
CONSENT_UNAVAILABLE = "consent unavailable: "  # how a deferred record's reason starts


@dataclass(frozen=True)
class LedgerState:
    """The few ledger columns a plan compares against (no ORM object per row)."""

    status: str
    payload_hash: str
    plan_hash: str
    last_error: str
    match_value: str


@dataclass
class Decision:
    key: str
    bucket: str  # "send", "unchanged", "invalid", "suppressed", "blocked", "deferred"
    reason: str = ""
    payload: dict[str, Any] | None = None
    match_value: str = ""
    payload_hash: str = ""
    plan_hash: str = ""
    consent: ConsentDecision | None = None  # what allowed a consent-gated send (evidence)
    changed_at: str = ""  # the source row's last change (read where a daily quota applies)


_CONTEXTS: dict[tuple, SyncContext] = {}


@dataclass
class SyncContext:
    """Everything about a sync the planner and the executor need, resolved once."""

    sync: Sync
    dataset: Any
    connector_cls: Any
    destination: Any
    compiled: list
    reader: SourceReader
    # The mapped destination fields whose values are checked before sending (not free text).
    checked_fields: tuple = ()

    @classmethod
    def cached(cls, sync: Sync) -> SyncContext:
        """load(), remembered per worker process while the sync's configuration is the same
        (its config version, and the sync's and its connection's last change)."""
        key = (sync.pk, sync.config_version, sync.updated_at, sync.connection.updated_at)
        ctx = _CONTEXTS.get(key)
        if ctx is None:
            if len(_CONTEXTS) > 64:
                _CONTEXTS.clear()
            ctx = _CONTEXTS[key] = cls.load(sync)
        return replace(ctx, sync=sync)

    @classmethod
    def load(cls, sync: Sync) -> SyncContext:
        dataset = dataset_get(sync.dataset)
        connector_cls = connector_class(sync.connection.vendor)
        compiled = compile_mappings(list(sync.mappings.all()), dataset)
        extra = [dataset.key, sync.match_source_field]
        if dataset.region_field in dataset.field_names:
            extra.append(dataset.region_field)
        if connector_cls.daily_quota is not None and dataset.updated_at in dataset.field_names:
            extra.append(dataset.updated_at)  # a plan cut to fit goes oldest change first
        base = export_query_parse(dataset, sync.filters or {}, allow_cursor=False)
        reader = SourceReader(
            base, source_fields(compiled, extra), consent_purpose=sync.consent_purpose
        )
        return cls(
            sync,
            dataset,
            connector_cls,
            connector_cls.objects[sync.destination_object],
            compiled,
            reader,
            _checked_fields(sync, compiled),
        )

    def decide(
        self,
        row: dict[str, Any],
        entry: LedgerState | None,
        duplicate_of: str | None,
        connector=None,
        *,
        new: bool = False,
        known: bool | None = None,
    ) -> Decision:
        """Map, hash and gate one source row against its ledger entry.

        ``new``: the record has no ledger entry yet. If it passes the gate it will be sent,
        and the delivery computes the hash of what it sends, so planning skips hashing it.
        ``known``: the destination confirmed the record before (default: from ``entry``).
        """
        sync = self.sync
        key = str(row["_key"])
        payload = build_payload(self.compiled, row)
        match_value = row.get(sync.match_source_field)
        match_value = "" if match_value is None else str(match_value).strip()
        if sync.match_destination_field not in payload:
            payload[sync.match_destination_field] = match_value
        gate = self._gate(row, match_value, duplicate_of, connector, key, payload)
        consent = row.get("_consent") if sync.consent_purpose else None
        if known is None:
            known = entry is not None and bool(entry.payload_hash)
        if gate and gate[0] == "suppressed" and known and self._opts_out(row, payload):
            # Withdrawn at a destination that keeps the person (a CRM): the record it holds is
            # marked opted out, nothing else is sent, and it is never deleted for it.
            opt_out = self.destination.opt_out_field
            payload = {sync.match_destination_field: payload[sync.match_destination_field]}
            payload[opt_out], gate = True, None
        changed_at = str(row.get(self.dataset.updated_at) or "")
        if new and not gate:
            return Decision(
                key, "send", "", payload, match_value, "", "", consent, changed_at=changed_at
            )
        payload_hash = hash_payload(
            (sync.destination_object, sync.match_destination_field, match_value), payload
        )
        plan_hash = hashlib.sha256(f"{payload_hash}|{gate}".encode()).hexdigest()
        decision = Decision(
            key,
            "send",
            "",
            payload,
            match_value,
            payload_hash,
            plan_hash,
            consent,
            changed_at=changed_at,
        )
        if gate:
            decision.bucket, decision.reason = gate
        if entry is not None:
            if (
                # Deferred too: the destination has exactly this, so nothing waits for consent.
                decision.bucket in ("send", DEFERRED)
                and entry.status == LedgerStatus.SYNCED
                and entry.payload_hash == payload_hash
            ):
                decision.bucket, decision.reason = "unchanged", "destination already has it"
            elif (
                entry.status in (LedgerStatus.SKIPPED, LedgerStatus.DEAD)
                and entry.plan_hash == plan_hash
            ):
                decision.bucket = "unchanged"
                decision.reason = (
                    "dead-lettered; replay it to retry"
                    if entry.status == LedgerStatus.DEAD
                    else f"still not sendable: {entry.last_error}"
                )
        return decision

    def _opts_out(self, row, payload) -> bool:
        """The destination has an opt-out flag the sync maps, and the person withdrew."""
        opt_out = self.destination.opt_out_field
        consent = row.get("_consent")
        status = getattr(consent, "status", consent)  # a status, or a provider's decision
        return bool(opt_out) and opt_out in payload and status == "withdrawn"

    def _gate(self, row, match_value, duplicate_of, connector, key, payload):
        sync = self.sync
        if not match_value:
            return ("invalid", f"no value in {sync.match_source_field} (the match key)")
        if duplicate_of:
            return (
                "invalid",
                f"{sync.match_source_field} {match_value!r} is also record {duplicate_of}'s",
            )
        if connector is not None:
            reason = connector.validate_record(
                sync.destination_object, OutRecord(key, match_value, payload)
            )
            if reason:
                return ("invalid", reason)
        problems = [
            problem
            for name, spec in self.checked_fields
            if (problem := value_problem(spec, payload.get(name)))
        ]
        if problems:
            return ("invalid", "; ".join(problems)[:1000])
        allowed = sync.connection.allowed_regions
        region = row.get(self.dataset.region_field)
        if allowed and region not in allowed:
            return ("blocked", f"region {region or 'unknown'} may not be sent to this connection")
        if sync.consent_purpose:
            consent = row.get("_consent")
            if consent is not None and consent.unavailable:
                return (DEFERRED, f"{CONSENT_UNAVAILABLE}{consent.unavailable}"[:1000])
            if consent is None or not consent.granted:
                status = consent.status if consent is not None else ""
                return (
                    "suppressed",
                    f"no {sync.consent_purpose} consent ({status or 'never given'})",
                )
        return None


def _checked_fields(sync: Sync, compiled: list) -> tuple:
    """The mapped fields whose values the destination constrains (numbers, dates, choices),
    as the destination declares them. When the fields cannot be read, nothing is checked here
    and the destination's own answer decides (per record)."""
    try:
        fields = sync_destination_fields(sync)
    except (ConnectorError, NotImplementedError) as exc:
        log.warning("sync %s: destination fields not read, values not checked: %s", sync.pk, exc)
        return ()
    mapped = {m.destination for m in compiled}
    return tuple(
        (name, spec)
        for name, spec in sorted(fields.items())
        if name in mapped and spec.kind != ValueKind.TEXT
    )


@dataclass
class PlanResult:
    counts: Counter = field(default_factory=Counter)
    send_keys: list[str] = field(default_factory=list)  # not yet handed to batches
    delete_keys: list[str] = field(default_factory=list)
    sent: int = 0  # records handed to batches so far
    preview: list[dict] = field(default_factory=list)
    watermark: Any = None
    path: str = "python"  # where the records were gated (first plans: "database" mostly)

    @property
    def planned(self) -> int:
        return sum(self.counts.values()) + self.sent + len(self.send_keys) + len(self.delete_keys)


def _connector_for_validation(ctx: SyncContext):
    # validate_record needs no network; build the connector without credentials.
    return ctx.connector_cls(connection=ctx.sync.connection, secrets={})


class Planner:
    in_database = True  # a first plan gates in SQL where it can (integrations.engine.plan_sql)

    def __init__(self, run: SyncRun, *, dry_run: bool = False, heartbeat=None):
        self.run = run
        self.sync = run.sync
        self.ctx = SyncContext.load(self.sync)
        self.dry_run = dry_run
        self.heartbeat = heartbeat or (lambda: None)
        self.result = PlanResult()
        self.connector = _connector_for_validation(self.ctx)
        self.seen: set[str] = set()
        self.match_owner: dict[str, str] = {}
        self.mirror_guard_tripped = False
        self.inserted = 0
        # What the plan read from the source, for the access log (integrations.engine.access).
        self.rows_read = 0
        self.keys_read = 0
        # Streaming: called with record keys to deliver as soon as a task's worth is planned
        # (and with the rest at the end), so delivery starts while the plan goes on.
        self.on_keys: Callable[[list[str], str], None] | None = None
        self.flush_size = 0
        # A daily quota the run may not fit in: sends are held, then cut to fit.
        self.fit: QuotaFit | None = None
        # A first plan made in the database: its records own their match values (a record
        # planned in Python that comes first in key order takes the value over: ``demoted``).
        self.sql_owned = False
        self.demoted: dict[str, str] = {}
        self.holding = False  # no flush yet: what the database planned may still change

    def plan(self) -> PlanResult:
        sync = self.sync
        full = (
            self.run.full_plan
            or sync.source_watermark is None
            or sync.planned_config_version != sync.config_version
        )
        since = None
        if not full and sync.source_watermark is not None:
            since = sync.source_watermark - timedelta(minutes=sync.lookback_minutes)
        started = timezone.now()
        if self.run.targets and not full and self.run.trigger == Trigger.REALTIME:
            return self._plan_targets()
        empty_ledger = not LedgerEntry.objects.filter(sync=sync).exists()
        self.fit = quota_fit(self.ctx, self.connector, since=since, retry_statuses=RETRY_STATUSES)
        if not (since is None and empty_ledger and self._plan_in_database()):
            for rows in self.ctx.reader.changed(since):
                self.rows_read += len(rows)
                self._plan_rows(rows, skip_ledger=empty_ledger)
                self.heartbeat()
        if self.run.targets:  # a scheduled run that took waiting real-time records too
            self._plan_keys([key for key in self.run.targets if key not in self.seen])
        if not empty_ledger:  # else every entry is this plan's own
            self._plan_leftovers()
        if sync.mode == "mirror":
            self._plan_deletes()
        if self.fit is not None:
            self.fit.cut(self)
        if self.inserted >= ANALYZE_AFTER_ROWS:
            ledger_analyze()
        self._flush(final=True)
        self.result.watermark = started
        return self.result

    def _plan_targets(self) -> PlanResult:
        """A real-time run: just the records whose changes it was started for, through the
        same decisions; the sync's watermark stays where its last full or incremental plan
        left it (``result.watermark`` None), so the next scheduled run still reads every
        change since then. A record gone from the source (or its filter) is a leaver: a mirror
        sync archives it under the delete guard, other modes leave the destination alone."""
        keys = list(self.run.targets)
        self.fit = quota_fit(
            self.ctx, self.connector, since=None, retry_statuses=RETRY_STATUSES, records=len(keys)
        )
        gone = self._plan_keys(keys)
        if gone and self.sync.mode == "mirror":
            self._archive(self._leavers(gone))
        if self.fit is not None:
            self.fit.cut(self)
        self._flush(final=True)
        self.result.watermark = None
        return self.result

    def _plan_keys(self, keys: list[str]) -> list[str]:
        """Plan these records from their current rows; the keys no longer in the source."""
        gone: list[str] = []
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            rows = self.ctx.reader.by_keys(chunk)
            self.rows_read += len(rows)
            gone += [key for key in chunk if key not in rows]
            if rows:
                self._plan_rows(list(rows.values()))
            self.heartbeat()
        return gone

    def _leavers(self, keys: list[str]) -> list[str]:
        """Of these keys, the records this sync created and the destination still has."""
        return [
            key
            for start in range(0, len(keys), 1000)
            for key in LedgerEntry.objects.filter(
                sync=self.sync,
                record_key__in=keys[start : start + 1000],
                created_by_sync=True,
                status=LedgerStatus.SYNCED,
            ).values_list("record_key", flat=True)
        ]

    def _plan_in_database(self) -> bool:
        """A first plan: gate in SQL what SQL can, the rest in Python (False: none in SQL)."""
        if self.dry_run or self.fit is not None or not self.in_database:
            return False
        gate = sql_gate(self.ctx, self.connector)
        if isinstance(gate, str):
            self.result.path = f"python: {gate}"
            return False
        plan = sql_first_plan(self.ctx, gate, sync_id=self.sync.pk, heartbeat=self.heartbeat)
        self.rows_read += plan.read
        self.inserted += len(plan.sent)
        self.sql_owned, self.holding = True, True
        for start in range(0, len(plan.rest), 1000):
            rows = self.ctx.reader.by_keys(plan.rest[start : start + 1000])
            if rows:
                self._plan_rows(list(rows.values()))
            self.heartbeat()
        demoted = self._demote()
        self.result.send_keys[:0] = [key for key in plan.sent if key not in demoted]
        self.holding = False
        self.result.path = (
            f"database: {len(plan.sent) - len(demoted):,} records gated in SQL, "
            f"{len(plan.rest) + len(demoted):,} in Python"
        )
        return True

    def _demote(self) -> set[str]:
        """Records the database planned whose match value an earlier record (in key order,
        planned in Python) holds: duplicates, as the Python path would have filed them."""
        if not self.demoted:
            return set()
        keys = list(self.demoted)
        rows = self.ctx.reader.by_keys(keys)
        decisions = [
            self.ctx.decide(rows[key], None, self.demoted[key], self.connector, new=True)
            for key in keys
            if key in rows
        ]
        self._record(decisions, self._ledger([d.key for d in decisions]))
        return {d.key for d in decisions}

    def _flush(self, *, final: bool = False) -> None:
        result = self.result
        if self.on_keys is None or ((self.fit is not None or self.holding) and not final):
            return
        size = len(result.send_keys) if final else self.flush_size
        while size and len(result.send_keys) >= size:
            keys, result.send_keys = result.send_keys[:size], result.send_keys[size:]
            result.sent += len(keys)
            self.on_keys(keys, "upsert")
            if final:
                break
        if final and result.delete_keys:
            keys, result.delete_keys = result.delete_keys, []
            result.sent += len(keys)
            self.on_keys(keys, "delete")

    def _match_key(self, value: str) -> str:
        """A match value as the destination compares it (e-mail addresses whatever their
        case): two records with one key are one recipient, so the second is a duplicate. The
        ledger keeps match values in this form."""
        if not value:
            return ""
        sync = self.sync
        return self.connector.match_key(
            sync.destination_object, sync.match_destination_field, value
        )

    def _ledger(self, keys: list[str]) -> dict[str, LedgerState]:
        return {key: LedgerState(*rest) for key, *rest in ledger_states(self.sync.pk, keys)}

    def _plan_rows(self, rows: list[dict], *, skip_ledger: bool = False) -> None:
        keys = [str(row["_key"]) for row in rows]
        ledger = {} if skip_ledger else self._ledger(keys)
        match_values = [
            self._match_key(str(row.get(self.sync.match_source_field) or "").strip())
            for row in rows
        ]
        # A record the destination confirmed under this same value owns it; any other record
        # (new, changed value, or never confirmed) may collide with another's: look those up.
        moved = {
            value
            for key, value in zip(keys, match_values, strict=True)
            if value
            and (
                key not in ledger
                or ledger[key].match_value != value
                or ledger[key].status != LedgerStatus.SYNCED
            )
        }
        taken = {} if skip_ledger or not moved else ledger_match_owners(self.sync.pk, moved, keys)
        in_sql = (
            ledger_match_owners(self.sync.pk, moved, keys, status=LedgerStatus.PENDING)
            if self.sql_owned and moved
            else {}
        )
        decisions = []
        for row, key, value in zip(rows, keys, match_values, strict=True):
            if key in self.seen:
                continue
            self.seen.add(key)
            if value in in_sql and value not in self.match_owner:
                if key_order(in_sql[value]) < key_order(key):
                    self.match_owner[value] = in_sql[value]
                else:
                    self.demoted[in_sql[value]] = key
            owner = taken.get(value) or self.match_owner.get(value) if value else None
            if value and value not in self.match_owner:
                self.match_owner[value] = key
            entry = ledger.get(key)
            decisions.append(self.ctx.decide(row, entry, owner, self.connector, new=entry is None))
        self._record(decisions, ledger)

    def _plan_leftovers(self) -> None:
        """Entries still pending or failed whose rows did not change: plan them again."""
        leftovers = list(
            LedgerEntry.objects.filter(sync=self.sync, status__in=RETRY_STATUSES).values_list(
                "record_key", flat=True
            )
        )
        gone = self._plan_keys([key for key in leftovers if key not in self.seen])
        for start in range(0, len(gone), 1000):
            chunk = gone[start : start + 1000]
            self._record(
                [
                    Decision(key, "invalid", "no longer in the source (or its filter)")
                    for key in chunk
                ],
                self._ledger(chunk),
            )
            self.seen.update(chunk)

    def _plan_deletes(self) -> None:
        present = self.ctx.reader.all_keys()
        self.keys_read += len(present)
        keys = LedgerEntry.objects.filter(
            sync=self.sync, created_by_sync=True, status=LedgerStatus.SYNCED
        ).values_list("record_key", flat=True)
        self._archive([key for key in keys if key not in present])

    def _archive(self, gone: list[str]) -> None:
        """Archive these leavers, unless more of the sync's records left than its guard
        allows. Real-time runs count what the sync archived since its last scheduled plan
        too, so a mass removal is not let through in many small runs."""
        if not gone:
            return
        archived_lately = 0
        if self.run.trigger == Trigger.REALTIME and self.sync.source_watermark is not None:
            archived_lately = LedgerEntry.objects.filter(
                sync=self.sync,
                status=LedgerStatus.DELETED,
                synced_at__gte=self.sync.source_watermark,
            ).count()
        created = (
            LedgerEntry.objects.filter(sync=self.sync, created_by_sync=True)
            .exclude(status=LedgerStatus.DELETED)
            .count()
        )
        created += archived_lately  # they were still there at the last scheduled plan
        limit = self.sync.mirror_max_delete_share * created
        if len(gone) + archived_lately > limit:
            self.result.counts["blocked"] += len(gone)
            self.run.error = (
                f"Mirror delete guard: {len(gone) + archived_lately} of the {created} records "
                "this sync created "
                f"left the source, more than the allowed {self.sync.mirror_max_delete_share:.0%}. "
                "Nothing was archived; check the source, or raise the share on the sync."
            )
            self.mirror_guard_tripped = True
            return
        self.result.delete_keys.extend(gone)

    def _record(self, decisions: list[Decision], ledger: dict[str, LedgerState]) -> None:
        result = self.result
        if self.dry_run:
            # Preview: counts and the first payloads; nothing is written or sent.
            for d in decisions:
                if self.fit is not None and d.bucket == "send":
                    self.fit.hold(self.ctx, d, None)
                if len(result.preview) < PREVIEW_PAYLOADS and d.bucket != "unchanged":
                    shown: dict[str, Any] = {
                        "key": d.key,
                        "bucket": d.bucket,
                        "match": d.match_value,
                    }
                    if d.bucket == "send":
                        shown["payload"] = d.payload
                    else:
                        shown["reason"] = d.reason
                    result.preview.append(shown)
                result.counts["would_send" if d.bucket == "send" else d.bucket] += 1
            return
        new: list[PlannedRow] = []
        changed: list[PlannedRow] = []
        for d in decisions:
            entry = ledger.get(d.key)
            if d.bucket == "unchanged":
                result.counts["unchanged"] += 1
                continue
            if d.bucket != "send":
                result.counts[d.bucket] += 1
            again = d.bucket in ("send", DEFERRED)  # deferred: pending, planned next run
            status = LedgerStatus.PENDING if again else LedgerStatus.SKIPPED
            if entry is not None and entry.status == LedgerStatus.INTENT_CREATE and again:
                status = LedgerStatus.INTENT_CREATE  # the executor looks it up before creating
            row = PlannedRow(d.key, status, d.plan_hash, self._match_key(d.match_value), d.reason)
            (new if entry is None else changed).append(row)
            if d.bucket == "send" and self.fit is not None:
                self.fit.hold(self.ctx, d, row)
            elif d.bucket == "send":
                result.send_keys.append(d.key)
        ledger_insert(self.sync.pk, new)
        self.inserted += len(new)
        ledger_update(self.sync.pk, changed)
        self._flush()
