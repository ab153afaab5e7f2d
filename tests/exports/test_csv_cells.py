"""CSV cells are the same bytes on SQLite and PostgreSQL for any text, however hostile: one
line, formula-neutralised, quoted only when needed (RFC 4180), across the stream's chunks.

The reference below is the rule as written in docs/exports.md; the database computes it in
SQL (SQLite: the whole cell; PostgreSQL: the first character, with COPY quoting and the
stream mending the rare line breaks), so these tests compare two independent encodings.
"""

from __future__ import annotations

import random

import pytest

from exports.backbone.router import backbone_alias
from exports.datasets import CLIENTS
from exports.query import ExportQuery
from exports.streaming import CHUNK, ExportStream
from tests.factories import CompanyFactory

FRAGMENTS = [
    "=", "+", "-", "@", "\t", "\r", "\n", "\r\n", "\n\n", ",", '"', '""', "'", " ", "a",
    "Zürich", "日本", "\\.", "\\", "\x01", "\x02", "=SUM(A1)", ";", "|", "€", "%s", "%%",
]  # fmt: skip
TEXT_FIELDS = ["external_id", "name", "domain", "industry", "city"]


def expected_cell(value: str, *, alone: bool = False) -> str:
    if value == "":
        return '""'
    if alone and value == "\\.":
        return '"\\."'  # COPY's end-of-data marker, quoted when it is a whole line
    value = value.replace("\r", " ").replace("\n", " ")
    if value[0] in "=+-@\t":
        value = "'" + value
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def hostile(rng: random.Random, max_chars: int) -> str:
    text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 6)))
    if rng.random() < 0.3:  # long cells, so the rows cross the stream's 64 KiB chunks
        text += "x" * rng.randint(20, 60) + rng.choice(FRAGMENTS)
    return text[:max_chars]


def export_csv(fields: list[str]) -> bytes:
    query = ExportQuery(dataset=CLIENTS, fields=fields)
    return b"".join(ExportStream(query, "csv", alias=backbone_alias()))


@pytest.mark.django_db
def test_hostile_text_cells_match_the_rule_byte_for_byte():
    rng = random.Random(20261203)
    made = []
    for n in range(1500):
        values = {
            "external_id": f"{rng.choice(FRAGMENTS)}{n}{hostile(rng, 20)}"[:40],
            "name": hostile(rng, 200),
            "domain": hostile(rng, 255),
            "industry": hostile(rng, 64),
            "city": hostile(rng, 100),
        }
        made.append(CompanyFactory(**values))
    rows = sorted(made, key=lambda c: c.pk)

    body = export_csv(TEXT_FIELDS)

    expected = (
        ",".join(TEXT_FIELDS)
        + "\r\n"
        + "".join(
            ",".join(expected_cell(getattr(c, name)) for name in TEXT_FIELDS) + "\r\n" for c in rows
        )
    )
    assert len(body) > 2 * CHUNK  # the mended rows are spread over several chunks
    assert sum("\n" in c.name or "\r" in c.name for c in rows) > 100
    assert body.decode("utf-8") == expected


@pytest.mark.django_db
def test_a_single_column_export_quotes_the_end_of_data_marker():
    companies = [CompanyFactory(name=name) for name in ("\\.", "\\.\n", "a\\.", "\n")]

    body = export_csv(["name"])

    cells = [expected_cell(c.name, alone=True) for c in sorted(companies, key=lambda c: c.pk)]
    assert body.decode() == "name\r\n" + "\r\n".join(cells) + "\r\n"
    assert body.splitlines()[1] == b'"\\."'


@pytest.mark.django_db
def test_text_and_other_cells_keep_their_columns_when_a_cell_is_mended():
    CompanyFactory(name='Line\nBreak, "Quoted"', city="=Bad\r\nCity", employees=7)

    body = export_csv(["id", "name", "employees", "city", "is_customer"])

    line = body.decode().split("\r\n")[1]
    assert line.endswith(',"Line Break, ""Quoted""",7,\'=Bad  City,false')


@pytest.mark.django_db
def test_a_single_number_column_is_its_text():
    companies = [CompanyFactory(employees=n) for n in (0, 7, 120)]

    body = export_csv(["employees"])

    assert body.decode() == "employees\r\n" + "".join(f"{c.employees}\r\n" for c in companies)
