"""Salesforce Outbound Messages to our receiver: a SOAP ``notifications`` POST with the
``OrganizationId`` and at most 100 ``Notification`` elements, each an ``Id`` (unique, for
de-duplication: delivery is at least once, retried for 24 h) and the ``sObject`` with the
fields the message names; answered with a SOAP ``Ack`` of ``true`` [S23][S24].

Salesforce signs nothing: the receiver URL carries a secret of ours (as Mailchimp's does), and
the message must name the connection's own organisation [S25]. An outbound message on
Contact or Lead with ``HasOptedOutOfEmail`` and ``EmailBouncedReason`` is an opt-out (``true``)
or a hard bounce (a reason); anything else is kept and does nothing (docs/webhooks.md).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from integrations.connectors.feedback import (
    FeedbackEvent,
    FeedbackKind,
    InboundWebhook,
    RefusalReason,
    WebhookRefused,
    occurred,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
MAX_NOTIFICATIONS = 100  # per message [S23]
ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
).encode()
PEOPLE = ("Contact", "Lead")


def _refused(message: str, *, reason=RefusalReason.BAD_BODY, status: int = 400):
    return WebhookRefused(reason, message, status=status)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element, name: str) -> Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _text(element: Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def org_matches(sent: str, ours: str) -> bool:
    """Organisation ids compare on their case-sensitive 15-character form (18 adds a suffix)."""
    return bool(sent) and bool(ours) and sent[:15] == ours[:15]


def parse_outbound(request: InboundWebhook, *, org_id: str) -> list[FeedbackEvent]:
    """The notifications of an Outbound Message of the organisation ``org_id``."""
    try:
        root = ElementTree.fromstring(request.body, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise _refused(f"not a Salesforce outbound message: {exc}") from None
    body = _child(root, "Body") if _local(root.tag) == "Envelope" else None
    notifications = _child(body, "notifications") if body is not None else None
    if notifications is None or notifications.tag != f"{{{OUTBOUND}}}notifications":
        raise _refused("not a Salesforce outbound message (no soapenv:Body/notifications)")
    sent_org = _text(_child(notifications, "OrganizationId"))
    if not org_matches(sent_org, org_id):
        raise _refused(
            f"the message is from organisation {sent_org or '(none)'}, not this connection's",
            reason=RefusalReason.BAD_SECRET,
            status=403,
        )
    items = [n for n in notifications if _local(n.tag) == "Notification"]
    if len(items) > MAX_NOTIFICATIONS:
        raise _refused(f"more than {MAX_NOTIFICATIONS} notifications in one message")
    return [_event(item) for item in items]


def _event(notification: Element) -> FeedbackEvent:
    notification_id = _text(_child(notification, "Id"))
    record = _child(notification, "sObject")
    if not notification_id or record is None:
        raise _refused("a notification carries an Id and an sObject")
    values = {_local(field.tag): _text(field) for field in record}
    sobject = ""
    for name, value in record.attrib.items():
        if _local(name) == "type":
            sobject = value.rpartition(":")[2]
    raw = {"sobject": sobject, **values}
    kind, all_email = FeedbackKind.OTHER, False
    if sobject in PEOPLE and values.get("HasOptedOutOfEmail", "").lower() == "true":
        kind, all_email = FeedbackKind.UNSUBSCRIBE, True
    elif sobject in PEOPLE and values.get("EmailBouncedReason"):
        kind, all_email = FeedbackKind.HARD_BOUNCE, True
    return FeedbackEvent(
        kind=kind,
        occurred_at=occurred(values.get("LastModifiedDate", "")),
        vendor_event=f"{sobject or 'sObject'} outbound message",
        raw=raw,
        event_id=notification_id,
        email=values.get("Email", ""),
        subject_id=values.get("Id", ""),
        all_email=all_email,
        detail=values.get("EmailBouncedReason", "")[:300],
    )
