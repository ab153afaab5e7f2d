"""Segments (exports/backbone/segments.py): exports and syncs filter on them, the access log
names the segment and its version, and a record that joins one is planned again."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AccessLog
from exports.backbone.models import Segment, SegmentMember
from exports.backbone.segments import (
    SegmentInputError,
    segment_define,
    segment_members_replace,
)
from mktintegration import roles
from tests.factories import CompanyFactory, ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst(api_token):
    _, raw = api_token(roles.MARKETING_ANALYST, ["export:clients", "export:contacts"])
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def companies(db):
    return [CompanyFactory(name=f"Company {n}") for n in range(6)]


def _segment(key, members, *, subject="company", name=None):
    segment = segment_define(key=key, name=name or key.title(), subject=subject)
    segment_members_replace(segment=segment, subject_ids=[m.pk for m in members])
    segment.refresh_from_db()
    return segment


def _ids(client, url, headers):
    response = client.get(url, **headers)
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["data"]]


def test_an_export_filtered_on_a_segment_has_its_members_only(client, analyst, companies):
    _segment("vip", companies[1:4], name="VIP accounts")

    found = _ids(client, "/marketing/export/clients?fields=id&segment=vip", analyst)

    assert found == [c.pk for c in companies[1:4]]
    log = AccessLog.objects.latest("id")
    assert log.filters == {"segment": [{"key": "vip", "name": "VIP accounts", "version": 1}]}


def test_several_segments_keep_the_records_in_every_one(client, analyst, companies):
    _segment("vip", companies[0:4])
    _segment("germany", companies[2:6])

    found = _ids(client, "/marketing/export/clients?fields=id&segment=vip,germany", analyst)

    assert found == [companies[2].pk, companies[3].pk]


def test_a_member_who_left_is_not_exported_and_the_version_moves(client, analyst, companies):
    segment = _segment("vip", companies[0:3])
    change = segment_members_replace(segment=segment, subject_ids=[companies[0].pk])
    same = segment_members_replace(segment=segment, subject_ids=[companies[0].pk])

    assert (change.joined, change.left, change.version) == (0, 2, 2)
    assert (same.joined, same.left, same.version) == (0, 0, 2)  # nothing changed
    assert SegmentMember.objects.filter(segment=segment).count() == 3  # the two who left kept
    assert _ids(client, "/marketing/export/clients?fields=id&segment=vip", analyst) == [
        companies[0].pk
    ]
    back = segment_members_replace(segment=segment, subject_ids=[c.pk for c in companies[0:2]])
    assert (back.joined, back.version) == (1, 3)


def test_contact_segments_filter_contacts_and_not_companies(client, analyst, companies):
    people = [ContactFactory(company=companies[0]) for _ in range(3)]
    _segment("webinar", people[:2], subject="contact")

    found = _ids(client, "/marketing/export/contacts?fields=id&segment=webinar", analyst)
    refused = client.get("/marketing/export/clients?segment=webinar", **analyst)

    assert found == [p.pk for p in people[:2]]
    assert refused.status_code == 400
    assert "no company segment webinar" in refused.json()["segment"][0]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("nope", "segment: no company segment nope; known: vip"),
        ("Bad Key!", "is not a segment key (1 to 64 of a-z 0-9 _ -"),
        ("a,b,c,d,e,f", "segment: at most 5 segments"),
        (",", "segment: give at least one segment key"),
    ],
)
def test_a_bad_segment_is_a_400_naming_the_parameter(client, analyst, companies, value, says):
    _segment("vip", companies[:1])

    response = client.get(f"/marketing/export/clients?segment={value}", **analyst)

    assert response.status_code == 400
    assert says in response.json()["segment"][0]
    assert AccessLog.objects.latest("id").outcome == "invalid"


def test_segment_writes_are_checked():
    with pytest.raises(SegmentInputError, match="is not a segment key"):
        segment_define(key="-x", name="X", subject="company")
    with pytest.raises(SegmentInputError, match="subject: 'person' is not one of"):
        segment_define(key="x", name="X", subject="person")
    segment = segment_define(key="x", name="X", subject="company")
    with pytest.raises(SegmentInputError, match="holds companys, not contacts"):
        segment_define(key="x", name="X", subject="contact")
    with pytest.raises(SegmentInputError, match="subject_id: 0 is not an id"):
        segment_members_replace(segment=segment, subject_ids=[0])
    assert segment.version == 0 and not SegmentMember.objects.exists()


def test_segment_load_reads_ids_and_refuses_a_bad_line(tmp_path, companies):
    ids = tmp_path / "ids.txt"
    ids.write_text(f"# VIPs\n{companies[0].pk}\n\n{companies[1].pk}\n")
    out = io.StringIO()

    call_command(
        "segment_load", "vip", "--name", "VIPs", "--subject", "company", "--file", ids, stdout=out
    )
    ids.write_text(f"{companies[0].pk}\nACME-1\n")
    with pytest.raises(CommandError, match="line 2: 'ACME-1' is not an id"):
        call_command("segment_load", "vip", "--name", "VIPs", "--subject", "company", "--file", ids)
    ids.write_text("\u00b2\n")  # a digit to str.isdigit, not to int()
    with pytest.raises(CommandError, match="line 1: '\u00b2' is not an id"):
        call_command("segment_load", "vip", "--name", "VIPs", "--subject", "company", "--file", ids)

    assert "Segment vip: 2 members (2 joined, 0 left), version 1" in out.getvalue()
    assert Segment.objects.get(key="vip").version == 1  # the refused file changed nothing


def test_the_admin_lists_segments_with_their_members(client_for, companies):
    _segment("vip", companies[:3], name="VIP accounts")

    page = client_for(roles.MARKETING_MANAGER).get("/admin/backbone/segment/")

    assert page.status_code == 200
    assert "VIP accounts" in page.text and ">3<" in page.text.replace(" ", "")
