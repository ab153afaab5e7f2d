"""A real Celery worker with the HTTP consent service down, then back (file broker, or Redis)."""

import pytest

from integrations.models import LedgerEntry, LedgerStatus, RunStatus, SyncRun
from integrations.services import sync_run_start
from tests.factories import ContactFactory
from tests.fakes.consent import FakeConsentService
from tests.integrations.conftest import make_connection, make_sync
from tests.worker import wait_for

FINISHED = (RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.DEFERRED, RunStatus.FAILED)


@pytest.fixture
def worker_consent_service(monkeypatch, settings):
    """The consent emulator's address, for this process and (set before it starts) the
    worker's; not serving yet: the test starts it."""
    service = FakeConsentService().start()
    service.stop()  # the port is kept: start() serves on it again
    for name, value in (("MKT_CONSENT_URL", service.url), ("MKT_CONSENT_TOKEN", service.token)):
        monkeypatch.setenv(name, value)
        setattr(settings, name, value)
    yield service
    service.stop()
    assert service.problems() == []


def _finished(run):
    return lambda: SyncRun.objects.filter(pk=run.pk, status__in=FINISHED).first()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_defers_every_record_while_consent_is_down_and_sends_them_after(
    worker_consent_service, celery_worker, hubspot
):
    service = worker_consent_service
    contacts = ContactFactory.create_batch(1200)  # three delivery tasks once it answers
    for contact in contacts:
        service.set_consent(contact.pk, "email_marketing", "granted")
    sync = make_sync(
        make_connection("hubspot", hubspot),
        dataset="contacts",
        obj="contacts",
        mappings=[("first_name", "firstname")],
        match=("email", "email"),
        consent_purpose="email_marketing",
    )

    down = wait_for(_finished(sync_run_start(sync=sync, trigger="manual")), timeout=120)

    assert (down.status, down.deferred, down.created) == (RunStatus.DEFERRED, 1200, 0), (
        down.error + celery_worker.output()
    )
    assert "the consent service did not answer (connection failed)" in down.error
    assert hubspot.objects("contacts") == []

    service.start()
    back = wait_for(_finished(sync_run_start(sync=sync, trigger="manual")), timeout=180)

    assert (back.status, back.created, back.deferred) == (RunStatus.SUCCEEDED, 1200, 0), (
        back.error + celery_worker.output()
    )
    stored = hubspot.objects("contacts")
    assert {o["properties"]["email"] for o in stored} == {c.email.lower() for c in contacts}
    assert max(o["created_count"] for o in stored) == 1
    synced = LedgerEntry.objects.filter(sync=sync, status=LedgerStatus.SYNCED)
    assert synced.filter(consent_source="http").exclude(consent_ref="").count() == 1200
    assert hubspot.violations == []
