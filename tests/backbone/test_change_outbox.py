"""The backbone's change outbox: its triggers announce every change of a company or contact
that a real-time sync listens to, whoever writes it, and nothing while nobody listens
(exports/backbone/changes.py, docs/realtime.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exports.backbone.changes import (
    ChangeEvent,
    change_events_take,
    change_subscriptions_set,
)
from exports.backbone.models import Company, CompanyMetrics, ConsentRecord, Contact
from exports.backbone.segments import segment_define, segment_members_replace
from tests.factories import CompanyFactory, ContactFactory

pytestmark = pytest.mark.django_db


def _announced() -> list[tuple[str, int]]:
    return sorted(ChangeEvent.objects.values_list("subject", "subject_id"))


def test_nothing_is_announced_while_nobody_listens():
    company = CompanyFactory()
    ContactFactory(company=company)
    Company.objects.filter(pk=company.pk).update(name="Renamed")

    assert _announced() == []


def test_every_write_to_a_listened_subject_is_announced_with_its_time():
    change_subscriptions_set(["company"])
    before = timezone.now()
    first, second = CompanyFactory.create_batch(2)
    ids = first.pk, second.pk
    # One statement changing many rows announces each of them (PostgreSQL: one INSERT).
    Company.objects.filter(pk__in=ids).update(city="Lyon")
    CompanyMetrics.objects.create(company=first, updated_at=timezone.now())
    ContactFactory(company=first)  # contacts are not listened to
    second.delete()

    # first: created, updated, its metrics; second: created, updated, deleted
    assert _announced() == sorted([("company", ids[0]), ("company", ids[1])] * 3)
    times = ChangeEvent.objects.values_list("occurred_at", flat=True)
    assert all(before - timedelta(seconds=5) <= t <= timezone.now() for t in times)


def test_consent_and_segment_changes_announce_their_subjects():
    change_subscriptions_set(["company", "contact"])
    company = CompanyFactory()
    contact = ContactFactory(company=company)
    ChangeEvent.objects.all().delete()

    ConsentRecord.objects.create(
        contact=contact,
        purpose="email_marketing",
        channel="email",
        status="withdrawn",
        recorded_at=timezone.now(),
    )
    vip = segment_define(key="vip", name="VIP", subject="company")
    segment_members_replace(segment=vip, subject_ids=[company.pk])
    guests = segment_define(key="guests", name="Guests", subject="contact")
    segment_members_replace(segment=guests, subject_ids=[contact.pk])
    segment_members_replace(segment=vip, subject_ids=[])  # the company leaves

    events = _announced()
    assert ("contact", contact.pk) in events
    assert events.count(("company", company.pk)) == 2  # joined, left
    assert events.count(("contact", contact.pk)) == 2  # consent, joined


def test_taking_empties_the_outbox_oldest_first_and_a_rollback_puts_them_back():
    from django.db import transaction

    change_subscriptions_set(["contact"])
    contacts = ContactFactory.create_batch(3)
    Contact.objects.filter(pk=contacts[0].pk).update(title="CTO")

    with pytest.raises(RuntimeError), transaction.atomic():
        assert len(change_events_take(10)) == 4
        raise RuntimeError("the dispatcher failed after taking")
    assert ChangeEvent.objects.count() == 4

    taken = change_events_take(2)
    assert [c.subject_id for c in taken] == [contacts[0].pk, contacts[1].pk]
    assert [c.subject_id for c in change_events_take(10)] == [contacts[2].pk, contacts[0].pk]
    assert change_events_take(10) == []


def test_listening_stops_when_no_sync_listens_any_more():
    change_subscriptions_set(["company"])
    CompanyFactory()
    change_subscriptions_set([])
    CompanyFactory()

    assert len(_announced()) == 1
