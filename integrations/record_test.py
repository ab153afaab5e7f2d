"""Test on one record: what a saved sync would send for one source record, and what the
destination holds for it today, without writing anything.

The record is found by its key (the dataset's id) or by the sync's match value. Its row is
read as a run reads it (``SourceReader.by_keys``, the sync's filters and consent purpose) and
decided by the planner's own path (``SyncContext.decide``: the mapping, the gates, the
ledger's diff), so the page shows the bucket a run would put it in and why. The destination is
asked through the connector's read-only ``lookup_record``; no ledger row, no run and no vendor
write is made.

Values of personal dataset fields (and the destination's values of the fields mapped from
them) are shown only to who may export the dataset, as the dead letters' payloads are. Every
test writes one access-log row, channel ``preview``, naming the record key; a searched match
value is not kept in it (it may be an e-mail address).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections
from django.http import Http404
from django.template.response import TemplateResponse

from audit.context import client_address
from audit.models import Channel, Outcome
from audit.services import access_log_write
from exports.backbone.router import backbone_alias
from exports.datasets import FieldType
from exports.query import export_query_parse
from integrations.engine.ledger_io import ledger_match_owners, ledger_states
from integrations.engine.planner import Decision, LedgerState, SyncContext
from integrations.engine.source import SourceReader
from integrations.mapping import template_fields
from integrations.models import LedgerEntry, Sync
from integrations.selectors import connector_for
from mktintegration import bounds
from mktintegration.errors import ConnectorError

BY_KEY = "key"
BY_MATCH = "match"
MAX_CHARS = bounds.TEXT_VALUE_CHARS
HIDDEN = "(hidden)"


class RecordTestForm(forms.Form):
    q = forms.CharField(label="Record", strip=True)
    by = forms.ChoiceField(label="by", required=False)

    def __init__(self, *args, sync: Sync, **kwargs):
        super().__init__(*args, **kwargs)
        self.sync = sync
        by = self.fields["by"]
        assert isinstance(by, forms.ChoiceField)
        by.choices = [
            ("", "guess (a number is a record key, else the match value)"),
            (BY_KEY, "record key (the dataset's id)"),
            (BY_MATCH, f"match value ({sync.match_source_field})"),
        ]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        q = data.get("q")
        if q is None:
            return data
        try:
            bounds.text_check("Record", q, max_chars=MAX_CHARS)
        except bounds.BoundError as exc:
            self.add_error("q", exc.message)
            return data
        number = q.lstrip("-")
        by = data.get("by") or (BY_KEY if number.isascii() and number.isdigit() else BY_MATCH)
        data["by"] = by
        if by == BY_KEY and _key_value(q) is None:
            self.add_error("q", "A record key is a whole number, such as 1042.")
        return data


def _key_value(q: str) -> int | None:
    if not (q.isascii() and q.isdigit()):
        return None
    value = int(q)
    return value if bounds.KEY.minimum <= value <= bounds.KEY.maximum else None


# --- selectors ---------------------------------------------------------------------------------


@dataclass
class RecordTest:
    """What a run would do with one record, and what the destination holds for it."""

    key: str
    row: dict[str, Any] | None = None  # None: outside the sync's filters
    decision: Decision | None = None
    entry: LedgerEntry | None = None
    destination: dict[str, Any] | None = None
    lookup_supported: bool = True
    lookup_error: str = ""
    personal: set[str] = field(default_factory=set)  # destination fields of personal values


def record_key_find(*, ctx: SyncContext, q: str, by: str) -> str | None:
    """The key of the dataset's record (whatever the sync's filters) that the search names."""
    dataset = ctx.dataset
    if by == BY_KEY:
        key = _key_value(q)
        reader = SourceReader(export_query_parse(dataset, {}, allow_cursor=False), [dataset.key])
        return str(key) if key is not None and reader.by_keys([str(key)]) else None
    column = dataset.field(ctx.sync.match_source_field)
    values: list[Any]
    if column.type == FieldType.INT:
        values = [int(q)] if _key_value(q) is not None else []
    elif column.type == FieldType.TEXT:
        values = list(dict.fromkeys([q, q.lower()]))  # e-mail addresses are stored lower-cased
    else:
        values = []  # a date, number or flag is no way to name one record: use the key
    # The SQL is the dataset's declared expressions; the searched value is a parameter.
    key_sql = dataset.field(dataset.key).sql
    sql = (
        f"SELECT {key_sql} FROM {dataset.from_sql} WHERE {column.sql} = %s "  # noqa: S608
        f"ORDER BY {key_sql} LIMIT 1"
    )
    with connections[backbone_alias()].cursor() as cursor:
        for value in values:
            cursor.execute(sql, [value])
            found = cursor.fetchone()
            if found is not None:
                return str(found[0])
    return None


def personal_destination_fields(ctx: SyncContext) -> set[str]:
    """The destination fields whose values come from personal dataset fields."""
    personal = {f.name for f in ctx.dataset.fields if f.personal}
    fields = {
        m.destination
        for m in ctx.compiled
        if personal & set(template_fields(m.template) if m.template else [m.source])
    }
    if ctx.sync.match_source_field in personal:
        fields.add(ctx.sync.match_destination_field)
    return fields


def record_test(*, ctx: SyncContext, key: str) -> RecordTest:
    """Read the record as a run does and decide it by the planner's path; then look it up
    at the destination (read only). Nothing is written."""
    sync = ctx.sync
    result = RecordTest(key=key, personal=personal_destination_fields(ctx))
    result.entry = LedgerEntry.objects.filter(sync=sync, record_key=key).first()
    row = ctx.reader.by_keys([key]).get(key)
    if row is None:
        return result
    result.row = row
    validator = ctx.connector_cls(connection=sync.connection, secrets={})  # no network
    states = {k: LedgerState(*rest) for k, *rest in ledger_states(sync.pk, [key])}
    state = states.get(key)
    raw = str(row.get(sync.match_source_field) or "").strip()
    value = validator.match_key(sync.destination_object, sync.match_destination_field, raw)
    owner = ledger_match_owners(sync.pk, {value}, [key]).get(value) if value else None
    result.decision = ctx.decide(row, state, owner, validator, new=state is None)
    if not result.decision.match_value:
        return result
    connector = connector_for(sync.connection)
    try:
        result.destination = connector.lookup_record(
            sync.destination_object,
            sync.match_destination_field,
            result.decision.match_value,
            sync.destination_config or {},
            fields=tuple(m.destination for m in ctx.compiled),
        )
    except NotImplementedError:
        result.lookup_supported = False
    except ConnectorError as exc:
        result.lookup_error = exc.message[:500]
    finally:
        connector.http.close()
    return result


def would_do(*, sync: Sync, test: RecordTest) -> str:
    """What the write would do at the destination, in words."""
    decision = test.decision
    if decision is None or decision.bucket != "send":
        return ""
    if not test.lookup_supported or test.lookup_error:
        return ""
    found = test.destination
    if sync.mode == "create_only" and found:
        return f"nothing: the destination has it ({found['id']}) and the sync only creates"
    if sync.mode == "update_only" and not found:
        return "nothing: the destination does not have it and the sync only updates"
    return f"would update {found['id']}" if found else "would create"


def _shown(value: Any, name: str, hidden: set[str]) -> str:
    if name in hidden:
        return HIDDEN
    return "—" if value is None else str(value)


def comparison(*, test: RecordTest, hidden: set[str]) -> list[tuple[str, str, str, bool]]:
    """Per payload field: (name, what would be sent, what the destination holds, differs)."""
    payload = (test.decision.payload if test.decision else None) or {}
    held = (test.destination or {}).get("fields", {})
    rows = []
    for name in dict.fromkeys([*payload, *held]):
        sent, there = payload.get(name), held.get(name)
        differs = test.destination is not None and str(sent or "") != str(there or "")
        rows.append((name, _shown(sent, name, hidden), _shown(there, name, hidden), differs))
    return rows


def masked_reason(*, sync: Sync, test: RecordTest, hidden: set[str]) -> str:
    """The decision's reason without the values of hidden fields (a reason may quote one,
    such as an address that is not an e-mail address)."""
    decision = test.decision
    if decision is None:
        return ""
    payload = decision.payload or {}
    values = {str(payload[name]) for name in hidden if payload.get(name) not in (None, "")}
    if sync.match_destination_field in hidden and decision.match_value:
        values.add(decision.match_value)
    reason = decision.reason
    for value in sorted(values, key=len, reverse=True):
        reason = reason.replace(value, HIDDEN)
    return reason


def source_values(*, ctx: SyncContext, row: dict, show_personal: bool) -> list[tuple[str, str]]:
    personal = {f.name for f in ctx.dataset.fields if f.personal}
    shown = []
    for name in ctx.reader.fields:
        hide = name in personal and not show_personal
        shown.append((name, HIDDEN if hide else _shown(row.get(name), name, set())))
    consent = row.get("_consent")
    if ctx.sync.consent_purpose and consent is not None:
        status = getattr(consent, "status", consent) or "never given"
        shown.append((f"consent ({ctx.sync.consent_purpose})", str(status)))
    return shown


# --- the page ----------------------------------------------------------------------------------


def _log(request, sync: Sync, started: float, **fields) -> None:
    access_log_write(
        channel=Channel.PREVIEW,
        actor=f"user:{request.user.get_username()}",
        user_id=request.user.pk,
        client_address=client_address(request),
        dataset=sync.dataset,
        filters=sync.filters or {},
        duration_ms=int((time.monotonic() - started) * 1000),
        **fields,
    )


def _searched(data: dict) -> str:
    if data.get("by") == BY_KEY:
        return f"record key {data['q']}"
    return f"match value (not recorded: {len(data.get('q') or '')} characters)"


def record_test_view(request, object_id, *, model_admin):
    """GET ?q=...&by=key|match on a saved sync: who may preview it."""
    started = time.monotonic()
    sync = model_admin.get_object(request, unquote(object_id))
    if sync is None or not model_admin.has_view_permission(request, sync):
        raise Http404("No sync with that id is visible to you.")
    perm = "integrations.preview_sync"
    searched = "q" in request.GET
    what = f"sync {sync.pk} ({sync.name}), test on one record"
    if not (request.user.has_perm(perm) or request.user.has_perm(perm, sync)):
        if searched:
            _log(request, sync, started, outcome=Outcome.DENIED, status_code=403, detail=what)
        raise PermissionDenied("Testing a sync on one record needs the preview permission on it.")
    form = RecordTestForm(request.GET if searched else None, sync=sync)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Test {sync.name} on one record",
        "opts": model_admin.model._meta,
        "original": sync,
        "form": form,
        "searched": searched,
    }
    template = "admin/integrations/sync/test_record.html"
    if not searched:
        return TemplateResponse(request, template, context)
    if not form.is_valid():
        _log(request, sync, started, outcome=Outcome.INVALID, status_code=400, detail=what)
        return TemplateResponse(request, template, context, status=400)
    data = form.cleaned_data
    try:
        ctx = SyncContext.load(sync)
    except (ValidationError, KeyError, ValueError) as exc:
        _log(request, sync, started, outcome=Outcome.ERROR, status_code=200, detail=what)
        context["cannot_plan"] = str(exc)[:500]
        return TemplateResponse(request, template, context)
    dataset = ctx.dataset
    show_personal = request.user.has_perm(dataset.permission)
    match_personal = any(f.personal for f in dataset.fields if f.name == sync.match_source_field)
    if data["by"] == BY_MATCH and match_personal and not show_personal:
        # The match value names a person: who may not export the dataset gives the key.
        _log(request, sync, started, outcome=Outcome.DENIED, status_code=403, detail=what)
        form.add_error(
            "q",
            f"Searching by {sync.match_source_field} needs permission to export the "
            f"{dataset.name} dataset ({dataset.permission}); give the record key instead.",
        )
        return TemplateResponse(request, template, context, status=403)
    key = record_key_find(ctx=ctx, q=data["q"], by=data["by"])
    if key is None:
        detail = f"{what}: {_searched(data)}: not found"
        _log(request, sync, started, outcome=Outcome.OK, status_code=200, detail=detail)
        context["not_found"] = True
        return TemplateResponse(request, template, context)
    test = record_test(ctx=ctx, key=key)
    hidden = set() if show_personal else test.personal
    shown_fields = [] if test.row is None else list(ctx.reader.fields)
    if not show_personal:
        personal = {f.name for f in dataset.fields if f.personal}
        shown_fields = [name for name in shown_fields if name not in personal]
    bucket = test.decision.bucket if test.decision else "outside the sync's filters"
    _log(
        request,
        sync,
        started,
        fields=shown_fields,
        rows=0 if test.row is None else 1,
        outcome=Outcome.OK,
        status_code=200,
        detail=f"{what}: record {key} ({_searched(data)}): {bucket}",
    )
    context.update(
        {
            "test": test,
            "reason": masked_reason(sync=sync, test=test, hidden=hidden),
            "key": key,
            "entry": test.entry,
            "source": (
                source_values(ctx=ctx, row=test.row, show_personal=show_personal)
                if test.row is not None
                else []
            ),
            "comparison": comparison(test=test, hidden=hidden),
            "would": would_do(sync=sync, test=test),
            "hidden_note": bool(hidden) or (not show_personal and dataset.personal_data),
            "dataset": dataset,
            "vendor": ctx.connector_cls.label,
        }
    )
    return TemplateResponse(request, template, context)
