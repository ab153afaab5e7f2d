"""Marketo's webhooks to our receiver (docs/connectors/marketo.md#webhooks).

Marketo sends a webhook from a trigger campaign's "Call Webhook" step, with a payload template
written in Marketo's admin and any custom headers; it signs nothing [K13][K14]. So the
receiver URL carries a secret of ours (or the ``X-Mkt-Webhook-Secret`` header does), and the
template is ours: a JSON object per call,

    {"event": "unsubscribe", "email": "{{lead.Email Address}}", "leadId": "{{lead.Id}}",
     "campaignId": "{{campaign.id}}", "at": "{{system.dateTime}}"}

``event`` is one of ``EVENTS``. Marketo gives no event id: events are told apart by their
content (``at`` included), so a retried call is stored once.
"""

from __future__ import annotations

import json

from integrations.connectors.feedback import (
    FeedbackEvent,
    FeedbackKind,
    InboundWebhook,
    RefusalReason,
    WebhookRefused,
    occurred,
)
from mktintegration import bounds

EVENTS = {
    "unsubscribe": FeedbackKind.UNSUBSCRIBE,
    "hard_bounce": FeedbackKind.HARD_BOUNCE,
    "spam_complaint": FeedbackKind.SPAM_COMPLAINT,
    "send": FeedbackKind.SEND,
    "open": FeedbackKind.OPEN,
    "click": FeedbackKind.CLICK,
    "conversion": FeedbackKind.CONVERSION,
}
# Marketo's unsubscribe is from all marketing e-mail of the instance; a bounce and a complaint
# are about the address.
_ALL_EMAIL = {FeedbackKind.UNSUBSCRIBE, FeedbackKind.HARD_BOUNCE, FeedbackKind.SPAM_COMPLAINT}
MAX_TEXT = 254


def _refused(message: str) -> WebhookRefused:
    return WebhookRefused(RefusalReason.BAD_BODY, message, status=400)


def parse_marketo(request: InboundWebhook) -> list[FeedbackEvent]:
    """The one event of a Marketo webhook call (an empty body: a test call, answered 200)."""
    if not request.body.strip():
        return []
    try:
        data = json.loads(request.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refused(f"not a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise _refused("a Marketo webhook body is one JSON object (the payload template)")
    values = {}
    for name in ("event", "email", "leadId", "campaignId", "at", "reason"):
        value = data.get(name, "")
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise _refused(f"{name} must be text")
        value = str(value).strip()
        if len(value) > MAX_TEXT:
            raise _refused(f"{name} is longer than {MAX_TEXT} characters")
        values[name] = value
    kind = EVENTS.get(values["event"].lower(), FeedbackKind.OTHER)
    if kind in _ALL_EMAIL and not (values["email"] or values["leadId"]):
        raise _refused("an opt-out names the lead: email or leadId")
    return [
        FeedbackEvent(
            kind=kind,
            occurred_at=occurred(values["at"]),
            vendor_event=values["event"][:64] or "webhook",
            raw={k: v for k, v in values.items() if v},
            email=values["email"] if "@" in values["email"] else "",
            subject_id=values["leadId"] if bounds.ID.contains(_int(values["leadId"])) else "",
            all_email=kind in _ALL_EMAIL,
            campaign_id=values["campaignId"][:64],
            detail=values["reason"][:300],
        )
    ]


def _int(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 19 else 0
