"""The one place vendor feedback writes consent: through the deployment's consent adapter
(``exports.backbone.providers.consent_record``: the local table or the consent service), so a
withdrawal a vendor reported is recorded where every send decision reads it, with the event as
evidence. A consent service that does not take it raises ConsentUnavailable: the event is
marked failed and retried (docs/webhooks.md), never dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from exports.backbone.models import ConsentPurpose, ConsentStatus
from exports.backbone.providers.consent import consent_record

# The purposes a withdrawal from all e-mail covers (every purpose the e-mail channel serves).
EMAIL_PURPOSES = (
    ConsentPurpose.EMAIL_MARKETING.value,
    ConsentPurpose.NEWSLETTER.value,
    ConsentPurpose.PRODUCT_UPDATES.value,
)


def consent_withdraw(
    *, contact_id: int, purposes: list[str], source: str, evidence: dict[str, Any]
) -> None:
    """Record that the person withdrew consent for these purposes (e-mail), with the evidence
    (vendor, connection, event id, our event row, when it happened)."""
    document = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in evidence.items()
    }
    for purpose in purposes:
        consent_record(
            contact_id=contact_id,
            purpose=purpose,
            status=ConsentStatus.WITHDRAWN,
            source=source[:64],
            evidence=document,
        )
