"""Failed password sign-ins slow the account down progressively (OWASP ASVS V2.2.1), without
letting a stranger lock a named admin out or one address lock out everyone behind it.

The real login view through the test client; time moves by patching ``time.time``."""

import logging
import re

import pytest

from mktintegration import roles
from mktintegration.login_throttle import login_attempt
from tests.conftest import PASSWORD

LOGIN = "/admin/login/?next=/admin/"
HOME = "203.0.113.5"  # where the account's owner signs in
STRANGER = "198.51.100.9"


@pytest.fixture(autouse=True)
def _policy(settings):
    settings.MKT_LOGIN_FREE_FAILURES = 3
    settings.MKT_LOGIN_ADDRESS_FREE_FAILURES = 20
    settings.MKT_LOGIN_MAX_DELAY_MINUTES = 15
    settings.MKT_LOGIN_FAILURE_WINDOW_MINUTES = 60
    settings.MKT_LOGIN_KNOWN_ADDRESS_DAYS = 30


@pytest.fixture
def audrey(user_with_role):
    return user_with_role(roles.AUDITOR, username="audrey")


def _login(client, username, password, address=HOME):
    client.logout()
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def _signed_in(response) -> bool:
    return response.status_code == 302 and response["Location"] == "/admin/"


def _wait(response) -> str | None:
    """The wait a refusal names ("2 seconds", "4 minutes"), or None if it was not refused."""
    match = re.search(r"Too many failed sign-in attempts\. Try again in ([^.]+)\.", _text(response))
    return match.group(1) if match else None


def _wrong_password(response) -> bool:
    return response.status_code == 200 and "Please enter the correct username" in _text(response)


def _text(response) -> str:
    return response.content.decode()


def _seconds(wait: str) -> int:
    number, unit = wait.split()
    return int(number) * (60 if unit == "minutes" else 1)


def _fail(client, clock, username, times, address=HOME):
    """``times`` wrong passwords, each as soon as any wait is over."""
    for _ in range(times):
        response = _login(client, username, "wrong password", address)
        while wait := _wait(response):
            clock.advance(_seconds(wait))
            response = _login(client, username, "wrong password", address)
        assert _wrong_password(response)


@pytest.mark.django_db
def test_each_failure_beyond_the_free_ones_doubles_the_wait_up_to_the_cap(client, audrey, clock):
    _fail(client, clock, "audrey", 3)  # the free allowance: no wait
    waits = []
    for seconds in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900):
        assert _wrong_password(_login(client, "audrey", "wrong password"))
        response = _login(client, "audrey", PASSWORD)  # at once: refused, password unchecked
        waits.append(_wait(response))
        assert "_auth_user_id" not in client.session
        clock.advance(seconds - 1)
        assert _wait(_login(client, "audrey", PASSWORD)) is not None  # a second early
        clock.advance(1)

    assert waits == [
        *("1 second", "2 seconds", "4 seconds", "8 seconds", "16 seconds", "32 seconds"),
        *("64 seconds", "3 minutes", "5 minutes", "9 minutes", "15 minutes", "15 minutes"),
    ]
    assert _signed_in(_login(client, "audrey", PASSWORD))  # the wait is over: signed in


@pytest.mark.django_db
def test_a_stranger_guessing_does_not_lock_the_owner_out_at_a_known_address(client, audrey, clock):
    assert _signed_in(_login(client, "audrey", PASSWORD, address=HOME))  # HOME is known now
    _fail(client, clock, "AUDREY", 8, address=STRANGER)  # any spelling of the name counts

    assert _wait(_login(client, "audrey", PASSWORD, address=STRANGER)) == "16 seconds"
    # Guessing from a fresh address is slowed just the same: the account counts the failures.
    assert _wait(_login(client, "audrey", PASSWORD, address="192.0.2.77")) == "16 seconds"
    # The owner, at an address they signed in from, is not slowed.
    assert _signed_in(_login(client, "audrey", PASSWORD, address=HOME))


@pytest.mark.django_db
def test_failures_from_the_owners_own_address_slow_that_address_too(client, audrey, clock):
    assert _signed_in(_login(client, "audrey", PASSWORD, address=HOME))
    _fail(client, clock, "audrey", 5, address=HOME)

    assert _wait(_login(client, "audrey", PASSWORD, address=HOME)) == "2 seconds"


@pytest.mark.django_db
def test_the_refusal_reads_the_same_for_a_name_that_does_not_exist(client, audrey, clock):
    refusals = []
    for name, guesser in (("audrey", STRANGER), ("nobody-here", "198.51.100.10")):
        _fail(client, clock, name, 5, address=guesser)
        response = _login(client, name, PASSWORD, address="192.0.2.1")
        refusals.append((response.status_code, _wait(response)))

    assert refusals == [(200, "2 seconds"), (200, "2 seconds")]


@pytest.mark.django_db
def test_one_colleague_failing_behind_the_shared_proxy_does_not_block_the_others(
    client, user_with_role, clock
):
    proxy = "10.20.30.40"
    user_with_role(roles.AUDITOR, username="bea")
    for name in ("carl", "dora", "emil", "finn", "gus"):  # typos under five names
        _fail(client, clock, name, 2, address=proxy)

    # bea never signed in from the proxy before, and still gets in from it.
    assert _signed_in(_login(client, "bea", PASSWORD, address=proxy))


@pytest.mark.django_db
def test_many_names_failing_from_one_address_slow_that_address_for_unknown_names(
    client, user_with_role, clock
):
    spray = "192.0.2.66"
    regular = user_with_role(roles.AUDITOR, username="rita")
    user_with_role(roles.AUDITOR, username="newcomer")
    assert _signed_in(_login(client, regular.username, PASSWORD, address=spray))
    for n in range(21):  # one guess each under 21 names: past the address allowance of 20
        _fail(client, clock, f"name-{n}", 1, address=spray)

    assert _wait(_login(client, "newcomer", PASSWORD, address=spray)) == "1 second"
    assert _signed_in(_login(client, "newcomer", PASSWORD, address="192.0.2.67"))
    assert _signed_in(_login(client, "rita", PASSWORD, address=spray))  # known there


@pytest.mark.django_db
def test_a_successful_sign_in_clears_the_failures_of_that_address(client, audrey, clock):
    _fail(client, clock, "audrey", 3)
    assert _signed_in(_login(client, "audrey", PASSWORD))

    _fail(client, clock, "audrey", 3)

    assert _signed_in(_login(client, "audrey", PASSWORD))


@pytest.mark.django_db
def test_failures_are_forgotten_after_the_window_without_one(client, audrey, clock):
    _fail(client, clock, "audrey", 6)
    assert _wait(_login(client, "audrey", PASSWORD, address=STRANGER)) == "4 seconds"

    clock.advance(60 * 60 + 1)

    _fail(client, clock, "audrey", 3, address=STRANGER)  # a fresh free allowance
    assert _signed_in(_login(client, "audrey", PASSWORD, address=STRANGER))


@pytest.mark.django_db
def test_a_second_attempt_while_one_is_being_checked_is_refused(client, audrey, clock):
    # Guesses sent in parallel must not get past a delay together: one check at a time.
    with login_attempt(username="audrey", address=STRANGER):
        response = _login(client, "audrey", PASSWORD, address="192.0.2.8")

    assert _wait(response) == "1 second"
    assert _signed_in(_login(client, "audrey", PASSWORD, address="192.0.2.8"))  # then free


@pytest.mark.django_db
def test_every_failure_and_refusal_is_logged(client, audrey, clock, caplog):
    caplog.set_level(logging.WARNING, logger="mktintegration.login")

    _fail(client, clock, "audrey", 4, address=STRANGER)
    _login(client, "audrey", PASSWORD, address=STRANGER)

    records = [r.getMessage() for r in caplog.records if r.name == "mktintegration.login"]
    assert records[:4] == [
        f"sign-in failed: user name 'audrey' from {STRANGER} ({n} failures for this name, "
        f"{n} from this address)"
        for n in range(1, 5)
    ]
    assert records[4] == (
        f"sign-in refused without checking the password: user name 'audrey' from {STRANGER}, "
        "retry in 1 s (this address has been failing for this name)"
    )
    assert PASSWORD not in " ".join(records) and "wrong password" not in " ".join(records)


@pytest.mark.django_db
def test_the_login_page_opens_for_an_anonymous_visitor(client):
    # The page lists apps for the visitor; object-granted admins must not ask guardian about
    # an anonymous user (there is no anonymous user row): that was a 500.
    page = client.get(LOGIN)

    assert page.status_code == 200 and 'name="password"' in page.content.decode()
