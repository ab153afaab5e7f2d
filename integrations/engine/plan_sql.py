"""A sync's first plan made in the database: one statement gates every source row, one more
writes the ledger.

A first plan sends every record that passes the gate, and sending needs no payload hash
(delivery hashes what it sends). So the plan's whole work per record is the gate: a match
value, no other record with the same one, a record the connector accepts, values the
destination fields take, an allowed region, granted consent. Each of those rules has a SQL
form that is *sufficient*: true only where the Python rule certainly passes the record
(integrations.connectors.values, the connectors' ``*_sql`` methods, the consent provider's
``granted_sql``). The rows it vouches for are written to the ledger by ``INSERT ... SELECT``
and never reach Python; every other row (an odd match value, a duplicate, a value only Python
can judge) is planned by the Python path, which decides exactly. The records and the ledger
are the same either way (tests/integrations/test_plan_sql.py), a million records plan in
seconds instead of half a minute (bench/sync_bench.py), and the plan says which path ran
(``SyncRun.plan_path``). See docs/adr/0013-first-plans-in-the-database.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone

from exports.backbone.providers.consent import consent_provider
from exports.backbone.router import backbone_alias
from exports.datasets import FieldType
from exports.query import Dialect, ExportQuery, where_sql
from integrations.connectors.values import value_ok_sql
from integrations.engine.ledger_io import TABLE
from integrations.engine.source import plan_value
from integrations.models import LedgerStatus

MAX_MATCH = 255  # the ledger's match_value column; a longer value goes through Python
_TEMP = "plan_first"


@dataclass(frozen=True)
class SqlGate:
    ok_sql: str  # true where the Python path would certainly send the row
    params: list[Any]
    match_sql: str  # the match value as the ledger keeps it (connector.match_key)
    clean_sql: str  # the match value is printable ASCII without spaces at its ends
    unique: bool  # no two rows can have one match value: no duplicates to look for


@dataclass
class FirstPlan:
    sent: list[str]  # the records written pending by the database, in key order
    rest: list[str]  # the records the Python path plans
    read: int  # rows the statement read


def _clean_sql(text: str, *, pg: bool) -> str:
    if pg:
        return f"({text} ~ '^[!-~]([ -~]*[!-~])?$' AND length({text}) <= {MAX_MATCH})"
    return (
        f"({text} <> '' AND {text} NOT GLOB '*[^ -~]*' AND {text} NOT GLOB ' *' "
        f"AND {text} NOT GLOB '* ' AND length({text}) <= {MAX_MATCH})"
    )


# Transforms that cannot fail on any value (the others may, on a value only Python reads, which
# fails the whole plan there: so those plans stay in Python), and those safe for one type.
_SAFE_TRANSFORMS = {"text", "lower", "upper", "trim", "bool_text"}
_SAFE_FOR = {"date": FieldType.DATETIME, "epoch_ms": FieldType.DATETIME, "number": FieldType.INT}


def _transform_safe(mapping, dataset) -> bool:
    if mapping.transform in _SAFE_TRANSFORMS:
        return True
    if mapping.template or mapping.value_map or mapping.transform not in _SAFE_FOR:
        return False
    return dataset.field(mapping.source).type == _SAFE_FOR[mapping.transform]


def sql_gate(ctx, connector) -> SqlGate | str:
    """The first plan's gate in SQL for this sync, or why it cannot be written in SQL."""
    if backbone_alias() != DEFAULT_DB_ALIAS:
        return "the backbone is another database than the ledger"
    sync, dataset = ctx.sync, ctx.dataset
    pg = connection.vendor == "postgresql"
    dialect = Dialect(connection.vendor)
    match = dataset.field(sync.match_source_field)
    value = plan_value(dialect, match)
    text = f"CAST({value} AS TEXT)" if match.type == FieldType.INT else value
    obj, match_field = sync.destination_object, sync.match_destination_field
    norm = connector.match_key_sql(obj, match_field, text)
    if norm is None:
        return f"{ctx.connector_cls.label} compares match values in a way SQL does not express"
    fields = tuple(dict.fromkeys([*(m.destination for m in ctx.compiled), match_field]))
    valid = connector.validate_record_sql(obj, text, fields=fields, pg=pg)
    if valid is None:
        return f"{ctx.connector_cls.label} checks records in a way SQL does not express"
    for mapping in ctx.compiled:
        if mapping.transform and not _transform_safe(mapping, dataset):
            return f"the {mapping.transform} transform of {mapping.source} may fail on a record"
    parts, params = [valid], []
    for name, spec in ctx.checked_fields:
        mapping = [m for m in ctx.compiled if m.destination == name][-1]  # the last one wins
        if mapping.template or mapping.transform or mapping.value_map:
            return f"{name} is mapped through a template, transform or value map"
        source = dataset.field(mapping.source)
        sql, more = value_ok_sql(spec, str(source.type), plan_value(dialect, source), pg=pg)
        parts.append(sql)
        params += more
    allowed = list(sync.connection.allowed_regions or [])
    if allowed:
        if dataset.region_field not in dataset.field_names:
            return "the connection allows some regions and the dataset has none"
        region = plan_value(dialect, dataset.field(dataset.region_field))
        parts.append(f"{region} IN ({', '.join(['%s'] * len(allowed))})")
        params += allowed
    if sync.consent_purpose:
        if not dataset.consent_subject_sql:
            return "the sync needs consent and the dataset carries none"
        granted = consent_provider().granted_sql(
            subject_sql=dataset.consent_subject_sql, purpose=sync.consent_purpose
        )
        if granted is None:
            return "the consent service decides each record"
        parts.append(granted[0])
        params += granted[1]
    if any(part == "1 = 0" for part in parts):
        return "no record can pass the gate in SQL"
    clean = _clean_sql(text, pg=pg)
    checks = " AND ".join(f"({part})" for part in parts if part != "1 = 1") or "1 = 1"
    unique = match.unique and norm == text
    return SqlGate(f"{clean} AND {checks}", params, norm, clean, unique)


def sql_first_plan(ctx, gate: SqlGate, *, sync_id: int, heartbeat) -> FirstPlan:
    """Write every row the gate vouches for to the ledger as pending, unless another row has
    the same match value (both then go through Python, which knows which one came first)."""
    dataset = ctx.dataset
    pg = connection.vendor == "postgresql"
    dialect = Dialect(connection.vendor)
    key = dataset.field(dataset.key).sql
    where, where_params = where_sql(
        ExportQuery(dataset=dataset, fields=[], filters=ctx.reader.base.filters), dialect
    )
    now = timezone.now()
    stamp = now if pg else connection.ops.adapt_datetimefield_value(now)
    ok = f"CASE WHEN {gate.ok_sql} THEN 1 ELSE 0 END"
    if gate.unique:  # straight from the source: no row to compare with another
        source = f"FROM {dataset.from_sql}{where}"
        rows = f"SELECT {key} AS k, {gate.match_sql} AS mv, {ok} AS ok {source}"
        rows_params = gate.params + where_params
    else:  # a row the gate vouches for is sent only if no other row has its match value
        source = f"FROM {_TEMP}"
        rows = f"SELECT k, mv, ok FROM {_TEMP}"
        rows_params = []
    insert = (
        f"INSERT INTO {TABLE} (sync_id, record_key, status, plan_hash, match_value, "
        "last_error, payload_hash, sent_hash, destination_id, created_by_sync, attempts, "
        "idempotency_key, consent_source, consent_ref, updated_at) "
        "SELECT %s, CAST(k AS TEXT), %s, '', mv, '', '', '', '', %s, 0, '', '', '', %s "
        f"FROM ({rows}) r WHERE ok = 1"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if not gate.unique:
            cursor.execute(f"DROP TABLE IF EXISTS {_TEMP}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {_TEMP}{' ON COMMIT DROP' if pg else ''} AS "
                "SELECT k, mv, CASE WHEN ok = 1 AND COUNT(*) OVER (PARTITION BY mv) = 1 "
                "THEN 1 ELSE 0 END AS ok FROM ("
                f"SELECT {key} AS k, CASE WHEN {gate.clean_sql} THEN {gate.match_sql} END AS mv, "
                f"{ok} AS ok FROM {dataset.from_sql}{where}) s",
                gate.params + where_params,
            )
            heartbeat()
        cursor.execute(insert, [sync_id, LedgerStatus.PENDING.value, False, stamp, *rows_params])
        heartbeat()
        cursor.execute(f"SELECT CAST(k AS TEXT), ok FROM ({rows}) r ORDER BY k", rows_params)
        plan = FirstPlan([], [], 0)
        while batch := cursor.fetchmany(10_000):
            plan.read += len(batch)
            for record_key, passed in batch:
                (plan.sent if passed == 1 else plan.rest).append(record_key)
        if not gate.unique:
            cursor.execute(f"DROP TABLE IF EXISTS {_TEMP}")
    return plan


def key_order(key: str) -> tuple[int, int | str]:
    """A record key's place in the source's key order (integer keys by value)."""
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)
