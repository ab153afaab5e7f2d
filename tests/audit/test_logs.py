"""The access and outbound logs are append-only and tamper-evident."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AccessLog, AppendOnlyError, OutboundLog
from audit.services import access_log_write, outbound_log_write
from tests.audit.tampering import assert_triggers_refuse, sql_behind_the_orm


def _access(n=0):
    return access_log_write(
        channel="api",
        actor=f"user:u{n}",
        dataset="clients",
        format="csv",
        rows=n,
        bytes=10 * n,
        outcome="ok",
        status_code=200,
        filters={"country": ["DE"]},
        fields=["id"],
        client_address="127.0.0.1",
    )


@pytest.mark.django_db
def test_the_orm_refuses_to_change_or_delete_a_log_row():
    row = _access(1)

    with pytest.raises(AppendOnlyError):
        AccessLog.objects.filter(pk=row.pk).update(rows=0)
    with pytest.raises(AppendOnlyError):
        AccessLog.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        row.delete()
    row.rows = 0
    with pytest.raises(AppendOnlyError):
        row.save()
    assert AccessLog.objects.get(pk=row.pk).rows == 1


@pytest.mark.django_db
def test_a_row_cannot_be_written_around_the_chain():
    with pytest.raises(AppendOnlyError):
        AccessLog.objects.create(channel="api", actor="x", dataset="clients", outcome="ok")


@pytest.mark.django_db
def test_postgresql_trigger_refuses_raw_sql_changes():
    row = _access(1)

    assert_triggers_refuse(
        [
            f"UPDATE audit_accesslog SET rows = 0 WHERE id = {row.pk}",
            f"DELETE FROM audit_accesslog WHERE id = {row.pk}",
        ]
    )


@pytest.mark.django_db
def test_rows_chain_to_the_previous_one():
    first, second = _access(1), _access(2)
    outbound = outbound_log_write(
        vendor="hubspot", method="POST", host="api.hubapi.com", path="/crm/v3/x", status=200
    )

    assert second.prev_hash == first.row_hash
    assert outbound.prev_hash == "0" * 64  # each log is its own chain
    assert first.compute_hash() == first.row_hash


@pytest.mark.django_db
def test_verify_audit_passes_on_an_intact_log(capsys):
    for n in range(5):
        _access(n)

    call_command("verify_audit")

    assert "AccessLog: 5 rows, chain intact" in capsys.readouterr().out


def _tamper(sql):
    sql_behind_the_orm(sql, table="audit_accesslog")


@pytest.mark.django_db
def test_verify_audit_names_an_altered_row():
    rows = [_access(n) for n in range(5)]

    _tamper(f"UPDATE audit_accesslog SET rows = 999 WHERE id = {rows[2].pk}")

    with pytest.raises(CommandError, match=rf"AccessLog row {rows[2].pk}: .*altered"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_verify_audit_names_the_row_after_a_removed_one():
    rows = [_access(n) for n in range(5)]

    _tamper(f"DELETE FROM audit_accesslog WHERE id = {rows[1].pk}")

    with pytest.raises(CommandError, match=rf"AccessLog row {rows[2].pk}: .*removed"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_outbound_log_holds_no_request_body_or_query():
    fields = {f.name for f in OutboundLog._meta.get_fields()}

    assert not fields & {"body", "query", "payload", "headers", "url"}


@pytest.mark.django_db
def test_verify_audit_checks_the_outbound_log_too():
    rows = [
        outbound_log_write(
            vendor="hubspot", method="POST", host="api.hubapi.com", path=f"/b/{n}", status=200
        )
        for n in range(3)
    ]
    sql_behind_the_orm(
        f"UPDATE audit_outboundlog SET status = 500 WHERE id = {rows[1].pk}",
        table="audit_outboundlog",
    )

    with pytest.raises(CommandError, match=rf"OutboundLog row {rows[1].pk}: .*altered"):
        call_command("verify_audit")
