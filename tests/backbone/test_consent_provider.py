"""The consent adapter (exports/backbone/providers/consent.py) on its own: the local table and
the HTTP consent service (tests/fakes/consent.py), the one write, batching, the cache."""

import pytest

from audit.models import OutboundLog
from exports.backbone.models import ConsentRecord
from exports.backbone.providers.consent import (
    ConsentInputError,
    ConsentUnavailable,
    consent_lookup,
    consent_record,
)
from tests.factories import ConsentRecordFactory, ContactFactory

EVIDENCE = {"vendor": "hubspot", "event_id": "evt-1", "at": "2026-01-01T00:00:00Z"}


def withdraw(contact, **overrides):
    kwargs = {
        "contact_id": contact.pk,
        "purpose": "email_marketing",
        "status": "withdrawn",
        "source": "hubspot",
        "evidence": EVIDENCE,
    }
    return consent_record(**{**kwargs, **overrides})


@pytest.mark.django_db
def test_a_local_withdrawal_is_a_consent_record_with_its_evidence_and_is_in_force():
    contact = ContactFactory()
    ConsentRecordFactory(contact=contact, status="granted")

    decision = withdraw(contact)

    record = ConsentRecord.objects.get(pk=int(decision.reference))
    assert (record.status, record.source, record.evidence) == ("withdrawn", "hubspot", EVIDENCE)
    found = consent_lookup(subjects=[contact.pk], purpose="email_marketing")[str(contact.pk)]
    assert (found.status, found.source, found.reference) == ("withdrawn", "local", str(record.pk))
    assert not found.granted


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("purpose", {"purpose": "spam"}),
        ("status", {"status": "maybe"}),
        ("contact_id", {"contact_id": 0}),
        ("contact_id", {"contact_id": 10**9}),
        ("source", {"source": ""}),
        ("evidence", {"evidence": "a string"}),
        ("evidence", {"evidence": {"raw": object()}}),
        ("evidence", {"evidence": {"raw": "x" * 20_000}}),
    ],
)
def test_a_consent_write_with_a_bad_field_is_refused_naming_it(field, overrides):
    contact = ContactFactory()

    with pytest.raises(ConsentInputError) as refused:
        withdraw(contact, **overrides)

    assert refused.value.field == field
    assert not ConsentRecord.objects.exists()


@pytest.mark.django_db
def test_a_withdrawal_is_posted_to_the_consent_service_and_in_force_at_once(consent_service):
    contact = ContactFactory()
    consent_service.set_consent(contact.pk, "email_marketing", "granted")
    assert consent_lookup(subjects=[contact.pk], purpose="email_marketing")[
        str(contact.pk)
    ].granted  # now cached as granted

    decision = withdraw(contact)

    [event] = consent_service.events
    assert event == {
        "subject": str(contact.pk),
        "purpose": "email_marketing",
        "status": "withdrawn",
        "channel": "email",
        "source": "hubspot",
        "evidence": EVIDENCE,
    }
    assert (decision.source, decision.reference) == (
        "http",
        consent_service.consent(contact.pk, "email_marketing")[1],
    )
    cached = consent_lookup(subjects=[contact.pk], purpose="email_marketing")[str(contact.pk)]
    assert cached.status == "withdrawn"  # the cached "granted" is gone with the write
    assert not ConsentRecord.objects.exists()  # the service keeps it, not our table


@pytest.mark.django_db
def test_a_withdrawal_the_service_cannot_take_raises_unavailable(consent_service):
    contact = ContactFactory()
    consent_service.set_down()

    with pytest.raises(ConsentUnavailable, match="answered 503"):
        withdraw(contact)


@pytest.mark.django_db
def test_lookups_go_in_batches_of_at_most_the_batch_size(consent_service, settings):
    settings.MKT_CONSENT_BATCH_SIZE = 500
    subjects = [str(n) for n in range(1, 1202)]
    consent_service.set_consent("7", "newsletter", "granted")

    found = consent_lookup(subjects=[*subjects, "7"], purpose="newsletter")

    sizes = [len(call.body["subjects"]) for call in consent_service.lookups()]
    assert sizes == [500, 500, 201]
    assert sorted(consent_service.subjects_asked(), key=int) == subjects  # each once
    assert found["7"].granted and found["7"].reference
    assert found["8"].status == "" and not found["8"].granted and not found["8"].unavailable
    assert [
        log.records for log in OutboundLog.objects.filter(vendor="consent").order_by("pk")
    ] == sizes


@pytest.mark.django_db
def test_answers_are_reused_for_the_cache_ttl_and_asked_again_after_it(
    consent_service, settings, clock
):
    settings.MKT_CONSENT_CACHE_SECONDS = 30
    consent_service.set_consent("5", "email_marketing", "granted")

    first = consent_lookup(subjects=["5"], purpose="email_marketing")["5"]
    consent_service.set_consent("5", "email_marketing", "withdrawn")
    clock.advance(29)
    within = consent_lookup(subjects=["5"], purpose="email_marketing")["5"]
    fresh = consent_lookup(subjects=["5"], purpose="email_marketing", fresh=True)["5"]
    clock.advance(2)  # 31 s after the first answer: expired (the fresh one is 2 s old)
    consent_service.set_consent("5", "email_marketing", "granted")
    clock.advance(30)
    after = consent_lookup(subjects=["5"], purpose="email_marketing")["5"]

    assert (first.status, within.status) == ("granted", "granted")
    assert within.checked_at == first.checked_at  # the cached decision, with its own time
    assert fresh.status == "withdrawn"
    assert after.status == "granted"
    assert len(consent_service.lookups()) == 3


@pytest.mark.django_db
def test_a_consent_service_on_an_internal_address_not_allow_listed_is_never_called(
    consent_service, settings
):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []

    found = consent_lookup(subjects=["1"], purpose="email_marketing")["1"]

    assert not found.granted and "MKT_CONSENT_URL" in found.unavailable
    assert consent_service.requests == []


@pytest.mark.django_db
def test_a_token_the_service_refuses_means_no_answer(consent_service, settings):
    consent_service.set_consent("1", "email_marketing", "granted")
    settings.MKT_CONSENT_TOKEN = "not-the-token"

    found = consent_lookup(subjects=["1"], purpose="email_marketing")["1"]

    assert not found.granted and found.unavailable == "consent service answered 401"
    [call] = consent_service.requests
    assert call.header("Authorization") == "***"  # sent (the emulator masks it)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "results",
    [
        [
            {"subject": "1", "status": "granted", "version": "v1"},
            {"subject": "9", "status": "granted", "version": "v1"},
        ],
        [
            {"subject": "1", "status": "granted", "version": "v1"},
            {"subject": "1", "status": "granted", "version": "v1"},
        ],
        [
            {"subject": "1", "status": "yes", "version": "v1"},
            {"subject": "2", "status": "granted", "version": "v1"},
        ],
        [
            {"subject": "1", "status": "granted"},
            {"subject": "2", "status": "granted", "version": "v1"},
        ],
        [
            {"subject": "1", "status": "granted", "version": 3},
            {"subject": "2", "status": "granted", "version": "v1"},
        ],
    ],
    ids=["unasked subject", "twice", "unknown status", "no version", "version not text"],
)
def test_an_answer_off_the_contract_is_not_trusted_at_all(consent_service, results):
    for subject in ("1", "2"):
        consent_service.set_consent(subject, "email_marketing", "granted")
    body = {"purpose": "email_marketing", "results": results}
    consent_service.fail_next(1, 200, body=body, writes_only=False)

    found = consent_lookup(subjects=["1", "2"], purpose="email_marketing")

    assert [d.granted for d in found.values()] == [False, False]
    assert all("contract" in d.unavailable for d in found.values())
