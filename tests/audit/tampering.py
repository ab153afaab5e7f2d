"""Changing audit tables behind the application's back, as someone with table-owner rights on
the database could: what the chains must catch."""

import pytest
from django.db import DatabaseError, connection, transaction


def sql_behind_the_orm(statement, params=(), *, table=None):
    """Run SQL directly; on PostgreSQL ``table``'s append-only trigger is switched off for it."""
    with connection.cursor() as cursor:
        if table and connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks on the table
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        cursor.execute(statement, params)
        if table and connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")


def assert_triggers_refuse(statements):
    """Each statement is refused by PostgreSQL's append-only triggers (skips on SQLite)."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "the append-only triggers are PostgreSQL's (SQLite relies on the ORM and the chains)"
        )
    for statement in statements:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
