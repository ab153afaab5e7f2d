"""A sync filtered on a segment sends its members only, in SQL and in Python plans alike, and
a company that joins the segment later is sent by the next run although the company itself
did not change (docs/segments.md)."""

from __future__ import annotations

import pytest

from exports.backbone.segments import segment_define, segment_members_replace
from integrations.engine.planner import Planner
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync, start_and_drive

pytestmark = pytest.mark.django_db


def _external_ids(hubspot) -> set[str]:
    return {o["properties"]["external_id"] for o in hubspot.objects("companies")}


@pytest.mark.parametrize("in_database", [True, False], ids=["sql-plan", "python-plan"])
def test_a_segment_sync_sends_its_members_and_later_joiners(monkeypatch, hubspot, in_database):
    monkeypatch.setattr(Planner, "in_database", in_database)
    companies = CompanyFactory.create_batch(6)
    segment = segment_define(key="vip", name="VIP accounts", subject="company")
    segment_members_replace(segment=segment, subject_ids=[c.pk for c in companies[:3]])
    sync = make_sync(make_connection("hubspot", hubspot), filters={"segment": "vip"})

    first = start_and_drive(sync)
    assert first.status == "succeeded"
    assert _external_ids(hubspot) == {c.external_id for c in companies[:3]}
    assert first.plan_path.startswith("database" if in_database else "python")

    # companies[3] and [4] join, companies[0] leaves; no company row changes.
    segment_members_replace(segment=segment, subject_ids=[c.pk for c in companies[1:5]])
    second = start_and_drive(sync)

    assert second.status == "succeeded"
    assert _external_ids(hubspot) == {c.external_id for c in companies[:5]}
    # The joiners only; the one who left stays at the destination (an upsert sync).
    assert (second.created, second.updated) == (2, 0)


def test_the_sync_editor_offers_the_datasets_segments_and_checks_them():
    from exports.datasets import CLIENTS, CONTACTS
    from integrations.sync_editor import (
        FILTER_PREFIX,
        filter_field,
        filter_initial,
        filters_from_values,
    )

    segment_define(key="vip", name="VIP accounts", subject="company")
    segment_define(key="webinar", name="Webinar guests", subject="contact")
    errors: dict[str, str] = {}

    assert filter_field(CLIENTS.filter("segment")).choices == [("vip", "VIP accounts (vip)")]
    assert filter_field(CONTACTS.filter("segment")).choices == [
        ("webinar", "Webinar guests (webinar)")
    ]
    assert filters_from_values(CLIENTS, {"segment": ["vip"]}, errors) == {"segment": "vip"}
    assert filter_initial(CLIENTS, {"segment": "vip"}) == {FILTER_PREFIX + "segment": ["vip"]}
    assert filters_from_values(CLIENTS, {"segment": ["webinar"]}, errors) == {}
    assert errors == {"segment": "segment: no company segment webinar; known: vip"}
