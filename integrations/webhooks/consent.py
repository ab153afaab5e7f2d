"""The one place vendor feedback writes consent.

The consent service adapter (issue 18, exports/backbone/providers/) exposes
``consent_record(*, contact_id, purpose, status, source, evidence)``. Until it is on main,
``_consent_record`` below stands in for it with the same signature, appending to the local
consent table (the ``evidence`` stays on the WebhookEvent row it names). Switching is one line:
replace the stand-in by ``from exports.backbone.providers import consent_record as
_consent_record``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from exports.backbone.models import ConsentChannel, ConsentPurpose, ConsentRecord, ConsentStatus

# The purposes a withdrawal from all e-mail covers (every purpose the e-mail channel serves).
EMAIL_PURPOSES = (
    ConsentPurpose.EMAIL_MARKETING.value,
    ConsentPurpose.NEWSLETTER.value,
    ConsentPurpose.PRODUCT_UPDATES.value,
)


def _consent_record(
    *, contact_id: int, purpose: str, status: str, source: str, evidence: dict[str, Any]
) -> None:
    """Stand-in for exports.backbone.providers.consent_record (see the module docstring)."""
    at = evidence.get("occurred_at")
    ConsentRecord.objects.create(
        contact_id=contact_id,
        purpose=purpose,
        channel=ConsentChannel.EMAIL,
        status=status,
        source=source[:64],
        recorded_at=min(at, timezone.now()) if isinstance(at, datetime) else timezone.now(),
    )


def consent_withdraw(
    *, contact_id: int, purposes: list[str], source: str, evidence: dict[str, Any]
) -> None:
    """Record that the person withdrew consent for these purposes (e-mail), with the evidence
    (vendor, connection, event id, our event row, when it happened)."""
    for purpose in purposes:
        _consent_record(
            contact_id=contact_id,
            purpose=purpose,
            status=ConsentStatus.WITHDRAWN,
            source=source,
            evidence=evidence,
        )
