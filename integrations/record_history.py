"""Record history: one source record across the syncs the user may see.

A company is found by its external id (the clients and metrics datasets key their ledger by
the company id), a contact by its e-mail address (the contacts dataset keys it by the contact
id). For each visible sync holding the record the page shows the ledger's state, the vendor's
last answer, the consent decision of the latest send, whether the record's residency region
may go to the connection, the runs that touched it (recent ones) and its dead letters.

Every search writes one access-log row (channel ``admin``). An e-mail address is never
stored in it, as ``audit.pages`` explains for searches: the row says a search was made, how
long the term was, and the ids it showed. An external id is a business key and is kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import TextField
from django.db.models.functions import Cast
from django.template.response import TemplateResponse
from django.utils.html import format_html

from audit.models import Outcome
from audit.pages import admin_actor
from audit.services import access_log_write
from exports.backbone.models import Company, Contact
from integrations.evidence_admin import consent_decision_html
from integrations.models import DeadLetter, LedgerEntry, Sync, SyncBatch, SyncRun
from integrations.models.runs import RunStatus
from mktintegration.bounds import BoundError, text_check

ACCESS_LOG_DATASET = "integrations:record_history"
EMAIL_SEARCH_PERMISSION = "backbone.view_contact"
BY_EXTERNAL_ID = "external_id"
BY_EMAIL = "email"
# The runs searched for a record's batches, per sync (the latest ones); dead letters name
# their run whatever its age. Each list on the page is cut at SHOWN.
RECENT_RUNS = 20
SHOWN = 20
_BLOCKED = re.compile(r"region \S+ may not be sent")


@dataclass(frozen=True)
class Kind:
    """What a search looks up: the backbone model, its field, and the datasets keyed by it."""

    label: str
    term: str  # what the searched text is, in messages
    model: type[models.Model]
    field: str
    datasets: tuple[str, ...]
    region_field: str

    @property
    def max_chars(self) -> int:
        # The column's own width: a longer term matches nothing, and is refused as such.
        column = self.model._meta.get_field(self.field)
        assert isinstance(column, models.CharField) and column.max_length
        return column.max_length


KINDS = {
    BY_EXTERNAL_ID: Kind(
        "company", "external id", Company, "external_id", ("clients", "metrics"), "residency_region"
    ),
    BY_EMAIL: Kind("contact", "e-mail address", Contact, "email", ("contacts",), "region"),
}


class RecordSearchForm(forms.Form):
    q = forms.CharField(label="Record", strip=True)
    by = forms.ChoiceField(
        label="by",
        required=False,
        choices=[
            ("", "guess (an @ means an e-mail address)"),
            (BY_EXTERNAL_ID, "company external id"),
            (BY_EMAIL, "contact e-mail address"),
        ],
    )

    def clean(self):
        super().clean()
        data = self.cleaned_data
        q = data.get("q")
        if q is None:
            return data
        by = data.get("by") or (BY_EMAIL if "@" in q else BY_EXTERNAL_ID)
        data["by"] = by
        kind = KINDS[by]
        try:
            text_check(kind.term, q, max_chars=kind.max_chars)
            if by == BY_EMAIL:
                validate_email(q)
        except BoundError as exc:
            self.add_error("q", exc.message)
        except ValidationError:
            self.add_error("q", "Give a contact's e-mail address, such as name@example.com.")
        return data


@dataclass
class SyncHistory:
    """One visible sync holding the record."""

    sync: Sync
    entry: LedgerEntry
    residency: str
    consent: str
    runs: list[SyncRun] = field(default_factory=list)
    dead_letters: list[tuple[DeadLetter, str | None, str]] = field(default_factory=list)

    @property
    def payload_hash_short(self) -> str:
        return self.entry.payload_hash[:12]


@dataclass(frozen=True)
class Subject:
    kind: Kind
    pk: int
    region: str
    label: str

    @property
    def record_key(self) -> str:
        return str(self.pk)  # the planner's key: str(row[dataset.key])


# --- selectors ---------------------------------------------------------------------------------


def subject_find(*, q: str, by: str) -> Subject | None:
    """The backbone record a (valid) search names, or None."""
    kind = KINDS[by]
    manager = kind.model._default_manager
    fields = ("pk", kind.region_field)
    row = manager.filter(**{kind.field: q}).values_list(*fields).first()
    if row is None and by == BY_EMAIL and q != q.lower():
        # Addresses are stored lower-cased; both lookups use the unique index.
        row = manager.filter(**{kind.field: q.lower()}).values_list(*fields).first()
    if row is None:
        return None
    pk, region = row
    label = f"company {q} (id {pk})" if by == BY_EXTERNAL_ID else f"contact {pk}"
    return Subject(kind=kind, pk=pk, region=region or "", label=label)


def residency_decision(*, entry: LedgerEntry, region: str, allowed: list[str]) -> str:
    """Whether the record's region may go to the sync's connection, in words."""
    if entry.status == "skipped" and _BLOCKED.search(entry.last_error or ""):
        return f"blocked at the last plan: {entry.last_error}"
    shown = region or "unknown"
    if not allowed:
        return f"allowed: the connection takes every region (the record's is {shown})"
    regions = ", ".join(allowed)
    if region in allowed:
        return f"allowed: {shown} is one of the connection's regions ({regions})"
    return f"blocked: {shown} is not one of the connection's regions ({regions})"


def consent_summary(*, sync: Sync, entry: LedgerEntry) -> str:
    if not sync.consent_purpose:
        return "not consent-gated (the sync sets no consent purpose)"
    if entry.consent_source:
        return format_html("{} consent: {}", sync.consent_purpose, consent_decision_html(entry))
    return f"needs {sync.consent_purpose} consent; no send of this record recorded a decision"


def runs_touching(*, sync: Sync, record_key: str, also: set[int]) -> list[SyncRun]:
    """The runs among the sync's latest whose batches carried the record, and ``also``."""
    recent = (
        SyncRun.objects.filter(sync=sync)
        .exclude(status=RunStatus.PREVIEW)
        .order_by("-queued_at")
        .values_list("pk", flat=True)[:RECENT_RUNS]
    )
    carried = (
        SyncBatch.objects.filter(run_id__in=list(recent))
        .annotate(keys=Cast("record_keys", TextField()))
        .filter(keys__contains=json.dumps(record_key))  # '"42"' matches 42, not 142
        .values_list("run_id", flat=True)
        .distinct()
    )
    ids = set(carried) | also
    return list(SyncRun.objects.filter(pk__in=ids).order_by("-queued_at")[:SHOWN])


def record_histories(
    *, subject: Subject, syncs, user, dead_letter_admin=None
) -> tuple[list[SyncHistory], list[Sync]]:
    """Per visible sync holding the record, its history; and the visible syncs of the
    record's datasets that hold no ledger entry for it. ``dead_letter_admin``: None when the
    user may not see dead letters."""
    candidates = syncs.filter(dataset__in=subject.kind.datasets)
    entries = (
        LedgerEntry.objects.filter(sync__in=candidates, record_key=subject.record_key)
        .select_related("sync__connection")
        .order_by("sync__name")
    )
    histories = []
    for entry in entries:
        sync = entry.sync
        history = SyncHistory(
            sync=sync,
            entry=entry,
            residency=residency_decision(
                entry=entry, region=subject.region, allowed=sync.connection.allowed_regions or []
            ),
            consent=consent_summary(sync=sync, entry=entry),
        )
        run_ids: set[int] = set()
        if dead_letter_admin is not None:
            letters = list(entry.dead_letters.order_by("-created_at")[:SHOWN])
            run_ids = {letter.run_id for letter in letters if letter.run_id}
            for letter in letters:
                letter.sync = sync
                if dead_letter_admin._may_see_payload(user, letter):
                    payload = json.dumps(letter.payload, ensure_ascii=False, sort_keys=True)
                    history.dead_letters.append((letter, payload, ""))
                else:
                    history.dead_letters.append(
                        (letter, None, dead_letter_admin.payload_hidden(letter))
                    )
        history.runs = runs_touching(sync=sync, record_key=subject.record_key, also=run_ids)
        histories.append(history)
    holding = {h.sync.pk for h in histories}
    elsewhere = [s for s in candidates.order_by("name") if s.pk not in holding]
    return histories, elsewhere


# --- the page ----------------------------------------------------------------------------------


def _not_recorded(value: str) -> str:
    return f"(not recorded: {len(value)} characters)"  # as audit.pages writes it


def _logged_filters(request, data: dict | None) -> dict:
    """The search as the access log keeps it: never an e-mail address, never bad input."""
    q = request.GET.get("q", "")
    by = request.GET.get("by", "")
    if data is None:  # refused input: neither value is kept
        by_kept = by if by in KINDS or not by else _not_recorded(by)
        return {"q": _not_recorded(q), "by": by_kept}
    if data["by"] == BY_EMAIL:
        return {"q": _not_recorded(data["q"]), "by": BY_EMAIL}
    return {"q": data["q"], "by": data["by"]}


def _log(request, **fields) -> None:
    access_log_write(**admin_actor(request), dataset=ACCESS_LOG_DATASET, **fields)


def record_history_view(request, *, model_admin):
    """GET ?q=...&by=external_id|email. Anyone who may see at least one sync."""
    from integrations.admin import _visible_syncs  # the admin imports this module

    syncs = _visible_syncs(request)
    searched = "q" in request.GET
    if not syncs.exists():
        if searched:
            _log(
                request,
                filters=_logged_filters(request, None),
                outcome=Outcome.DENIED,
                status_code=403,
            )
        raise PermissionDenied(
            "Record history shows what the syncs you may see did with a record, and no sync "
            "is granted to you. An Integration Admin can grant you a sync."
        )
    form = RecordSearchForm(request.GET if searched else None)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Record history",
        "opts": model_admin.model._meta,
        "form": form,
        "searched": searched,
        "recent_runs": RECENT_RUNS,
        "shown": SHOWN,
    }
    if searched and not form.is_valid():
        _log(
            request,
            filters=_logged_filters(request, None),
            outcome=Outcome.INVALID,
            status_code=400,
        )
        return TemplateResponse(
            request, "admin/integrations/record_history.html", context, status=400
        )
    if (
        searched
        and form.cleaned_data["by"] == BY_EMAIL
        and not request.user.has_perm(EMAIL_SEARCH_PERMISSION)
    ):
        # An address names a person: who may not view contacts may not learn which one.
        _log(
            request,
            filters=_logged_filters(request, form.cleaned_data),
            outcome=Outcome.DENIED,
            status_code=403,
        )
        raise PermissionDenied(
            "Searching by e-mail address needs permission to view contacts; search a company "
            "by its external id instead."
        )
    if searched:
        context.update(_search(request, form.cleaned_data, syncs, model_admin))
    return TemplateResponse(request, "admin/integrations/record_history.html", context)


def _search(request, data: dict, syncs, model_admin) -> dict:
    subject = subject_find(q=data["q"], by=data["by"])
    filters = _logged_filters(request, data)
    kind = KINDS[data["by"]]
    if subject is None:
        _log(
            request,
            filters=filters,
            outcome=Outcome.OK,
            status_code=200,
            detail=f"no {kind.label} found",
        )
        return {"not_found": kind.label}
    letters_admin = model_admin.admin_site.get_model_admin(DeadLetter)
    may_see_letters = letters_admin.has_view_permission(request)
    histories, elsewhere = record_histories(
        subject=subject,
        syncs=syncs,
        user=request.user,
        dead_letter_admin=letters_admin if may_see_letters else None,
    )
    letters = [letter for h in histories for letter, _, _ in h.dead_letters]
    payloads = [letter for h in histories for letter, payload, _ in h.dead_letters if payload]
    shown_fields = ["status", "synced_at", "updated_at", "destination_id", "payload_hash"]
    shown_fields += ["last_error", "consent_source", "consent_ref", "consent_checked_at"]
    if letters:
        shown_fields += ["deadletter.error"] + (["deadletter.payload"] if payloads else [])
    detail = f"{subject.kind.label} {subject.pk}; ledger ids: " + (
        ", ".join(str(h.entry.pk) for h in histories) or "none"
    )
    if letters:
        detail += "; dead letters: " + ", ".join(str(letter.pk) for letter in letters)
    _log(
        request,
        filters=filters,
        fields=shown_fields,
        rows=len(histories),
        outcome=Outcome.OK,
        status_code=200,
        detail=detail,
    )
    return {
        "subject": subject,
        "histories": histories,
        "elsewhere": elsewhere,
        "may_see_letters": may_see_letters,
    }
