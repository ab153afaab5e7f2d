"""Salesforce Outbound Messages as Salesforce sends them: a SOAP ``notifications`` envelope
with the organisation, the action and up to 100 notifications of one sObject's fields
[S23][S24] (VENDORS.md §4, "Notifications Salesforce can send us")."""

from __future__ import annotations

import itertools
from xml.sax.saxutils import escape

from tests.fakes.salesforce_oauth import ORG_ID

_IDS = itertools.count(1)


def notification_id() -> str:
    """A fresh 18-character notification Id (prefix 04l)."""
    return f"04l{next(_IDS):012d}AAA"


def outbound_message(
    records: list[dict[str, str]],
    *,
    sobject: str = "Contact",
    org_id: str = ORG_ID,
    ids: list[str] | None = None,
) -> bytes:
    """The body of one Outbound Message: a notification per record (its fields as given)."""
    ids = ids or [notification_id() for _ in records]
    notifications = "".join(
        f"<Notification><Id>{escape(nid)}</Id>"
        f'<sObject xsi:type="sf:{sobject}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        + "".join(f"<sf:{name}>{escape(str(value))}</sf:{name}>" for name, value in record.items())
        + "</sObject></Notification>"
        for nid, record in zip(ids, records, strict=True)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{escape(org_id)}</OrganizationId>"
        "<ActionId>04k000000000001AAA</ActionId>"
        '<SessionId xsi:nil="true"/>'
        "<EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/61.0</EnterpriseUrl>"
        "<PartnerUrl>https://example.my.salesforce.com/services/Soap/u/61.0</PartnerUrl>"
        f"{notifications}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()
