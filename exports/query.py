"""Export requests: parsing what the caller asked for, and the SQL that answers it.

The database does the work: filtering, field selection, ordering, value formatting, CSV
formula neutralisation and JSON encoding all happen in SQL, so the same request gives the same
bytes on SQLite and PostgreSQL. One exception, for speed: on PostgreSQL the rare text cell
with a line break is made one line by the stream (``exports.streaming.one_line_rows``), not by
a per-cell function (docs/adr/0012-csv-cells-at-copy-speed.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

from exports.datasets import Dataset, DatasetField, DatasetFilter, FieldType, FilterKind
from mktintegration import bounds

RESERVED_PARAMS = ("format", "fields", "limit", "cursor")
MAX_IN_VALUES = bounds.LIST_ITEMS
MAX_SEGMENTS = 5  # segments one filter may name (each is one EXISTS in the SQL)
CURSOR_CHARS = 512
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
# A CSV text cell starting with one of these gets a leading ' (a spreadsheet would run it as
# a formula): = + - @ and TAB, tested in SQL by code point.
RISKY_FIRST = "=+-@\t"
RISKY_CODES = "(" + ", ".join(str(ord(c)) for c in RISKY_FIRST) + ")"


def risky_first_sql(code: str) -> str:
    """SQL true when ``code`` (the code point of a cell's first character) is risky. Letters
    are above every risky code, so nearly every cell costs one comparison, not five."""
    return f"{code} <= {max(map(ord, RISKY_FIRST))} AND {code} IN {RISKY_CODES}"


class ExportInputError(ValueError):
    """Bad input, naming the parameter at fault (answered as a 400)."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


@contextmanager
def _bounded():
    """A bound broken while parsing is an ExportInputError naming the parameter."""
    try:
        yield
    except bounds.BoundError as exc:
        raise ExportInputError(exc.field, exc.message) from None


@dataclass
class ExportQuery:
    dataset: Dataset
    fields: list[str]
    filters: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    after: Any = None  # keyset: rows with a key greater than this
    # Data residency: only records of these regions (None: any region; []: none at all).
    regions: list[str] | None = None

    def describe_filters(self) -> dict[str, Any]:
        """The filters as JSON-safe values (for the access log and run records); a segment
        by its key, name and the version read."""
        return {name: _described(value) for name, value in self.filters.items()}


def _described(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list) and value and hasattr(value[0], "describe"):
        return [v.describe() for v in value]
    return value


def _names(names: list[str]) -> str:
    """Names from the request, as shown back in a message (bounded)."""
    shown = [name if len(name) <= 40 else name[:37] + "..." for name in names[:5]]
    return ", ".join(shown) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _parse_fields(dataset: Dataset, raw: str | None) -> list[str]:
    if raw is None or not raw.strip():
        return list(dataset.default_fields)
    names = list(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    unknown = [name for name in names if name not in dataset.field_names]
    if unknown:
        raise ExportInputError(
            "fields",
            f"unknown field(s): {_names(unknown)}. Allowed fields for {dataset.name}: "
            f"{', '.join(dataset.field_names)}",
        )
    return names


def parse_timestamp(param: str, raw: str) -> datetime:
    """An ISO 8601 date or date-time (UTC when no offset is given), within the bounds."""
    text = raw.strip()
    with _bounded():
        bounds.text_check(param, text, max_chars=64)
    try:
        value = parse_datetime(text)
        if value is None:
            day = parse_date(text)
            value = datetime.combine(day, time.min) if day is not None else None
    except ValueError as exc:  # well-formed but not a real date: 2026-02-30, 25:00
        raise ExportInputError(
            param, f"{param}: {_shown(text)} is not a valid date or date-time ({exc})"
        ) from None
    if value is None:
        raise ExportInputError(
            param,
            f"{param}: {_shown(text)} is not an ISO 8601 date or date-time "
            "(e.g. 2026-01-31T09:00:00Z)",
        )
    with _bounded():
        return bounds.moment_check(param, value)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _parse_int(param: str, raw: str, allowed: bounds.Range) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ExportInputError(
            param, f"{param}: {_shown(raw)} is not a whole number ({allowed.describe()})"
        ) from None
    with _bounded():
        return int(allowed.check(param, value))


def _parse_segments(spec: DatasetFilter, raw: str) -> list:
    """Segment keys -> the segments as they are now (SegmentRef), each known for the subject."""
    from exports.backbone.segments import SegmentInputError, key_check, segment_keys, segments_named

    keys = list(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
    if not keys:
        raise ExportInputError(spec.name, f"{spec.name}: give at least one segment key")
    if len(keys) > MAX_SEGMENTS:
        raise ExportInputError(spec.name, f"{spec.name}: at most {MAX_SEGMENTS} segments")
    try:
        for key in keys:
            key_check(spec.name, key)
    except SegmentInputError as exc:
        raise ExportInputError(spec.name, exc.message) from None
    found = segments_named(spec.subject, keys)
    missing = [key for key in keys if key not in found]
    if missing:
        known = [key for key, _ in segment_keys(spec.subject, limit=11)]
        listed = ", ".join(known[:10]) + (" and more" if len(known) > 10 else "")
        raise ExportInputError(
            spec.name,
            f"{spec.name}: no {spec.subject} segment {_names(missing)}; "
            + (f"known: {listed}" if known else f"there are no {spec.subject} segments yet"),
        )
    return [found[key] for key in keys]


def _parse_filter(spec: DatasetFilter, raw: str) -> Any:
    if spec.kind == FilterKind.SEGMENT:
        return _parse_segments(spec, raw)
    if spec.kind == FilterKind.IN:
        values = list(dict.fromkeys(v.strip() for v in raw.split(",") if v.strip()))
        if not values:
            raise ExportInputError(spec.name, f"{spec.name}: give at least one value")
        if len(values) > MAX_IN_VALUES:
            raise ExportInputError(spec.name, f"{spec.name}: at most {MAX_IN_VALUES} values")
        with _bounded():
            for value in values:
                bounds.text_check(spec.name, value)
        if spec.choices:
            bad = [v for v in values if v not in spec.choices]
            if bad:
                raise ExportInputError(
                    spec.name,
                    f"{spec.name}: unknown value(s) {_names(bad)}; allowed: "
                    f"{', '.join(spec.choices)}",
                )
        return values
    if spec.kind == FilterKind.SINCE:
        return parse_timestamp(spec.name, raw)
    if spec.kind in (FilterKind.MIN, FilterKind.MAX):
        return _parse_int(spec.name, raw, spec.range or bounds.INTEGER)
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ExportInputError(spec.name, f"{spec.name}: {_shown(raw)} is not true or false")
    return value in _TRUE


def parse_limit(raw: str | None, *, maximum: int | None) -> int | None:
    """A row limit: from 1 to ``maximum`` (or to bounds.EXPORT_ROWS)."""
    if raw is None or raw == "":
        return None
    allowed = bounds.EXPORT_ROWS
    if maximum is not None:
        allowed = bounds.Range(1, min(maximum, allowed.maximum), "rows")
    return _parse_int("limit", raw, allowed)


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": key}).encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> Any:
    refused = ExportInputError("cursor", "cursor is not one this API returned")
    if len(raw) > CURSOR_CHARS:
        raise refused
    try:
        padded = raw + "=" * (-len(raw) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
        raise refused from None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise refused
    if isinstance(value, int) and not bounds.KEY.contains(value):
        raise refused
    if isinstance(value, str):
        try:
            bounds.text_check("cursor", value)
        except bounds.BoundError:
            raise refused from None
    return value


def _as_param(name: str, value: Any) -> str:
    """A filter as the export API receives it (text). Stored filters (sync and schedule JSON)
    may also hold numbers, booleans and lists of them; nothing else."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, list) and all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        text = ",".join(str(v) for v in value)
    else:
        raise ExportInputError(
            name,
            f'{name}: give text (e.g. "DE,FR"), a number, true/false or a list of values, '
            f"not {type(value).__name__}",
        )
    if len(text) > bounds.PARAM_CHARS:
        raise ExportInputError(
            name, f"{name}: at most {bounds.PARAM_CHARS:,} characters (got {len(text):,})"
        )
    return text


def export_query_parse(
    dataset: Dataset,
    params: Mapping[str, Any],
    *,
    max_limit: int | None = None,
    allow_cursor: bool = True,
) -> ExportQuery:
    """Validate request parameters (or stored filters) against the dataset and the bounds in
    ``mktintegration.bounds``; ExportInputError on the first fault."""
    unknown = [p for p in params if p not in RESERVED_PARAMS and p not in dataset.filter_names]
    if unknown:
        raise ExportInputError(
            unknown[0][:40],
            f"unknown filter(s): {_names(sorted(unknown))}. Allowed filters for "
            f"{dataset.name}: {', '.join(dataset.filter_names)}",
        )
    params = {name: _as_param(name, value) for name, value in params.items()}
    query = ExportQuery(dataset=dataset, fields=_parse_fields(dataset, params.get("fields")))
    for spec in dataset.filters:
        if spec.name in params:
            query.filters[spec.name] = _parse_filter(spec, params[spec.name])
    query.limit = parse_limit(params.get("limit"), maximum=max_limit)
    if allow_cursor and params.get("cursor"):
        query.after = decode_cursor(params["cursor"])
    return query


# --- SQL --------------------------------------------------------------------------------------


class Dialect:
    """Value formatting that differs between SQLite and PostgreSQL."""

    def __init__(self, vendor: str):
        self.pg = vendor == "postgresql"

    def datetime_text(self, sql: str) -> str:
        if self.pg:
            return f"to_char({sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        # '%%': the statement is formatted with its parameters (by the driver, and by
        # Django's debug cursor when DEBUG is on), so a literal percent sign is doubled.
        return f"strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', {sql})"

    def decimal_text(self, sql: str) -> str:
        if self.pg:
            return f"CAST(CAST({sql} AS NUMERIC(17, 2)) AS TEXT)"
        return f"CASE WHEN {sql} IS NULL THEN NULL ELSE printf('%%.2f', {sql}) END"

    def bool_text(self, sql: str) -> str:
        return f"CASE WHEN {sql} THEN 'true' WHEN NOT {sql} THEN 'false' END"

    @staticmethod
    def csv_text(sql: str) -> str:
        """PostgreSQL: a text cell that no spreadsheet will run as a formula. The first
        character is tested by code point, one cheap call per cell (the whole cost of the
        rule on top of a plain COPY); COPY quotes the cell, and the stream turns the line
        breaks of the rare cells that have any into spaces (``streaming.one_line_rows``)."""
        return f"CASE WHEN {risky_first_sql(f'ascii({sql})')} THEN '''' || {sql} ELSE {sql} END"

    @staticmethod
    def csv_line_text(sql: str, *, alone: bool = False) -> str:
        """SQLite (no COPY): a finished text cell, the same bytes as COPY and the stream
        give for csv_text: single-line, formula-neutralised, quoted only when it holds a
        comma or a quote; NULL is empty and "" is quoted. A cell that needs none of it
        (nearly every cell) costs one GLOB and one code-point test."""
        one_line = f"replace(replace({sql}, char(13), ' '), char(10), ' ')"
        risky = risky_first_sql(f"unicode({sql})")
        safe = f"CASE WHEN {risky} THEN '''' || {one_line} ELSE {one_line} END"
        quoted = f"""'"' || replace({safe}, '"', '""') || '"'"""
        special = f"""{sql} GLOB '*[,"' || char(10) || char(13) || ']*'"""
        # COPY quotes a lone \. (its end-of-data marker) when it is the only column.
        marker = f"""WHEN {sql} = '\\.' THEN '"\\."' """ if alone else ""
        return (
            f"""CASE WHEN {sql} IS NULL THEN '' WHEN {sql} = '' THEN '""' {marker}"""
            f"""WHEN {special} THEN CASE WHEN instr({sql}, ',') OR instr({sql}, '"') """
            f"THEN {quoted} ELSE {safe} END "
            f"WHEN {risky} THEN '''' || {sql} ELSE {sql} END"
        )

    def csv_cell(self, f: DatasetField) -> str:
        if f.type == FieldType.TEXT:
            return self.csv_text(f.sql)
        if f.type == FieldType.DATETIME:
            return self.datetime_text(f.sql)
        if f.type == FieldType.DECIMAL:
            return self.decimal_text(f.sql)
        if f.type == FieldType.BOOL:
            return self.bool_text(f.sql)
        return f.sql

    def json_value(self, f: DatasetField) -> str:
        if f.type == FieldType.DATETIME:
            return self.datetime_text(f.sql)
        if f.type == FieldType.DECIMAL:
            return f"ROUND({f.sql}, 2)"
        if f.type == FieldType.BOOL and not self.pg:
            return self.bool_text(f.sql)  # text here; json_object() turns it into true/false
        return f.sql

    @staticmethod
    def json_object(fields: list[DatasetField]) -> str:
        """SQLite: one compact JSON object from the columns of subquery ``q``."""
        pairs = []
        for f in fields:
            column = f"q.{_alias(f.name)}"
            pairs.append(
                f"'{f.name}', " + (f"json({column})" if f.type == FieldType.BOOL else column)
            )
        return f"json_object({', '.join(pairs)})"


def _alias(name: str) -> str:
    return f'"{name}"'


def where_sql(query: ExportQuery, dialect: Dialect) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for name, value in query.filters.items():
        spec = query.dataset.filter(name)
        if spec.kind == FilterKind.IN:
            clauses.append(f"{spec.sql} IN ({', '.join(['%s'] * len(value))})")
            params.extend(value)
        elif spec.kind == FilterKind.SINCE:
            clauses.append(f"{spec.sql} >= %s")
            params.append(value if dialect.pg else _sqlite_datetime(value))
        elif spec.kind == FilterKind.MIN:
            clauses.append(f"{spec.sql} >= %s")
            params.append(value)
        elif spec.kind == FilterKind.MAX:
            clauses.append(f"{spec.sql} <= %s")
            params.append(value)
        elif spec.kind == FilterKind.SEGMENT:  # a current member of every one
            for segment in value:
                clauses.append(
                    "EXISTS (SELECT 1 FROM backbone_segmentmember sm WHERE sm.segment_id = %s "
                    f"AND sm.subject_id = {spec.sql} AND sm.left_at IS NULL)"
                )
                params.append(segment.id)
        else:
            clauses.append(spec.sql if value else f"NOT {spec.sql}")
    if query.after is not None:
        clauses.append(f"{query.dataset.field(query.dataset.key).sql} > %s")
        params.append(query.after)
    if query.regions is not None:
        clause, values = _regions_sql(query)
        clauses.append(clause)
        params.extend(values)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _regions_sql(query: ExportQuery, *, outside: bool = False) -> tuple[str, list[Any]]:
    """Rows of the allowed regions (or, ``outside``, every other row, unknown region too)."""
    column = query.dataset.field(query.dataset.region_field).sql
    regions = list(query.regions or [])
    if not regions:
        return ("1 = 1", []) if outside else ("1 = 0", [])
    inside = f"{column} IN ({', '.join(['%s'] * len(regions))})"
    if outside:
        return f"({column} IS NULL OR NOT {inside})", regions
    return inside, regions


def _sqlite_datetime(value: datetime) -> str:
    # Django stores aware datetimes on SQLite as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def _base_sql(query: ExportQuery, dialect: Dialect, columns: str) -> tuple[str, list[Any]]:
    where, params = where_sql(query, dialect)
    key = query.dataset.field(query.dataset.key).sql
    sql = f"SELECT {columns} FROM {query.dataset.from_sql}{where} ORDER BY {key}"
    if query.limit is not None:
        sql += f" LIMIT {int(query.limit)}"
    return sql, params


def csv_select(query: ExportQuery, vendor: str) -> tuple[str, list[Any]]:
    """SELECT of text cells named after the fields (a CSV header comes from the names)."""
    dialect = Dialect(vendor)
    fields = [query.dataset.field(name) for name in query.fields]
    columns = ", ".join(f"{dialect.csv_cell(f)} AS {_alias(f.name)}" for f in fields)
    return _base_sql(query, dialect, columns)


def csv_line_select(query: ExportQuery, vendor: str) -> tuple[str, list[Any]]:
    """SQLite (no COPY): one finished CSV line per row (without its line ending), so the
    stream only joins lines; the same bytes as COPY of csv_select on PostgreSQL."""
    dialect = Dialect(vendor)
    cells = []
    for f in (query.dataset.field(name) for name in query.fields):
        if f.type == FieldType.TEXT:
            cells.append(dialect.csv_line_text(f.sql, alone=len(query.fields) == 1))
        else:
            cells.append(f"coalesce({dialect.csv_cell(f)}, '')")
    line = " || ',' || ".join(cells)
    # One number alone would come back as a number, not as its text.
    return _base_sql(query, dialect, line if len(cells) > 1 else f"CAST({line} AS TEXT)")


def _json_inner(query: ExportQuery, dialect: Dialect, *, with_key: bool):
    fields = [query.dataset.field(name) for name in query.fields]
    columns = ", ".join(f"{dialect.json_value(f)} AS {_alias(f.name)}" for f in fields)
    if with_key:
        columns += f", {query.dataset.field(query.dataset.key).sql} AS _key"
    sql, params = _base_sql(query, dialect, columns)
    return fields, sql, params


def ndjson_select(query: ExportQuery, vendor: str) -> tuple[str, list[Any]]:
    """SELECT of one compact JSON object per row, keys in the requested order."""
    dialect = Dialect(vendor)
    fields, inner, params = _json_inner(query, dialect, with_key=False)
    if dialect.pg:
        return f"SELECT row_to_json(q)::text FROM ({inner}) q", params
    return f"SELECT {dialect.json_object(fields)} FROM ({inner}) q", params


def json_page_select(query: ExportQuery, vendor: str) -> tuple[str, list[Any]]:
    """Like ndjson_select, plus each row's key (the next page's cursor)."""
    dialect = Dialect(vendor)
    fields, inner, params = _json_inner(query, dialect, with_key=True)
    if dialect.pg:
        names = ", ".join(f"q.{_alias(f.name)}" for f in fields)
        row = f"(SELECT row_to_json(r) FROM (SELECT {names}) r)::text"
        return f"SELECT {row}, q._key FROM ({inner}) q", params
    return f"SELECT {dialect.json_object(fields)}, q._key FROM ({inner}) q", params


def withheld_select(query: ExportQuery, vendor: str, *, reached_end: bool) -> tuple[str, list]:
    """Counts the rows a region-restricted read matched but did not return: over the same
    key range as the rows returned (up to the last of them when a limit stopped the read),
    so the pages of a paged read add up."""
    restricted = replace(query, regions=None, limit=None)
    where, params = where_sql(restricted, Dialect(vendor))
    outside, values = _regions_sql(query, outside=True)
    sql = f"SELECT COUNT(*) FROM {query.dataset.from_sql}{where or ' WHERE 1 = 1'} AND {outside}"
    params = [*params, *values]
    if query.limit is not None and not reached_end:
        key = query.dataset.field(query.dataset.key).sql
        inner, inner_params = _base_sql(query, Dialect(vendor), f"{key} AS k")
        sql += f" AND {key} <= (SELECT MAX(k) FROM ({inner}) returned)"
        params += inner_params
    return sql, params


def count_select(query: ExportQuery, vendor: str, *, cap: int) -> tuple[str, list[Any]]:
    """Counts matching rows, stopping at ``cap`` (cost bounded by the cap, not the table)."""
    dialect = Dialect(vendor)
    where, params = where_sql(query, dialect)
    inner = f"SELECT 1 FROM {query.dataset.from_sql}{where}"
    if query.limit is not None:
        cap = min(cap, query.limit)
    return f"SELECT COUNT(*) FROM ({inner} LIMIT {int(cap)}) capped", params


def present_values_select(query: ExportQuery, name: str) -> tuple[str, list[Any]]:
    """Which of a list filter's values some row of the dataset has."""
    spec, values = query.dataset.filter(name), query.filters[name]
    placeholders = ", ".join(["%s"] * len(values))
    sql = (
        f"SELECT DISTINCT {spec.sql} FROM {query.dataset.from_sql} "
        f"WHERE {spec.sql} IN ({placeholders})"
    )
    return sql, list(values)
