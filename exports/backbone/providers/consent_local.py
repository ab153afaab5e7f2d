"""Consent from the backbone's ConsentRecord table: the latest record per contact and purpose
(whatever its channel) is in force. The planner reads it inside its source query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from exports.backbone.models import ConsentRecord, ConsentStatus, Contact
from exports.backbone.providers.consent import (
    LOCAL,
    NEVER_GIVEN,
    ConsentDecision,
    ConsentInputError,
)
from exports.backbone.router import backbone_alias

_TABLE = ConsentRecord._meta.db_table


class LocalConsent:
    source = LOCAL

    def column_sql(self, *, subject_sql: str, purpose: str) -> tuple[str, list[Any]]:
        # One correlated look-up per row, served by consent_lookup_idx: "<status>:<record id>"
        # of the latest record (or NULL), so the evidence comes with the status for free.
        return (
            f"(SELECT cr.status || ':' || CAST(cr.id AS TEXT) FROM {_TABLE} cr "
            f"WHERE cr.contact_id = {subject_sql} AND cr.purpose = %s "
            "ORDER BY cr.recorded_at DESC, cr.id DESC LIMIT 1)",
            [purpose],
        )

    def granted_sql(self, *, subject_sql: str, purpose: str) -> tuple[str, list[Any]] | None:
        sql, params = self.column_sql(subject_sql=subject_sql, purpose=purpose)
        return f"{sql} LIKE '{ConsentStatus.GRANTED.value}:%%'", params

    def decide_values(
        self, *, values: Sequence[Any], purpose: str, fresh: bool = False
    ) -> list[ConsentDecision]:
        now = timezone.now()
        decisions = []
        for value in values:
            status, _, reference = (value or "").partition(":")
            decisions.append(ConsentDecision("", purpose, status, LOCAL, reference, now))
        return decisions

    def lookup(
        self, *, subjects: Sequence[str], purpose: str, fresh: bool = False
    ) -> dict[str, ConsentDecision]:
        now = timezone.now()
        found = {s: ConsentDecision(s, purpose, NEVER_GIVEN, LOCAL, "", now) for s in subjects}
        ids = sorted({int(s) for s in subjects if s.isdigit()})
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = (
                ConsentRecord.objects.filter(contact_id__in=chunk, purpose=purpose)
                .order_by("contact_id", "recorded_at", "id")
                .values_list("contact_id", "status", "id")
            )
            for contact_id, status, record_id in rows:  # the last one per contact wins
                key = str(contact_id)
                found[key] = ConsentDecision(key, purpose, status, LOCAL, str(record_id), now)
        return found

    def record(
        self,
        *,
        contact_id: int,
        purpose: str,
        status: str,
        source: str,
        evidence: dict,
        channel: str,
    ) -> ConsentDecision:
        alias = backbone_alias()
        if not Contact.objects.using(alias).filter(pk=contact_id).exists():
            raise ConsentInputError("contact_id", f"no contact {contact_id} in the backbone")
        now = timezone.now()
        with transaction.atomic(using=alias):
            record = ConsentRecord.objects.using(alias).create(
                contact_id=contact_id,
                purpose=purpose,
                channel=channel,
                status=status,
                source=source,
                evidence=evidence,
                recorded_at=now,
            )
        return ConsentDecision(str(contact_id), purpose, status, LOCAL, str(record.pk), now)
