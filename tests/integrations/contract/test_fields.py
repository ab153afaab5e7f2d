"""The contract, part 1: a connection tests itself, a destination describes its fields, and
a mapping the destination cannot take is refused before anything is sent."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from integrations.connectors import connector_class
from integrations.connectors.values import ValueKind
from integrations.models import (
    ConnectionCheck,
    ConnectionStatus,
    FieldMapping,
    LedgerEntry,
    RunStatus,
    Sync,
)
from integrations.selectors import destination_fields
from integrations.services import connection_test, sync_preview, sync_save, sync_validate
from tests.integrations.conftest import start_and_drive

pytestmark = pytest.mark.contract


def test_the_connection_test_passes_and_marks_the_connection_healthy(contract):
    ok, message = connection_test(connection=contract.connection)

    assert ok, message
    contract.connection.refresh_from_db()
    assert contract.connection.status == ConnectionStatus.HEALTHY
    assert ConnectionCheck.objects.get(connection=contract.connection).ok


def test_refused_credentials_fail_the_test_as_an_auth_problem(contract):
    connection = contract.connection
    connection.set_credentials(contract.profile.wrong_credentials(contract.server))
    connection.save()

    ok, message = connection_test(connection=connection)

    assert not ok and "401" in message, message
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.AUTH_FAILED
    assert connection.last_error == message


def test_the_destination_declares_its_fields_kinds_and_options(contract):
    fields = {
        f.name: f
        for f in destination_fields(
            connection=contract.connection,
            object_name=contract.obj.name,
            destination_config=contract.destination_config,
        )
    }

    assert {f.kind for f in fields.values()} <= set(ValueKind)
    assert {name: fields[name].kind for name in contract.obj.kinds} == contract.obj.kinds
    choice = contract.obj.choice
    if choice is not None:
        options = fields[choice.target].options
        assert choice.offered in options and choice.not_offered not in options, options
    match = contract.obj.match[1]
    unique = contract.destination.match_fields or [n for n, f in fields.items() if f.unique]
    assert match in unique
    mapped = [target for _, target in contract.obj.mappings]
    assert [t for t in mapped if t not in fields or fields[t].read_only] == []


def test_the_profiles_sync_passes_the_one_validator(contract):
    sync = contract.sync()

    sync_validate(sync, list(sync.mappings.all()))  # raises ValidationError naming the field


def test_a_required_destination_field_must_be_mapped(contract):
    required = contract.obj.require(contract.server)
    if required is None:
        pytest.skip(contract.profile.no_required_fields)
    target, source = required
    obj = contract.obj
    sync = Sync(
        name="required fields",
        connection=contract.connection,
        dataset=obj.dataset,
        destination_object=obj.name,
        match_source_field=obj.match[0],
        match_destination_field=obj.match[1],
        **obj.sync_fields,
    )
    mappings = [FieldMapping(source_field=s, destination_field=t) for s, t in obj.mappings]
    label = connector_class(contract.profile.vendor).label

    with pytest.raises(ValidationError) as refused:
        sync_save(sync=sync, mappings=mappings)

    assert f"{label} requires {target}: map them" in str(refused.value)
    assert not Sync.objects.exists()
    sync_save(
        sync=sync, mappings=[*mappings, FieldMapping(source_field=source, destination_field=target)]
    )
    [record] = contract.make(1)
    run = start_and_drive(sync)
    assert (run.status, run.created) == (RunStatus.SUCCEEDED, 1), run.counts()
    assert contract.stored(record)[target] == str(getattr(record, source))


def test_a_value_the_destination_does_not_offer_is_invalid_at_plan_time(contract):
    choice = contract.obj.choice
    if choice is None:
        pytest.skip(contract.profile.no_choice_fields)
    sync = contract.sync(mappings=[*contract.obj.mappings, (choice.source, choice.target)])
    good = contract.make(2, **{choice.attribute: choice.offered})
    [bad] = contract.make(1, **{choice.attribute: choice.not_offered})

    preview = sync_preview(sync=sync)
    run = start_and_drive(sync)

    assert (preview.invalid, preview.preview["would_send"]) == (1, 2)
    assert (run.created, run.invalid, run.rejected, run.dead_lettered) == (2, 1, 0, 0)
    entry = LedgerEntry.objects.get(sync=sync, record_key=str(bad.pk))
    assert entry.status == "skipped"
    assert f"{choice.target}: '{choice.not_offered}' is not one of the field's options" in (
        entry.last_error
    )
    assert [contract.stored(r)[choice.target] for r in good] == [choice.offered] * 2
    assert contract.stored(bad) is None
    assert all(call.status < 300 for call in contract.writes())  # not one refused request
