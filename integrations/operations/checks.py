"""Connection uptime: test each connection every MKT_CONNECTION_CHECK_MINUTES.

``integrations.services.connection_test`` calls the vendor and stores a ConnectionCheck row;
the status API's uptime figures are the share of those rows that succeeded.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations import services
from integrations.models import Connection
from integrations.operations.evaluate import connection_evaluate

log = logging.getLogger(__name__)


def connections_check_due(*, now: datetime | None = None) -> dict[str, int]:
    """Test every connection whose last check is older than the interval."""
    now = now or timezone.now()
    due_before = now - timedelta(minutes=settings.MKT_CONNECTION_CHECK_MINUTES)
    counts = {"ok": 0, "failed": 0}
    due = Connection.objects.filter(
        Q(last_checked_at__isnull=True) | Q(last_checked_at__lte=due_before)
    ).values_list("pk", "last_checked_at")
    for pk, checked_at in list(due):
        # Claim it: of two workers running this task at once, one tests each connection.
        claimed = Connection.objects.filter(pk=pk, last_checked_at=checked_at)
        if checked_at is None:
            claimed = Connection.objects.filter(pk=pk, last_checked_at__isnull=True)
        if not claimed.update(last_checked_at=now):
            continue
        connection = Connection.objects.get(pk=pk)
        try:
            ok, _ = services.connection_test(connection=connection)
        except Exception:  # one broken connector must not stop the others' checks
            log.exception("connection %s: the check itself crashed", pk)
            continue
        counts["ok" if ok else "failed"] += 1
        connection.refresh_from_db()
        connection_evaluate(connection, now=now)
    return counts
