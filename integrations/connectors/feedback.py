"""What vendors tell us back, in the connectors' words: the values their webhook receivers and
pollers hand to ``integrations/webhooks`` (docs/webhooks.md).

A connector that receives webhooks declares how the vendor proves who sent them
(``Connector.webhook_auth``) and implements ``parse_webhook`` (and ``verify_webhook`` for a
signature); one that is polled implements ``poll_feedback``. Either way it returns
``FeedbackEvent`` values; what the events do (consent, suppression elsewhere, activity, alerts)
is the same for every vendor and lives in ``integrations/webhooks/process.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from django.utils.dateparse import parse_datetime


class FeedbackKind(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    HARD_BOUNCE = "hard_bounce"
    SPAM_COMPLAINT = "spam_complaint"
    SEND = "send"  # one person was sent a campaign
    OPEN = "open"
    CLICK = "click"
    CONVERSION = "conversion"
    CAMPAIGN_SENT = "campaign_sent"  # a campaign went out (its report can then be read)
    VENDOR_ERROR = "vendor_error"  # the vendor notifies an error of the account
    ACCOUNT_STATUS = "account_status"  # the vendor account changed state (disabled...)
    OTHER = "other"  # kept, not acted on


# A withdrawal of consent for the person; propagated to every other destination holding it.
WITHDRAWALS = frozenset(
    {FeedbackKind.UNSUBSCRIBE, FeedbackKind.HARD_BOUNCE, FeedbackKind.SPAM_COMPLAINT}
)
# Campaign feedback: an activity event of the person in the backbone.
ACTIVITY = frozenset(
    {FeedbackKind.SEND, FeedbackKind.OPEN, FeedbackKind.CLICK, FeedbackKind.CONVERSION}
)
# Error notifications and state changes of the vendor account: the connection's state, an alert.
ACCOUNT = frozenset({FeedbackKind.VENDOR_ERROR, FeedbackKind.ACCOUNT_STATUS})


class RefusalReason(StrEnum):
    UNKNOWN_CONNECTION = "unknown_connection"
    NOT_CONFIGURED = "not_configured"
    BAD_SIGNATURE = "bad_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    BAD_SECRET = "bad_secret"  # noqa: S105 - a reason, not a secret
    TOO_LARGE = "too_large"
    BAD_BODY = "bad_body"
    REPLAYED = "replayed"
    RATE_LIMITED = "rate_limited"


class WebhookRefused(Exception):
    """The request is not taken: nothing is stored, the vendor gets ``status``."""

    def __init__(
        self,
        reason: RefusalReason,
        message: str,
        *,
        status: int = 401,
        retry_after: int | None = None,
    ):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds, sent as Retry-After (429, 503)


@dataclass(frozen=True)
class InboundWebhook:
    """One request to a receiver, as a connector sees it (no Django request object).

    ``url`` is the address the vendor was given (MKT_BASE_URL, the path and the query), which
    is what signatures over the URI cover; ``headers`` have lower-case names.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    content_type: str = ""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class FeedbackEvent:
    """One thing the vendor reports. ``event_id`` is the vendor's own id when it gives one;
    otherwise events are told apart by a hash of their content (``dedupe_key``)."""

    kind: FeedbackKind
    occurred_at: datetime
    vendor_event: str  # the vendor's name for it (subscriptionType, type, action)
    raw: dict[str, Any]  # the event as the vendor sent it (for the record and the admin)
    event_id: str = ""
    email: str = ""  # the person, when the vendor names the address
    subject_id: str = ""  # the vendor's id of the person, when it names no address
    # Where at the vendor it happened (Mailchimp: {"list_id": ...}); a sync into the same
    # place on the same connection already knows.
    scope: dict[str, str] = field(default_factory=dict)
    # The withdrawal covers every e-mail purpose (an unsubscribe from all e-mail, an address
    # that bounces, a spam complaint), not only the purposes of the syncs into ``scope``.
    all_email: bool = False
    campaign_id: str = ""
    detail: str = ""

    @property
    def dedupe_key(self) -> str:
        if self.event_id:
            return f"id:{self.event_id}"[:128]
        text = json.dumps([self.vendor_event, self.raw], sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def occurred(text: str) -> datetime:
    """When a vendor says an event happened (ISO 8601; UTC when it names no zone); now, when
    it says nothing readable."""
    try:
        moment = parse_datetime(text.strip())
    except ValueError:
        moment = None
    if moment is None:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
