"""The backbone's change outbox: which companies and contacts changed, for real-time syncs.

``ChangeEvent`` rows are written by database triggers on the backbone's tables (SQLite and
PostgreSQL alike, so no writer, ours or another service's, can forget them) and by the
ingest API (``change_events_record``, for services that announce changes themselves). A
trigger writes only while some real-time sync listens to the subject
(``ChangeSubscription``, kept by ``change_subscriptions_set``): with nobody listening, a seed of
a million companies costs nothing. The dispatcher (integrations.engine.realtime) empties the
outbox with ``change_events_take``. See docs/realtime.md and docs/adr/0014.

What each table's change announces:

- ``backbone_company`` (insert, update, delete): the company;
- ``backbone_contact``: the contact;
- ``backbone_consentrecord``: its contact;
- ``backbone_companymetrics``: its company;
- ``backbone_segmentmember`` (joining, leaving, removed): its subject, a company or a contact
  as the segment says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections, models, transaction
from django.utils.dateparse import parse_datetime

from exports.backbone.router import backbone_alias


class ChangeSubject(models.TextChoices):
    COMPANY = "company", "Company"
    CONTACT = "contact", "Contact"


class ChangeSource(models.TextChoices):
    DATABASE = "db", "A write to the backbone's tables"
    API = "api", "Announced by a service (POST /marketing/events)"


class ChangeEvent(models.Model):
    """One change of one company or contact, waiting for the dispatcher (deleted as read)."""

    subject = models.CharField(max_length=8, choices=ChangeSubject.choices)
    subject_id = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    source = models.CharField(max_length=4, choices=ChangeSource.choices)
    id = models.BigAutoField(primary_key=True)

    class Meta:
        app_label = "backbone"

    def __str__(self):
        return f"{self.subject} {self.subject_id} changed at {self.occurred_at:%H:%M:%S}"


class ChangeSubscription(models.Model):
    """A subject some real-time sync listens to: the triggers write its changes."""

    subject = models.CharField(max_length=8, choices=ChangeSubject.choices, primary_key=True)

    class Meta:
        app_label = "backbone"

    def __str__(self):
        return f"changes of every {self.subject} are announced"


# --- the triggers --------------------------------------------------------------------------

# table, subject (a constant, or None: the segment's own), the column holding the subject id
_SOURCES = (
    ("backbone_company", "company", "id"),
    ("backbone_contact", "contact", "id"),
    ("backbone_consentrecord", "contact", "contact_id"),
    ("backbone_companymetrics", "company", "company_id"),
    ("backbone_segmentmember", None, "subject_id"),
)
_OPERATIONS = ("insert", "update", "delete")
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def _select(subject: str | None, column: str, rows: str, now: str) -> str:
    """The SELECT of outbox rows for changed ``rows`` (a row alias or a transition table)."""
    # Every name here is one of _SOURCES' constants: nothing from outside reaches the SQL.
    listened = "EXISTS (SELECT 1 FROM backbone_changesubscription s WHERE s.subject = {})"
    if subject is None:  # a segment member: the segment says which subject it is
        return (
            f"SELECT sg.subject, r.{column}, {now}, 'db' FROM {rows} r "  # noqa: S608
            "JOIN backbone_segment sg ON sg.id = r.segment_id "
            f"WHERE {listened.format('sg.subject')}"
        )
    return (
        f"SELECT '{subject}', r.{column}, {now}, 'db' FROM {rows} r "  # noqa: S608
        f"WHERE {listened.format(repr(subject))}"
    )


_INSERT = "INSERT INTO backbone_changeevent (subject, subject_id, occurred_at, source) "


def _sqlite_statements() -> list[str]:
    statements = []
    for table, subject, column in _SOURCES:
        for operation in _OPERATIONS:
            row = "OLD" if operation == "delete" else "NEW"
            # SQLite's row triggers: a one-row "table" of the changed row's values.
            rows = f"(SELECT {row}.{column} AS {column}" + (
                f", {row}.segment_id AS segment_id)" if subject is None else ")"
            )
            statements.append(
                f"CREATE TRIGGER {table}_changes_{operation} AFTER {operation.upper()} ON {table} "
                f"BEGIN {_INSERT}{_select(subject, column, rows, _SQLITE_NOW)}; END"
            )
    return statements


def _postgresql_statements() -> list[str]:
    # Statement-level triggers with transition tables: one INSERT ... SELECT per statement,
    # however many rows it changed (a metrics refresh, a segment load).
    statements = []
    for table, subject, column in _SOURCES:
        function = f"{table}_changes"
        statements.append(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"{_INSERT}{_select(subject, column, 'changed_rows', 'clock_timestamp()')}; "
            "RETURN NULL; END $$"
        )
        for operation in _OPERATIONS:
            which = "OLD" if operation == "delete" else "NEW"
            statements.append(
                f"CREATE TRIGGER {table}_changes_{operation} AFTER {operation.upper()} ON {table} "
                f"REFERENCING {which} TABLE AS changed_rows FOR EACH STATEMENT "
                f"EXECUTE FUNCTION {function}()"
            )
    return statements


def _drop_statements(vendor: str) -> list[str]:
    statements = []
    for table, _subject, _column in _SOURCES:
        for operation in _OPERATIONS:
            on = f" ON {table}" if vendor == "postgresql" else ""
            statements.append(f"DROP TRIGGER IF EXISTS {table}_changes_{operation}{on}")
        if vendor == "postgresql":
            statements.append(f"DROP FUNCTION IF EXISTS {table}_changes()")
    return statements


def triggers_install(schema_editor) -> None:
    """The migration's forward step: the triggers for this database."""
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = _postgresql_statements()
    elif vendor == "sqlite":
        statements = _sqlite_statements()
    else:
        raise NotImplementedError(f"no change triggers for {vendor}")
    for statement in _drop_statements(vendor) + statements:
        schema_editor.execute(statement)


def triggers_remove(schema_editor) -> None:
    for statement in _drop_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement)


# --- reading and writing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    subject: str
    subject_id: int
    occurred_at: datetime


def change_subscriptions_set(subjects: Iterable[str]) -> None:
    """Make the triggers announce exactly these subjects' changes."""
    wanted = set(subjects)
    alias = backbone_alias()
    with transaction.atomic(using=alias):
        ChangeSubscription.objects.using(alias).exclude(subject__in=wanted).delete()
        ChangeSubscription.objects.using(alias).bulk_create(
            [ChangeSubscription(subject=s) for s in sorted(wanted)], ignore_conflicts=True
        )


def change_events_record(changes: Iterable[Change]) -> int:
    """Announced changes (the ingest API): written to the outbox, whoever listens."""
    rows = [
        ChangeEvent(
            subject=c.subject,
            subject_id=c.subject_id,
            occurred_at=c.occurred_at,
            source=ChangeSource.API,
        )
        for c in changes
    ]
    ChangeEvent.objects.using(backbone_alias()).bulk_create(rows, batch_size=500)
    return len(rows)


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite gives its text back
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def change_events_take(limit: int) -> list[Change]:
    """Take (delete and return) up to ``limit`` of the oldest changes, in the caller's
    transaction on the backbone's database: if it rolls back, they are there again. On
    PostgreSQL two takers never take one change, and a change committed after a later one
    is not skipped (``SKIP LOCKED`` over ids, no cursor)."""
    connection = connections[backbone_alias()]
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM backbone_changeevent WHERE id IN (SELECT id FROM backbone_changeevent "  # noqa: S608
            f"ORDER BY id LIMIT %s{lock}) RETURNING subject, subject_id, occurred_at",
            [int(limit)],
        )
        return [Change(subject, int(sid), _aware(at)) for subject, sid, at in cursor.fetchall()]


def change_events_waiting() -> int:
    return ChangeEvent.objects.using(backbone_alias()).count()
