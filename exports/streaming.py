"""Turning an ExportQuery into bytes, at constant memory.

On PostgreSQL, CSV and NDJSON come straight from ``COPY (SELECT ...) TO STDOUT``: the server
formats every row and Python only gathers the rows into 64 KiB chunks (and, in the rare chunk
with a line break inside a cell, makes that cell one line). On SQLite each row's line comes
finished from the database and is only joined here. Either way an ``ExportStream`` counts
rows and bytes (and a SHA-256 for files) for the access log and the run record.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

from django.db import connections

from exports.query import (
    ExportQuery,
    csv_line_select,
    csv_select,
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
        rows = buffered = 0  # COPY sends each row as one message
        buffer = bytearray()
        with connection.cursor() as cursor, cursor.cursor.copy(copy_sql, params) as copy:
            for block in copy:
                buffer += block
                buffered += 1
                if len(buffer) >= CHUNK:
                    yield self._finish_block(bytes(buffer), buffered)
                    rows += buffered
                    buffer.clear()
                    buffered = 0
        if buffer:
            yield self._finish_block(bytes(buffer), buffered)
            rows += buffered
        self.rows = max(rows - newlines_before_rows, 0)

    def _finish_block(self, block: bytes, rows: int) -> bytes:
        """Whole rows from COPY as the file gets them. CSV: every cell single-line (the rare
        block with a line break inside a cell is mended) and records end with CRLF."""
        if self.format != "csv":
            return block
        if b"\r" in block or block.count(b"\n") != rows:
            block = one_line_rows(block)
        return block.replace(b"\n", b"\r\n")

    # SQLite: batches through the cursor.
    def _sqlite(self, connection) -> Iterator[bytes]:
        # SQLite has no COPY: each line comes whole from the database (CSV: csv_line_select,
        # the same bytes as COPY gives on PostgreSQL) and is only joined here.
        if self.format == "csv":
            sql, params = csv_line_select(self.query, "sqlite")
            newline, head = "\r\n", ",".join(self.query.fields) + "\r\n"
        else:
            sql, params = ndjson_select(self.query, "sqlite")
            newline, head = "\n", ""
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            parts, size = [head], len(head)
            while batch := cursor.fetchmany(FETCH):
                self.rows += len(batch)
                chunk = newline.join([row[0] for row in batch]) + newline
                parts.append(chunk)
                size += len(chunk)
                if size >= CHUNK:
                    yield "".join(parts).encode()
                    parts, size = [], 0
            if size:
                yield "".join(parts).encode()


# A quoted CSV cell as COPY writes it (a quote inside is doubled; cells never span rows).
_QUOTED_CELL = re.compile(rb'"[^"]*(?:""[^"]*)*"')


def _one_line_cell(match: re.Match) -> bytes:
    cell = match.group(0)
    if b"\n" not in cell and b"\r" not in cell:
        return cell
    text = cell[1:-1].replace(b'""', b'"').replace(b"\r", b" ").replace(b"\n", b" ")
    if b"," in text or b'"' in text:
        return b'"' + text.replace(b'"', b'""') + b'"'
    return text


def one_line_rows(block: bytes) -> bytes:
    """Whole CSV rows from COPY with every line break inside a cell made a space, the cell
    quoted again only if it still needs it (a comma or a quote), as COPY would have quoted
    it. Only cells COPY quoted can hold a line break, and their first character was already
    made safe in SQL (Dialect.csv_text), so the bytes are those of the one-line text."""
    return _QUOTED_CELL.sub(_one_line_cell, block)


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
