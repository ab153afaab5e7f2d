"""Every audit chain (access log, outbound log, change history) is checked against a signed head
kept apart from its rows: rows removed from the end, rows added behind the application's back
and change-history entries edited or removed are all reported by verify_audit."""

from types import SimpleNamespace

import pytest
from auditlog.models import LogEntry
from django.apps import apps as global_apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.chain import GENESIS, head_sign
from audit.models import AccessLog, ChainAnchor, ChangeHistoryLink, OutboundLog
from audit.services import access_log_write, outbound_log_write
from integrations.models import Connection
from mktintegration import roles
from tests.audit.tampering import assert_triggers_refuse, sql_behind_the_orm


def _access(n=0):
    return access_log_write(
        channel="api", actor=f"user:u{n}", dataset="clients", rows=n, outcome="ok"
    )


def _outbound(n=0):
    return outbound_log_write(
        vendor="hubspot", method="POST", host="api.hubapi.com", path=f"/b/{n}", status=200
    )


def _change(n=0):
    connection_ = Connection.objects.create(name=f"HubSpot {n}", vendor="hubspot")
    return LogEntry.objects.get_for_object(connection_).get()


def _verify_fails(match):
    with pytest.raises(CommandError, match=match):
        call_command("verify_audit")


@pytest.mark.django_db
def test_untouched_chains_pass_and_each_names_its_head(capsys):
    rows = [_access(n) for n in range(3)]
    _outbound()
    _change()

    call_command("verify_audit")

    out = capsys.readouterr().out
    assert f"AccessLog: 3 rows, chain intact, head row {rows[-1].pk} {rows[-1].row_hash}" in out
    assert "OutboundLog: 1 rows, chain intact" in out
    # setup_roles' group changes (after migrate) are in the change history too.
    assert f"ChangeHistory: {LogEntry.objects.count()} rows, chain intact" in out
    assert ChainAnchor.objects.get(chain="access").length == 3


CHAINS = {
    "access": (AccessLog, _access, "AccessLog", "audit_accesslog"),
    "outbound": (OutboundLog, _outbound, "OutboundLog", "audit_outboundlog"),
    "change history": (ChangeHistoryLink, _change, "ChangeHistory", "audit_changehistorylink"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("chain", CHAINS)
def test_removing_the_last_rows_of_a_chain_is_reported(chain):
    model, append, name, table = CHAINS[chain]
    for n in range(5):
        append(n)
    last_two = list(model.objects.order_by("-id").values_list("id", flat=True)[:2])

    sql_behind_the_orm(f"DELETE FROM {table} WHERE id IN (%s, %s)", last_two, table=table)

    _verify_fails(
        rf"{name}: the last 2 rows were removed \(the signed head names row {last_two[0]}"
    )


@pytest.mark.django_db
def test_removing_every_row_of_a_chain_is_reported():
    for n in range(3):
        _access(n)

    sql_behind_the_orm("DELETE FROM audit_accesslog", table="audit_accesslog")

    _verify_fails(r"AccessLog: the last 3 rows were removed .* the log ends at no row at all")


@pytest.mark.django_db
def test_a_rewritten_tail_with_recomputed_hashes_is_caught_by_the_signed_head():
    rows = [_access(n) for n in range(4)]
    # Someone without the key edits row 2 and recomputes its hash and every later one.
    prev = rows[1].row_hash
    for row in rows[2:]:
        forged = AccessLog.objects.get(pk=row.pk)
        forged.rows = 0 if row is rows[2] else forged.rows
        forged.prev_hash = prev
        forged.row_hash = forged.compute_hash()
        sql_behind_the_orm(
            "UPDATE audit_accesslog SET rows = %s, prev_hash = %s, row_hash = %s WHERE id = %s",
            [forged.rows, forged.prev_hash, forged.row_hash, row.pk],
            table="audit_accesslog",
        )
        prev = forged.row_hash

    _verify_fails(rf"AccessLog row {rows[-1].pk}: it is not the row the signed head names")


@pytest.mark.django_db
def test_rows_added_behind_the_application_are_reported_and_not_adopted_by_the_next_append():
    rows = [_access(n) for n in range(2)]
    forged = AccessLog(
        channel="api",
        actor="user:ghost",
        dataset="clients",
        outcome="ok",
        prev_hash=rows[-1].row_hash,
    )
    forged.row_hash = forged.compute_hash()
    sql_behind_the_orm(
        "INSERT INTO audit_accesslog (at, prev_hash, row_hash, channel, actor, user_id, token_id, "
        "dataset, format, filters, fields, rows, bytes, duration_ms, outcome, status_code, "
        "client_address, detail) VALUES (%s, %s, %s, 'api', 'user:ghost', NULL, '', 'clients', "
        "'', '{}', '[]', 0, 0, 0, 'ok', NULL, NULL, '')",
        [forged.at, forged.prev_hash, forged.row_hash],
    )
    forged_id = AccessLog.objects.order_by("-id").values_list("id", flat=True).first()

    _verify_fails(r"AccessLog: 1 rows after row \d+ are not covered by the signed head")

    later = _access(9)  # the application chains onto its own head, not onto the forged row
    assert later.prev_hash == rows[-1].row_hash
    _verify_fails(rf"AccessLog row {later.pk}: its link to row {forged_id} is broken")


@pytest.mark.django_db
def test_a_forged_head_is_refused_and_never_re_signed():
    rows = [_access(n) for n in range(4)]
    # Remove the last row and make the head say the chain ends one row earlier: without the
    # key the signature cannot be made.
    sql_behind_the_orm(
        "DELETE FROM audit_accesslog WHERE id = %s", [rows[-1].pk], table="audit_accesslog"
    )
    ChainAnchor.objects.filter(chain="access").update(
        length=3, last_id=rows[2].pk, last_hash=rows[2].row_hash
    )

    _verify_fails(r"AccessLog: the signature of its head .* is not valid")

    _access(5)  # the log goes on, but the forged head is left as found
    _verify_fails(r"AccessLog: the signature of its head .* is not valid")
    assert ChainAnchor.objects.get(chain="access").last_id == rows[2].pk


@pytest.mark.django_db
def test_a_removed_head_is_reported_even_after_more_appends():
    for n in range(3):
        _access(n)
    ChainAnchor.objects.filter(chain="access").delete()

    _verify_fails(r"AccessLog: it has 3 rows but no signed head: the anchor was removed")
    _access(4)
    _verify_fails(r"AccessLog: it has 4 rows but no signed head")


@pytest.mark.django_db
def test_reanchor_signs_the_head_as_it_is_after_an_investigation(capsys):
    rows = [_access(n) for n in range(3)]
    sql_behind_the_orm(
        "DELETE FROM audit_accesslog WHERE id = %s", [rows[-1].pk], table="audit_accesslog"
    )
    _verify_fails("the last 1 rows were removed")

    call_command("verify_audit", "--reanchor")
    assert f"access: head signed at 2 rows, row {rows[1].pk}" in capsys.readouterr().out

    call_command("verify_audit")
    _access(4)
    call_command("verify_audit")


@pytest.mark.django_db
def test_a_head_signed_with_an_older_key_verifies_and_the_next_append_uses_the_new_key(settings):
    old = settings.MKT_AUDIT_KEYS[0]
    for n in range(2):
        _access(n)
    settings.MKT_AUDIT_KEYS = ["new-audit-key-" + "n" * 32, old]

    call_command("verify_audit")
    later = _access(3)

    anchor = ChainAnchor.objects.get(chain="access")
    assert anchor.signature == head_sign(
        keys=settings.MKT_AUDIT_KEYS,
        chain="access",
        length=3,
        last_id=later.pk,
        last_hash=later.row_hash,
    )
    settings.MKT_AUDIT_KEYS = [old]  # a key dropped too early: the head no longer verifies
    _verify_fails("signed with a key no longer in MKT_AUDIT_KEYS")


@pytest.mark.django_db
def test_an_append_costs_one_statement_more_than_the_row_itself():
    _outbound(0)
    # PostgreSQL: lock, head, INSERT, head UPSERT; SQLite has no lock (one writer).
    statements = 4 if connection.vendor == "postgresql" else 3
    with CaptureQueriesContext(connection) as captured:
        _outbound(1)
    sql = [
        q["sql"].lstrip().upper()
        for q in captured.captured_queries
        if "SAVEPOINT" not in q["sql"].upper()
    ]
    assert len(sql) == statements, sql
    assert sql[-2].startswith("INSERT INTO") and "AUDIT_OUTBOUNDLOG" in sql[-2]
    assert sql[-1].startswith("INSERT INTO") and "ON CONFLICT" in sql[-1]


# --- the change history ------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_change_history_entry_is_chained_with_its_actor(user_with_role):
    from audit.context import audit_actor

    admin_user = user_with_role(roles.INTEGRATION_ADMIN, username="ida")
    with audit_actor(admin_user, remote_addr="10.1.2.3"):
        entry = _change(0)

    link = ChangeHistoryLink.objects.get(entry_id=entry.pk)
    assert (link.actor_id, link.actor) == (admin_user.pk, "ida")
    assert link.at == entry.timestamp
    assert entry.remote_addr == "10.1.2.3"
    call_command("verify_audit")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("changes", '{"name": ["None", "Evil Corp"]}'),
        ("object_repr", "something else"),
        ("remote_addr", "203.0.113.66"),
        ("action", 2),
    ],
)
def test_editing_a_change_history_entry_is_reported(column, value):
    entries = [_change(n) for n in range(3)]

    sql_behind_the_orm(
        f"UPDATE auditlog_logentry SET {column} = %s WHERE id = %s",
        [value, entries[1].pk],
        table="auditlog_logentry",
    )

    _verify_fails(rf"ChangeHistory entry {entries[1].pk}: its content does not match .*altered")


@pytest.mark.django_db
def test_removing_a_change_history_entry_is_reported():
    entries = [_change(n) for n in range(3)]

    sql_behind_the_orm(
        "DELETE FROM auditlog_logentry WHERE id = %s", [entries[0].pk], table="auditlog_logentry"
    )

    _verify_fails(rf"ChangeHistory entry {entries[0].pk}: removed \(its chain link")


@pytest.mark.django_db
def test_an_entry_written_around_the_chain_is_reported():
    first = _change(0)
    # bulk_create sends no signal: as good as an INSERT behind the application's back.
    (ghost,) = LogEntry.objects.bulk_create(
        [
            LogEntry(
                content_type=first.content_type,
                object_pk="999",
                object_repr="ghost",
                action=LogEntry.Action.DELETE,
            )
        ]
    )
    _change(1)

    _verify_fails(rf"ChangeHistory entry {ghost.pk}: it is not in the chain")


@pytest.mark.django_db
def test_changing_an_entrys_actor_is_reported_but_deleting_the_user_is_not(user_with_role):
    from audit.context import audit_actor

    ida, eve = user_with_role(roles.INTEGRATION_ADMIN), user_with_role(roles.INTEGRATION_ADMIN)
    with audit_actor(ida):
        entry = _change(0)
    assert entry.actor == ida

    ida.delete()  # the entry's actor becomes NULL (on_delete=SET_NULL): not tampering
    call_command("verify_audit")
    assert ChangeHistoryLink.objects.get(entry_id=entry.pk).actor == ida.username

    sql_behind_the_orm(
        "UPDATE auditlog_logentry SET actor_id = %s WHERE id = %s",
        [eve.pk, entry.pk],
        table="auditlog_logentry",
    )
    _verify_fails(rf"ChangeHistory entry {entry.pk}: its actor is not the one recorded")


@pytest.mark.django_db
def test_postgresql_refuses_to_edit_or_remove_change_history():
    entry = _change(0)
    link = ChangeHistoryLink.objects.get(entry_id=entry.pk)

    assert_triggers_refuse(
        [
            f"UPDATE auditlog_logentry SET object_repr = 'x' WHERE id = {entry.pk}",
            f"DELETE FROM auditlog_logentry WHERE id = {entry.pk}",
            f"UPDATE audit_changehistorylink SET actor = 'x' WHERE id = {link.pk}",
            f"DELETE FROM audit_changehistorylink WHERE id = {link.pk}",
        ]
    )


@pytest.mark.django_db
def test_the_migration_chains_the_entries_already_there_in_id_order():
    import importlib

    migration = importlib.import_module("audit.migrations.0005_chain_existing_history")
    first = _change(0)
    # Entries from before the chain existed (written without the signal), and no anchors.
    older = LogEntry.objects.bulk_create(
        [
            LogEntry(
                content_type=first.content_type,
                object_pk=str(n),
                object_repr=f"old {n}",
                action=LogEntry.Action.UPDATE,
                changes={"name": ["a", "b"]},
            )
            for n in range(3)
        ]
    )
    sql_behind_the_orm("DELETE FROM audit_changehistorylink", table="audit_changehistorylink")
    ChainAnchor.objects.all().delete()
    _access(0)  # the access chain has rows but no anchor either

    migration.forwards(global_apps, SimpleNamespace(connection=connection))

    links = list(ChangeHistoryLink.objects.order_by("id"))
    everything = list(LogEntry.objects.order_by("pk").values_list("pk", flat=True))
    assert [link.entry_id for link in links] == everything
    assert everything[-4:] == [first.pk, *(e.pk for e in older)]
    assert links[0].prev_hash == GENESIS
    assert ChainAnchor.objects.get(chain="change history").length == len(everything)
    assert ChainAnchor.objects.get(chain="access").length == 1
    call_command("verify_audit")
