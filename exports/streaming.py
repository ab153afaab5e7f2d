"""Turning an ExportQuery into bytes, at constant memory.

On PostgreSQL, CSV and NDJSON come straight from ``COPY (SELECT ...) TO STDOUT``: the server
formats every row and Python only gathers the blocks into 64 KiB chunks. On SQLite rows are
fetched in batches and written with the csv module. Either way an ``ExportStream`` counts rows
and bytes (and a SHA-256 for files) for the access log and the run record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from django.db import connections

from exports.datasets import FieldType
from exports.query import (
    ExportQuery,
    csv_select,
    csv_values_select,
    encode_cursor,
    json_page_select,
    ndjson_select,
)

CHUNK = 64 * 1024
FETCH = 5000
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "json": "application/json",
}


class ExportStream:
    """Iterate to get the export's bytes; ``rows``, ``bytes`` and ``sha256`` are final once
    the iteration is exhausted."""

    def __init__(self, query: ExportQuery, fmt: str, *, alias: str, digest: bool = False):
        if fmt not in ("csv", "ndjson"):
            raise ValueError(f"streams are csv or ndjson, not {fmt}")
        self.query = query
        self.format = fmt
        self.alias = alias
        self.rows = 0
        self.bytes = 0
        self.complete = False
        self._hash = hashlib.sha256() if digest else None

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest() if self._hash else ""

    def __iter__(self) -> Iterator[bytes]:
        connection = connections[self.alias]
        source = self._postgres if connection.vendor == "postgresql" else self._sqlite
        for chunk in source(connection):
            self.bytes += len(chunk)
            if self._hash:
                self._hash.update(chunk)
            yield chunk
        self.complete = True

    # PostgreSQL: COPY does the formatting.
    def _postgres(self, connection) -> Iterator[bytes]:
        if self.format == "csv":
            sql, params = csv_select(self.query, "postgresql")
            copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true)"
            newlines_before_rows = 1  # the header line
        else:
            sql, params = ndjson_select(self.query, "postgresql")
            # CSV mode with a quote and delimiter JSON never contains: the text passes as is
            # (text mode would double every backslash).
            copy_sql = (
                f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
            )
            newlines_before_rows = 0
        newlines = 0
        buffer = bytearray()
        with connection.cursor() as cursor, cursor.cursor.copy(copy_sql, params) as copy:
            for block in copy:
                buffer += block
                if len(buffer) >= CHUNK:
                    newlines += buffer.count(b"\n")
                    yield self._finish_block(bytes(buffer))
                    buffer.clear()
        newlines += buffer.count(b"\n")
        if buffer:
            yield self._finish_block(bytes(buffer))
        self.rows = max(newlines - newlines_before_rows, 0)

    def _finish_block(self, block: bytes) -> bytes:
        # RFC 4180 ends records with CRLF; cells hold no line breaks (see Dialect.csv_text).
        return block.replace(b"\n", b"\r\n") if self.format == "csv" else block

    # SQLite: batches through the cursor.
    def _sqlite(self, connection) -> Iterator[bytes]:
        # SQLite has no COPY. NDJSON lines come whole from the database; CSV lines are
        # joined here, text cells made safe by csv_text_cell (the same rules as in SQL).
        if self.format == "csv":
            sql, params = csv_values_select(self.query, "sqlite")
            text = [self.query.dataset.field(n).type == FieldType.TEXT for n in self.query.fields]
            newline, head = "\r\n", ",".join(self.query.fields) + "\r\n"
        else:
            sql, params = ndjson_select(self.query, "sqlite")
            newline, head = "\n", ""
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            parts, size = [head], len(head)
            while batch := cursor.fetchmany(FETCH):
                self.rows += len(batch)
                if self.format == "csv":
                    lines = (
                        ",".join(
                            csv_text_cell(v) if is_text else ("" if v is None else str(v))
                            for v, is_text in zip(row, text, strict=True)
                        )
                        for row in batch
                    )
                else:
                    lines = (row[0] for row in batch)
                chunk = newline.join(lines) + newline
                parts.append(chunk)
                size += len(chunk)
                if size >= CHUNK:
                    yield "".join(parts).encode()
                    parts, size = [], 0
            if size:
                yield "".join(parts).encode()


_RISKY_FIRST = frozenset("=+-@\t")


def csv_text_cell(value: str | None) -> str:
    """One text cell as PostgreSQL's COPY writes it after Dialect.csv_text: single-line,
    formula-neutralised, quoted only when needed; None is empty, "" is quoted."""
    if value is None:
        return ""
    if value == "":
        return '""'
    if "\r" in value or "\n" in value:
        value = value.replace("\r", " ").replace("\n", " ")
    if value[0] in _RISKY_FIRST:
        value = "'" + value
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def json_page(query: ExportQuery, *, alias: str, next_url) -> tuple[bytes, int]:
    """One keyset page: ``{"data": [...], "count": n, "next": url-or-null}``.

    ``next_url(cursor)`` builds the link to the following page. Returns the body and the
    number of rows in it.
    """
    connection = connections[alias]
    page_size = query.limit
    probe = ExportQuery(**{**query.__dict__, "limit": page_size + 1})
    sql, params = json_page_select(probe, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    more = len(rows) > page_size
    rows = rows[:page_size]
    next_link = next_url(encode_cursor(rows[-1][1])) if more and rows else None
    body = (
        '{"dataset":'
        + json.dumps(query.dataset.name)
        + ',"count":'
        + str(len(rows))
        + ',"next":'
        + json.dumps(next_link)
        + ',"data":['
        + ",".join(row[0] for row in rows)
        + "]}"
    )
    return body.encode(), len(rows)
