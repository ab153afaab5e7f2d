"""Reading a sync's source rows from the backbone, in key order and in chunks.

Values come out already normalised by the database (timestamps as ISO 8601 text, decimals
as text with two places, booleans as 'true'/'false'), so SQLite and PostgreSQL give the
same payloads and the same hashes.

A sync with a consent purpose gets each row's consent decision in ``row["_consent"]`` (a
ConsentDecision): the local table is read inside the same query (no call per row); the HTTP
consent service is asked once per chunk of rows, in batches (exports.backbone.providers).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.db import connections

from exports.backbone.providers.consent import ConsentProvider, consent_provider
from exports.backbone.router import backbone_alias
from exports.datasets import Dataset, DatasetField, FieldType
from exports.query import Dialect, ExportQuery, where_sql

CHUNK = 5000
KEY_CHUNK = 500


def plan_value(dialect: Dialect, f: DatasetField) -> str:
    """The SQL of a field as the planner reads it (the same text on both databases)."""
    if f.type == FieldType.DATETIME:
        return dialect.datetime_text(f.sql)
    if f.type == FieldType.DECIMAL:
        return dialect.decimal_text(f.sql)
    if f.type == FieldType.BOOL:
        return dialect.bool_text(f.sql)
    return f.sql


def _ts(dialect: Dialect, value: datetime):
    if dialect.pg:
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


class SourceReader:
    """Rows of ``dataset`` matching the sync's filters, with the fields the sync needs."""

    def __init__(self, base: ExportQuery, fields: list[str], *, consent_purpose: str = ""):
        self.base = base
        self.dataset: Dataset = base.dataset
        self.fields = fields
        self.consent_purpose = consent_purpose
        self.dialect = Dialect(self.connection.vendor)
        self.key_sql = self.dataset.field(self.dataset.key).sql

    @property
    def connection(self):
        # Looked up on each use: connections are per thread, readers may be cached.
        return connections[backbone_alias()]

    @property
    def consented(self) -> bool:
        """Whether rows carry a consent decision (the sync has a purpose, the dataset people)."""
        return bool(self.consent_purpose and self.dataset.consent_subject_sql)

    def _select(
        self,
        extra: list[str],
        extra_params: list[Any],
        after,
        limit: int | None,
        consent: ConsentProvider | None,
    ):
        columns = [
            f'{plan_value(self.dialect, self.dataset.field(name))} AS "{name}"'
            for name in self.fields
        ]
        params: list[Any] = []
        if consent is not None and self.dataset.consent_subject_sql:
            sql, consent_params = consent.column_sql(
                subject_sql=self.dataset.consent_subject_sql, purpose=self.consent_purpose
            )
            columns.append(f'{sql} AS "_consent"')
            params += consent_params
        query = ExportQuery(dataset=self.dataset, fields=[], filters=self.base.filters, after=after)
        where, where_params = where_sql(query, self.dialect)
        clauses = [where[len(" WHERE ") :]] if where else []
        clauses += extra
        sql = f"SELECT {', '.join(columns)}, {self.key_sql} AS _key FROM {self.dataset.from_sql}"
        if clauses:
            sql += " WHERE " + " AND ".join(f"({c})" for c in clauses)
        sql += f" ORDER BY {self.key_sql}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return sql, params + where_params + extra_params

    def _rows(self, sql, params) -> list[dict[str, Any]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def _consent(self) -> ConsentProvider | None:
        return consent_provider() if self.consented else None

    def _decide(self, consent: ConsentProvider | None, rows: list[dict], *, fresh: bool) -> None:
        """Turn the selected consent column into each row's decision (HTTP: one batched
        look-up for these rows)."""
        if consent is None or not rows:
            return
        decisions = consent.decide_values(
            values=[row["_consent"] for row in rows], purpose=self.consent_purpose, fresh=fresh
        )
        for row, decision in zip(rows, decisions, strict=True):
            row["_consent"] = decision

    def _changed_clause(self, since: datetime | None) -> tuple[list[str], list[Any]]:
        if since is None or not self.dataset.changed_since:
            return [], []
        keys = " UNION ".join(self.dataset.changed_since)
        params = [_ts(self.dialect, since)] * len(self.dataset.changed_since)
        return [f"{self.key_sql} IN ({keys})"], params

    def count_changed(self, since: datetime | None) -> int:
        """How many rows ``changed(since)`` would give (one COUNT, no rows read)."""
        extra, extra_params = self._changed_clause(since)
        query = ExportQuery(dataset=self.dataset, fields=[], filters=self.base.filters)
        where, params = where_sql(query, self.dialect)
        clauses = ([where[len(" WHERE ") :]] if where else []) + extra
        sql = f"SELECT COUNT(*) FROM {self.dataset.from_sql}"
        if clauses:
            sql += " WHERE " + " AND ".join(f"({c})" for c in clauses)
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params + extra_params)
            return int(cursor.fetchone()[0])

    def changed(self, since: datetime | None) -> Iterator[list[dict[str, Any]]]:
        """All matching rows (since=None) or those that may have changed since ``since``."""
        extra, extra_params = self._changed_clause(since)
        after = None
        consent = self._consent()
        while True:
            sql, params = self._select(extra, extra_params, after, CHUNK, consent)
            rows = self._rows(sql, params)
            if not rows:
                return
            self._decide(consent, rows, fresh=False)
            yield rows
            if len(rows) < CHUNK:
                return
            after = rows[-1]["_key"]

    def by_keys(self, keys: list[str], *, fresh_consent: bool = False) -> dict[str, dict[str, Any]]:
        """The current rows for these record keys (missing: left the source or the filter).
        ``fresh_consent``: the consent service is asked, not its cached answers (send time)."""
        found = {}
        consent = self._consent()
        for start in range(0, len(keys), KEY_CHUNK):
            chunk = keys[start : start + KEY_CHUNK]
            values = [int(k) if k.lstrip("-").isdigit() else k for k in chunk]
            placeholders = ", ".join(["%s"] * len(values))
            sql, params = self._select(
                [f"{self.key_sql} IN ({placeholders})"], values, None, None, consent
            )
            rows = self._rows(sql, params)
            self._decide(consent, rows, fresh=fresh_consent)
            for row in rows:
                found[str(row["_key"])] = row
        return found

    def all_keys(self) -> set[str]:
        """Every key matching the filters (mirror mode: what left the source)."""
        query = ExportQuery(dataset=self.dataset, fields=[], filters=self.base.filters)
        where, params = where_sql(query, self.dialect)
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT {self.key_sql} FROM {self.dataset.from_sql}{where}", params)
            keys: set[str] = set()
            while batch := cursor.fetchmany(CHUNK):
                keys.update(str(row[0]) for row in batch)
        return keys
