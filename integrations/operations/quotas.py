"""Daily quotas in operations: each vendor account's quota as of now (the dashboard's table)
and the alert when an account has used MKT_ALERT_QUOTA_SHARE of it (docs/syncs.md#daily-quotas).

An account is what the vendor counts for (a Marketo instance; else the connection): several
connections to one account are one row and one alert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from integrations.connectors import REGISTRY
from integrations.engine.quota import QuotaStatus
from integrations.operations.alerts import alert_send, recipients_for, state_observe
from integrations.operations.models import AlertKind
from integrations.selectors import connection_quota
from mktintegration.errors import ConnectorError

log = logging.getLogger(__name__)
HIGH, OK = "high", "ok"


@dataclass
class QuotaRow:
    status: QuotaStatus
    vendor: str
    connections: list[str] = field(default_factory=list)

    @property
    def account(self) -> str:
        """The account as the vendor names it (a Munchkin id), without our vendor prefix."""
        return self.status.account.partition(":")[2]

    @property
    def percent(self) -> int:
        return round(100 * self.status.share)

    @property
    def high(self) -> bool:
        return self.status.share >= settings.MKT_ALERT_QUOTA_SHARE


def _statuses(connections):
    for connection in connections.order_by("name"):
        if connection.vendor not in REGISTRY or REGISTRY[connection.vendor].daily_quota is None:
            continue
        try:
            status = connection_quota(connection)
        except ConnectorError as exc:  # its account cannot be named (no Munchkin id...)
            log.warning("connection %s: no daily quota shown: %s", connection.pk, exc)
            continue
        if status is not None:
            yield connection, status


def quota_rows(connections) -> list[QuotaRow]:
    """One row per vendor account of these connections that has a daily quota."""
    rows: dict[str, QuotaRow] = {}
    for connection, status in _statuses(connections):
        row = rows.setdefault(status.account, QuotaRow(status, connection.vendor))
        row.connections.append(connection.name)
    return sorted(rows.values(), key=lambda r: (-r.status.share, r.status.account))


def quota_evaluate(connections, *, now: datetime | None = None) -> list:
    """Alert each account that crossed the share; it is "ok" again when its window resets."""
    share = settings.MKT_ALERT_QUOTA_SHARE
    raised, seen = [], set()
    for connection, status in _statuses(connections):
        if status.account in seen:
            continue
        seen.add(status.account)
        state = HIGH if status.share >= share else OK
        detail = f"{status.used}/{status.limit}"
        previous, row = state_observe(
            f"quota:{status.account}", state, baseline=OK, detail=detail, now=now
        )
        if previous is None or state != HIGH:
            continue
        raised.append(
            alert_send(
                key=row.key,
                kind=AlertKind.QUOTA_HIGH,
                subject=(
                    f"{status.label} account {status.account.partition(':')[2]}: "
                    f"{round(100 * status.share)}% of its daily quota used"
                ),
                lines=[
                    f"The {status.label} account of connection {connection.name!r} has used "
                    f"{status.used:,} of its {status.limit:,} requests for the day "
                    f"({status.share:.0%}; the alert is set at {share:.0%}).",
                    "",
                    "What does not fit in what is left is deferred (not failed) and goes when "
                    f"the quota's next window opens, at {status.resets:%Y-%m-%d %H:%M} UTC.",
                    "Other integrations on the same account spend the same quota; if the "
                    "account's allowance is larger than the vendor's usual one, set it on the "
                    "connection (daily quota requests).",
                ],
                path=f"/admin/integrations/connection/{connection.pk}/change/",
                recipients=recipients_for(connection=connection),
                now=now,
            )
        )
    return raised
