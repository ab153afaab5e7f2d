"""What the events do, for every vendor alike (docs/webhooks.md#what-the-events-do).

- An unsubscribe, hard bounce or spam complaint withdraws the person's consent, with the
  event as evidence, for the purposes of the syncs into where it happened (every e-mail purpose
  when the vendor says the person is out of all e-mail: HubSpot's opt-out, a bounce, a
  complaint); then every *other* destination that holds the person (the ledgers say which) gets
  an opt-out of its own (``suppress.py``), and the consent gate keeps every later sync from
  sending them again.
- Opens and clicks become the person's activity in the backbone (docs/metrics.md); sends,
  opens, clicks and conversions go out as events (docs/events-out.md).
- A campaign sent starts reading its report (``polls.py``).
- An error notification or a change of the vendor account's state marks the connection and
  alerts.

Each event is processed in a transaction of its own, claimed by one atomic update (a second
worker given the same event does nothing); one that fails is marked failed with the error and
retried by the beat task.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from exports.backbone.activity import Activity, activities_record
from exports.backbone.providers.consent import ConsentUnavailable
from integrations.connectors import connector_class
from integrations.connectors.feedback import ACCOUNT, ACTIVITY, WITHDRAWALS, FeedbackKind
from integrations.engine.state import connection_mark_failed
from integrations.events_out.outbox import OutEvent, outbox_write, stable_id
from integrations.models import Connection
from integrations.selectors import connector_for
from integrations.webhooks.consent import EMAIL_PURPOSES, consent_withdraw
from integrations.webhooks.models import EventState, WebhookEvent
from integrations.webhooks.polls import poll_schedule, polls_supported
from integrations.webhooks.selectors import contacts_by_email, holders, in_scope, person_syncs
from integrations.webhooks.suppress import suppressions_plan
from mktintegration.errors import ConnectorError

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
# Withdrawals for a scope no sync writes to (an audience we never fed) are for this purpose.
DEFAULT_PURPOSE = "email_marketing"
ACTIVITY_TYPES = {FeedbackKind.OPEN: "email_open", FeedbackKind.CLICK: "email_click"}
OUT_TYPES = {
    FeedbackKind.SEND: "email.sent",
    FeedbackKind.OPEN: "email.opened",
    FeedbackKind.CLICK: "email.clicked",
    FeedbackKind.CONVERSION: "email.converted",
}
_PERSONAL = WITHDRAWALS | ACTIVITY


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def events_process(*, event_ids: list[int]) -> dict[str, int]:
    """Process these events (those not processed yet); counts by resulting state."""
    events = list(
        WebhookEvent.objects.select_related("connection").filter(
            pk__in=event_ids, state__in=[EventState.RECEIVED, EventState.FAILED]
        )
    )
    by_connection: dict[int, list[WebhookEvent]] = defaultdict(list)
    for event in events:
        by_connection[event.connection_id].append(event)
    counts: dict[str, int] = defaultdict(int)
    for group in by_connection.values():
        for state, n in Processor(group[0].connection).run(group).items():
            counts[state] += n
    return dict(counts)


class Processor:
    def __init__(self, connection: Connection):
        self.connection = connection

    @cached_property
    def syncs(self):
        """The syncs of people (read once per task, only if an event needs them)."""
        return person_syncs()

    def run(self, events: list[WebhookEvent]) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        # Events nobody acts on (most of a CRM's property changes): kept, in one update.
        other = [e.pk for e in events if e.kind == FeedbackKind.OTHER]
        if other:
            counts[EventState.IGNORED] = WebhookEvent.objects.filter(
                pk__in=other, state__in=[EventState.RECEIVED, EventState.FAILED]
            ).update(
                state=EventState.IGNORED,
                outcome="kept; nothing to do for this kind of event",
                attempts=F("attempts") + 1,
                processed_at=timezone.now(),
                error="",
            )
            events = [e for e in events if e.kind != FeedbackKind.OTHER]
        if not events:
            return counts
        subjects = self._subjects(events)  # a vendor request: before any transaction
        emails = [e.email or subjects.get(e.subject_id, "") for e in events]
        contacts = contacts_by_email(emails=emails, connection=self.connection, syncs=self.syncs)
        for event, email in zip(events, emails, strict=True):
            attempts = event.attempts
            if event.kind in _PERSONAL and not email and event.subject_id in self.unresolved:
                self._fail(event, self.unresolved[event.subject_id])
                counts[EventState.FAILED] += 1
                continue
            try:
                with transaction.atomic():
                    claimed = WebhookEvent.objects.filter(
                        pk=event.pk,
                        state__in=[EventState.RECEIVED, EventState.FAILED],
                        attempts=attempts,
                    ).update(attempts=F("attempts") + 1)
                    if not claimed:
                        continue  # another worker took it
                    if email and not event.email:
                        event.email = email[:254]
                    event.contact_id = contacts.get(email.strip().lower()) if email else None
                    self._apply(event)
                    event.processed_at = timezone.now()
                    event.error, event.not_before = "", None
                    event.save(
                        update_fields=[
                            "state",
                            "outcome",
                            "contact_id",
                            "email",
                            "processed_at",
                            "error",
                            "not_before",
                        ]
                    )
            except ConsentUnavailable as exc:  # fail closed: kept, retried when it answers
                self._fail(event, f"the consent service could not record it: {exc}")
                counts[EventState.FAILED] += 1
                continue
            except Exception as exc:  # a database error, a bug: this event only, retried later
                log.exception("webhook event %s could not be processed", event.pk)
                self._fail(event, f"{type(exc).__name__}: {exc}")
                counts[EventState.FAILED] += 1
                continue
            counts[event.state] += 1
        return counts

    # --- who ---------------------------------------------------------------------------------
    def _subjects(self, events: list[WebhookEvent]) -> dict[str, str]:
        """Addresses of people the vendor named only by its id (HubSpot's objectId)."""
        self.unresolved: dict[str, str] = {}
        ids = sorted(
            {e.subject_id for e in events if e.kind in _PERSONAL and e.subject_id and not e.email}
        )
        if not ids:
            return {}
        try:
            return connector_for(self.connection).feedback_emails(ids)
        except ConnectorError as exc:
            self.unresolved = {i: f"the person could not be looked up: {exc.message}" for i in ids}
            return {}

    def _fail(self, event: WebhookEvent, error: str) -> None:
        attempts = event.attempts + 1  # as read before this try
        WebhookEvent.objects.filter(pk=event.pk, attempts=event.attempts).update(
            state=EventState.FAILED,
            attempts=attempts,
            error=error[:2000],
            outcome=("failed; retried" if attempts < MAX_ATTEMPTS else "failed; not retried again"),
            not_before=timezone.now() + retry_delay(attempts),
        )

    # --- what --------------------------------------------------------------------------------
    def _apply(self, event: WebhookEvent) -> None:
        kind = FeedbackKind(event.kind)
        if kind in WITHDRAWALS:
            self._withdraw(event)
        elif kind in ACTIVITY:
            self._activity(event, kind)
        elif kind == FeedbackKind.CAMPAIGN_SENT:
            self._campaign(event)
        elif kind in ACCOUNT:
            self._account(event)
        else:  # only kinds added later get here (OTHER is kept in bulk, above)
            event.state = EventState.IGNORED
            event.outcome = f"kept; nothing to do for {event.vendor_event or kind}"[:500]

    def _evidence(self, event: WebhookEvent) -> dict:
        return {
            "vendor": event.vendor,
            "connection_id": self.connection.pk,
            "event_id": event.event_id or event.dedupe_key,
            "webhook_event_id": event.pk,
            "kind": event.kind,
            "occurred_at": event.occurred_at,
            "detail": event.detail,
        }

    def _withdraw(self, event: WebhookEvent) -> None:
        if event.contact_id is None:
            event.state = EventState.IGNORED
            event.outcome = "no contact of ours has this address: nothing to withdraw"
            return
        scoped = {
            s.consent_purpose
            for s in self.syncs
            if s.consent_purpose and in_scope(s, self.connection, event.scope)
        }
        purposes = list(EMAIL_PURPOSES) if event.all_email else sorted(scoped or {DEFAULT_PURPOSE})
        consent_withdraw(
            contact_id=event.contact_id,
            purposes=purposes,
            source=f"{event.vendor} {event.kind}",
            evidence=self._evidence(event),
        )
        targets = [
            (sync, key)
            for sync, key in holders(contact_ids=[event.contact_id], syncs=self.syncs)
            if not in_scope(sync, self.connection, event.scope)
            and (event.all_email or not sync.consent_purpose or sync.consent_purpose in purposes)
        ]
        queued = suppressions_plan(event=event, targets=targets)
        event.state = EventState.PROCESSED
        event.outcome = (
            f"consent withdrawn ({', '.join(purposes)}); opt-out queued at {len(queued)} other "
            f"destination(s)"
            + (f": {', '.join(sorted({s.sync.name for s in queued}))}" if queued else "")
        )[:500]

    def _activity(self, event: WebhookEvent, kind: FeedbackKind) -> None:
        recorded = 0
        if event.contact_id is not None and kind in ACTIVITY_TYPES:
            recorded = activities_record(
                activities=[Activity(event.contact_id, ACTIVITY_TYPES[kind], event.occurred_at)]
            )
        self._out(event, OUT_TYPES[kind])
        event.state = EventState.PROCESSED
        if recorded:
            event.outcome = f"{ACTIVITY_TYPES[kind]} recorded for contact {event.contact_id}"
        elif event.contact_id is None:
            event.outcome = "no contact of ours has this address: sent out as an event only"
        else:
            event.outcome = "sent out as an event (not an activity of the person)"

    def _campaign(self, event: WebhookEvent) -> None:
        self._out(event, "campaign.sent")
        event.state = EventState.PROCESSED
        if event.campaign_id and polls_supported(self.connection):
            poll = poll_schedule(
                connection=self.connection,
                key=f"campaign:{event.campaign_id}",
                started_at=event.occurred_at,
            )
            event.outcome = f"campaign report read until {poll.poll_until:%Y-%m-%d %H:%M} UTC"
        else:
            event.outcome = "sent out as an event"

    def _account(self, event: WebhookEvent) -> None:
        label = connector_class(self.connection.vendor).label
        message = f"{label} reports: {event.detail or event.vendor_event}"
        connection_mark_failed(self.connection, auth=False, message=message)
        connection, detail = self.connection, message

        def alert():
            from integrations.operations.alerts import vendor_notice

            vendor_notice(connection=connection, message=detail)

        transaction.on_commit(alert)
        event.state = EventState.PROCESSED
        event.outcome = "connection marked failing; alert sent"

    def _out(self, event: WebhookEvent, type_: str) -> None:
        data = {
            "connection_id": self.connection.pk,
            "vendor": event.vendor,
            "contact_id": event.contact_id,
            "campaign_id": event.campaign_id,
            "vendor_event_id": event.event_id,
            "webhook_event_id": event.pk,
            **({"scope": event.scope} if event.scope else {}),
            **({"email": event.email} if settings.MKT_EVENTS_PERSONAL_DATA and event.email else {}),
        }
        outbox_write(
            [
                OutEvent(
                    id=stable_id("feedback", self.connection.pk, event.dedupe_key),
                    type=type_,
                    source=f"/mktintegration/connections/{self.connection.pk}",
                    subject=str(event.contact_id or ""),
                    time=event.occurred_at,
                    data=data,
                )
            ]
        )
