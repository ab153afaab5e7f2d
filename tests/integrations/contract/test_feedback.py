"""The contract, feedback: a person opted out with ``Connector.suppress`` (consent withdrawn
elsewhere) stays opted out whatever the sync writes later (docs/webhooks.md)."""

from __future__ import annotations

import pytest

from integrations.connectors.base import Outcome, OutRecord
from integrations.models import LedgerEntry
from integrations.selectors import connector_for
from tests.integrations.conftest import start_and_drive

pytestmark = pytest.mark.contract


def _suppress(contract, sync, entries):
    records = [OutRecord(e.record_key, e.match_value, {}, e.destination_id, True) for e in entries]
    connector = connector_for(sync.connection)
    return connector.suppress(
        contract.obj.name, records, destination_config=contract.destination_config
    )


def test_a_suppressed_person_stays_opted_out_whatever_the_sync_writes_later(contract):
    if not contract.destination.suppressible:
        pytest.skip(f"{contract.obj.name} are not people: nothing to opt out")
    first, second = contract.make(2)
    sync = contract.sync()
    start_and_drive(sync)
    entry = LedgerEntry.objects.get(sync=sync, record_key=str(first.pk))

    results = _suppress(contract, sync, [entry])

    assert [(r.key, r.outcome) for r in results] == [(str(first.pk), Outcome.UPDATED)]
    assert contract.obj.opted_out(contract.server, contract.value(first))
    assert not contract.obj.opted_out(contract.server, contract.value(second))
    # The connector's own writes never opt them in again (the consent gate aside).
    contract.obj.change(first)
    again = start_and_drive(sync)
    assert again.updated == 1, again.counts()
    assert contract.obj.opted_out(contract.server, contract.value(first))
    assert contract.stored(first)[contract.field] == contract.obj.sent_value(first)


def test_as_many_people_as_one_request_takes_are_opted_out_in_one_request(contract):
    if not contract.destination.suppressible:
        pytest.skip(f"{contract.obj.name} are not people: nothing to opt out")
    size = min(contract.destination.max_batch, 100)
    people = contract.make(size)
    sync = contract.sync()
    start_and_drive(sync)
    before = len(contract.server.requests)

    results = _suppress(contract, sync, list(LedgerEntry.objects.filter(sync=sync)))

    assert {r.outcome for r in results} == {Outcome.UPDATED} and len(results) == size
    per_person = contract.profile.suppress_requests_per_person
    if per_person:  # the vendor has no bulk opt-out (the profile says why)
        assert contract.profile.no_bulk_opt_out
        assert len(contract.server.requests) - before == per_person * size
    else:
        assert len(contract.server.requests) - before == 1
    assert all(contract.obj.opted_out(contract.server, contract.value(p)) for p in people)


def test_an_object_of_people_can_opt_them_out(contract):
    """A withdrawal must reach every destination holding the person: an object of personal
    data declares ``suppressible`` and its connector implements ``suppress``."""
    if contract.destination.personal_data:
        assert contract.destination.suppressible, (
            f"{contract.obj.name} holds people: declare suppressible=True on its "
            "DestinationObject and implement Connector.suppress (docs/connectors/README.md)"
        )
