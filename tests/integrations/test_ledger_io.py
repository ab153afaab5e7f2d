"""The ledger's bulk writes (integrations/engine/ledger_io.py): on PostgreSQL they go through a
session temporary table; a second write in the same transaction must not see the first's rows."""

import pytest
from django.db import transaction

from integrations.engine.ledger_io import PlannedRow, ledger_insert, ledger_update
from integrations.models import LedgerEntry
from tests.integrations.conftest import make_sync

pytestmark = pytest.mark.django_db


def test_the_last_ledger_update_in_a_transaction_is_what_the_ledger_keeps(hubspot_connection):
    sync = make_sync(hubspot_connection)
    keys = [str(k) for k in range(1, 201)]
    ledger_insert(sync.pk, [PlannedRow(k, "pending", "h0", "", "") for k in keys])

    with transaction.atomic():  # as a plan inside a caller's transaction (or a test) does
        ledger_update(sync.pk, [PlannedRow(k, "pending", "h1", "", "first") for k in keys])
        ledger_update(sync.pk, [PlannedRow(k, "pending", "h1", "", "second") for k in keys])

    reasons = LedgerEntry.objects.filter(sync=sync).values_list("last_error", flat=True)
    assert set(reasons) == {"second"}
