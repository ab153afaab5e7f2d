import os

import pytest

from tests.factories import UserFactory

PASSWORD = "correct horse battery"


def pytest_configure(config):
    """The demo-settings pass must keep DEBUG on (pytest-django turns it off by default)."""
    demo = config.getoption("ds", None) == "tests.settings_demo"
    if demo and config.getini("django_debug_mode") != "keep":
        raise pytest.UsageError("tests.settings_demo needs -o django_debug_mode=keep")


def pytest_sessionfinish(session, exitstatus):
    """Remove this session's data folder (test database, broker files)."""
    import shutil

    from django.conf import settings

    if settings.configured and "data/test/run-" in str(settings.DATA_DIR):
        shutil.rmtree(settings.DATA_DIR, ignore_errors=True)


@pytest.fixture
def user_with_role(db):
    """A staff user in the given role's group: ``user_with_role("Auditor")``."""

    def make(role: str | None, **kwargs):
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def client_for(client, user_with_role):
    """A test client logged in as a new user of the given role."""

    def make(role: str | None, **kwargs):
        user = user_with_role(role, **kwargs)
        client.force_login(user)
        return client

    return make


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs a Redis server: set REDIS_URL (CI does)")
    return url


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker process on the test database (tests using it are transactional).

    Yields the WorkerProcess; its log is printed when the test fails.
    """
    from tests.worker import WorkerProcess, clear_file_broker

    clear_file_broker()
    worker = WorkerProcess().start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def clock(monkeypatch):
    """A clock the test moves: ``clock.advance(seconds)`` moves ``time.time`` (and with it the
    local cache's expiry) and ``django.utils.timezone.now`` (session expiry) on together."""
    from datetime import UTC, datetime

    class Clock:
        now = 1_750_000_000.0

        def advance(self, seconds: float) -> None:
            self.now += seconds

        def __call__(self) -> float:  # an object, not a function: no method binding
            return self.now

    clock = Clock()
    monkeypatch.setattr("time.time", clock)
    monkeypatch.setattr(
        "django.utils.timezone.now", lambda: datetime.fromtimestamp(clock.now, tz=UTC)
    )
    return clock


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and cached vendor field lists live in the cache: start each test clean."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def api_token(user_with_role):
    """``api_token(role, scopes, **token_kwargs)`` -> (user, raw token) for a new user."""
    from mktintegration.tokens import token_create

    def make(role, scopes, **kwargs):
        user = user_with_role(role)
        _, raw = token_create(user=user, name="test", scopes=scopes, **kwargs)
        return user, raw

    return make


# The vendor emulators: real HTTP servers on loopback (tests/fakes), one per test.


@pytest.fixture
def hubspot():
    from tests.fakes.hubspot import FakeHubSpot

    with FakeHubSpot() as server:
        yield server


@pytest.fixture
def salesforce_app(settings):
    """This installation's OAuth app is the emulators' (Salesforce's token endpoint renews
    sessions with it)."""
    from tests.fakes.salesforce_oauth import CLIENT_ID, CLIENT_SECRET

    settings.MKT_OAUTH_CLIENTS = {
        **settings.MKT_OAUTH_CLIENTS,
        "salesforce": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    }


@pytest.fixture
def salesforce(salesforce_app):
    from tests.fakes.salesforce import FakeSalesforce

    with FakeSalesforce() as server:
        yield server


@pytest.fixture
def pardot(salesforce_app):
    """Account Engagement, signing in through Salesforce's token endpoint (same OAuth app)."""
    from tests.fakes.pardot import FakePardot

    with FakePardot() as server:
        yield server


@pytest.fixture
def constantcontact_app(settings):
    """This installation's OAuth app is the Constant Contact emulator's."""
    from tests.fakes.constantcontact_oauth import CLIENT_ID, CLIENT_SECRET

    settings.MKT_OAUTH_CLIENTS = {
        **settings.MKT_OAUTH_CLIENTS,
        "constantcontact": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    }


@pytest.fixture
def constantcontact(constantcontact_app):
    """The Constant Contact emulator (no spec may be kept: VENDORS.md §2 alone)."""
    from tests.fakes.constantcontact import FakeConstantContact

    with FakeConstantContact() as server:
        yield server


@pytest.fixture
def mailchimp():
    from tests.fakes.mailchimp import FakeMailchimp
    from tests.fakes.openapi import mailchimp_spec

    with FakeMailchimp() as server:
        yield server
    # Where Mailchimp's published spec is downloaded (CI), every request a sync test made
    # and every answer the emulator gave is held to it as well as to VENDORS.md.
    spec = mailchimp_spec()
    if spec is not None:
        # The OAuth endpoints (login.mailchimp.com) are not the Marketing API's: the emulator
        # holds them to VENDORS.md only.
        problems = [
            problem
            for recorded in server.requests
            if not recorded.path.startswith("/oauth2/")
            for problem in spec.request_problems(recorded) + spec.response_problems(recorded)
        ]
        assert not problems, "off Mailchimp's published spec:\n" + "\n".join(problems)


@pytest.fixture
def marketo():
    """The Marketo emulator; every request a test made and every answer it gave is held to
    Marketo's own Swagger (kept in tests/fakes/specs/marketo)."""
    from tests.fakes.marketo import FakeMarketo
    from tests.fakes.openapi import marketo_spec_problems

    with FakeMarketo() as server:
        yield server
    problems = marketo_spec_problems(server.requests)
    assert not problems, "off Marketo's Swagger:\n" + "\n".join(problems)


@pytest.fixture
def api():
    """``api(user)`` or ``api(token=raw)``: a DRF test client authenticated either way."""

    from rest_framework.test import APIClient

    def make(user=None, *, token=None):
        client = APIClient()
        if token:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        elif user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def consent_service(settings):
    """The consent service emulator (tests/fakes/consent.py), with this process configured to
    use it (MKT_CONSENT_URL, MKT_CONSENT_TOKEN). Every request our adapter sent, and every
    answer it got that was not an injected fault, is held to docs/consent-service.openapi.yaml."""
    from tests.fakes.consent import FakeConsentService

    with FakeConsentService() as server:
        settings.MKT_CONSENT_URL = server.url
        settings.MKT_CONSENT_TOKEN = server.token
        yield server
    problems = server.problems()
    assert not problems, "off the consent service contract:\n" + "\n".join(problems)
