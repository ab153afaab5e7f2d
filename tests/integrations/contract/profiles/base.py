"""What the contract suite needs to know about a vendor: its *profile*.

A profile says how to reach the vendor's emulator (tests/fakes) and, for each destination
object the connector declares, a dataset that suits it, the match key and mappings, and how to
read, seed and provoke the emulator. The suite (tests/integrations/contract/test_*.py) states
every behaviour once, in the vendor's neutral words; a profile only translates.

To add a vendor: subclass ``VendorProfile`` (and ``ObjectProfile`` for its objects) in
``profiles/<vendor>.py`` and list it in ``profiles/__init__.py``'s ``PROFILES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from integrations.credentials import connection_credentials_save
from integrations.models import Connection
from integrations.oauth.backends import TokenAnswer
from tests.factories import CompanyFactory, ConsentRecordFactory, ContactFactory
from tests.fakes.base import FakeVendor
from tests.fakes.wire import RecordedRequest
from tests.integrations.conftest import make_connection


@dataclass(frozen=True)
class ChoiceCase:
    """A destination field that takes only the options it declares, and a source field for it."""

    source: str  # dataset field
    target: str  # destination field of kind choice (or choices)
    offered: str  # a source value the destination offers
    not_offered: str  # a source value it does not
    attribute: str  # the factory keyword that sets the source value (``lifecycle_stage``...)


def consented_contacts(n: int = 1, **attrs) -> list:
    """Contacts with a granted e-mail marketing consent (sendable to a personal-data object)."""
    contacts = ContactFactory.create_batch(n, **attrs)
    for contact in contacts:
        ConsentRecordFactory(contact=contact, status="granted")
    return contacts


def oauth_connected(
    vendor: str, server: FakeVendor, *, scopes, account_id: str, **kwargs
) -> Connection:
    """A connection by OAuth, connected to the emulator's account (as a finished Connect
    leaves it: tokens the emulator's ``oauth.store`` issued), its API at the emulator."""
    answer = server.oauth.store.issue_grant(list(scopes))  # type: ignore[attr-defined]
    connection = Connection(
        name=kwargs.pop("name", f"{vendor} test"),
        vendor=vendor,
        auth_kind="oauth2",
        base_url=kwargs.pop("base_url", getattr(server, "base_url", server.url)),
        rate_limit_requests=kwargs.pop("rate_limit_requests", 10_000),
        rate_limit_seconds=kwargs.pop("rate_limit_seconds", 1),
        **kwargs,
    )
    connection.full_clean()
    return connection_credentials_save(
        connection=connection,
        values={"access_token": answer["access_token"], "refresh_token": answer["refresh_token"]},
        answer=TokenAnswer(
            access_token=answer["access_token"],
            refresh_token=answer["refresh_token"],
            expires_in=answer.get("expires_in"),
            scopes=tuple(scopes),
            account_id=account_id,
            api_endpoint=server.url,
        ),
    )


# Each dataset a profile may use, and how to make records of it that may be sent.
DATASET_FACTORIES = {
    "clients": lambda n, **attrs: CompanyFactory.create_batch(n, **attrs),
    "contacts": consented_contacts,
}


@dataclass(frozen=True)
class ObjectProfile:
    """One destination object of a vendor, with a dataset whose records suit it."""

    name: str  # the connector's object name
    dataset: str
    match: tuple[str, str]  # (dataset field, destination field)
    mappings: tuple[tuple[str, str], ...]
    # The mapping the update test changes: (source attribute, destination field).
    update: tuple[str, str]
    # None when the vendor declares no choice fields (VendorProfile.no_choice_fields says so).
    choice: ChoiceCase | None
    # Destination fields and the value kind list_fields must declare for each.
    kinds: dict[str, str] = field(default_factory=dict)
    sync_fields: dict[str, Any] = field(default_factory=dict)  # destination_config, consent...
    # The match field holds e-mail addresses, which the vendor compares case-insensitively.
    email_match: bool = False

    # --- source records ----------------------------------------------------------------------
    def make(self, n: int = 1, **attrs) -> list:
        """``n`` new source records that may be sent (with consent where the data needs it)."""
        return DATASET_FACTORIES[self.dataset](n, **attrs)

    def match_value(self, record) -> str:
        return str(getattr(record, self.match[0]))

    def sent_value(self, record) -> str:
        """The value of the ``update`` mapping's source, as the destination should hold it."""
        return str(getattr(record, self.update[0]))

    def change(self, record) -> str:
        """Change the ``update`` mapping's source value (a real edit: updated_at moves)."""
        value = f"{self.sent_value(record)} (changed)"
        setattr(record, self.update[0], value)
        record.updated_at = timezone.now()
        record.save()
        return value

    # --- the emulator: what a vendor profile implements --------------------------------------
    def prepare(self, server: FakeVendor) -> None:
        """Set up at the emulator what this object's mappings need (custom fields...)."""

    def stored(self, server: FakeVendor, value: str) -> dict[str, Any] | None:
        """The live (not archived) destination record matching ``value``: field -> value."""
        raise NotImplementedError

    def seed(self, server: FakeVendor, value: str, **fields) -> None:
        """A record already at the destination that this sync did not create."""
        raise NotImplementedError

    def archived(self, server: FakeVendor, value: str) -> bool:
        """Whether the record matching ``value`` was archived (soft-deleted)."""
        raise NotImplementedError

    def creations(self, server: FakeVendor, value: str) -> int:
        """How many times a record with this match value was created (1: no duplicate)."""
        raise NotImplementedError

    def reject(self, server: FakeVendor, record) -> str:
        """Make the destination refuse this one record; returns the reason it will give."""
        raise NotImplementedError

    def require(self, server: FakeVendor) -> tuple[str, str] | None:
        """Make a destination field required: (that field, a dataset field to fill it), or
        None when the vendor declares no required fields (the suite then says so)."""
        raise NotImplementedError

    def writes(self, server: FakeVendor) -> list[RecordedRequest]:
        """The write requests for this object the emulator received."""
        raise NotImplementedError

    def opted_out(self, server: FakeVendor, value: str) -> bool:
        """Suppressible objects (people): whether the destination has the record matching
        ``value`` opted out of e-mail (what ``Connector.suppress`` does)."""
        raise NotImplementedError


class VendorProfile:
    """One registered vendor: its emulator, a connection to it, its objects, its faults."""

    vendor: str
    # The name of the emulator's fixture in tests/conftest.py (it starts and checks it).
    emulator_fixture: str
    # Part of the path of the vendor's write requests (the faults below hit those).
    write_path: str
    objects: dict[str, ObjectProfile]
    # Why the vendor has no required fields, when ObjectProfile.require gives None.
    no_required_fields: str = ""
    # Why the vendor has no choice fields, when an ObjectProfile's choice is None.
    no_choice_fields: str = ""
    # What the pause reason quotes of the vendor's refusal that inject_401 provokes.
    auth_refused: str = "401"
    # Vendors with no bulk opt-out: the requests ``suppress`` needs per person, and why (0:
    # one request opts out as many people as one request takes).
    suppress_requests_per_person: int = 0
    no_bulk_opt_out: str = ""
    # The connection settings every connection to the emulator needs (Pardot's business unit).
    config: dict[str, Any] = {}

    def connection(self, server: FakeVendor, **kwargs):
        return make_connection(self.vendor, server, **kwargs)

    def wrong_credentials(self, server: FakeVendor) -> dict[str, str]:
        """Credentials the emulator refuses (a revoked key, a typo)."""
        from integrations.connectors import connector_class

        cls = connector_class(self.vendor)
        return {cls.secret_fields[cls.auth_kinds[0]][0]: f"not-the-{server.credential}"}

    def answer(self, call: RecordedRequest) -> str:
        """What a recorded answer said, in the suite's words: "ok", "rate_limited",
        "transient", "auth" or "refused" (vendors with errors in 200 bodies read the body)."""
        status = call.status or 0
        if status == 429:
            return "rate_limited"
        if status >= 500:
            return "transient"
        if status == 401:
            return "auth"
        return "ok" if status < 300 else "refused"

    def rate_limit_wait(self, retry_after: float) -> float:
        """How long the connector waits after ``inject_429``: the vendor's Retry-After."""
        return retry_after

    # Connections whose auth kind buys tokens with the connection's client credentials.
    def expire_token(self, server: FakeVendor) -> None:
        """The vendor ended the access tokens it gave (we still think ours good)."""
        raise NotImplementedError

    def token_requests(self, server: FakeVendor) -> list[RecordedRequest]:
        """The requests to the vendor's token endpoint."""
        raise NotImplementedError

    # Faults, as the vendor sends them, on the next ``n`` write requests.
    def inject_429(self, server: FakeVendor, n: int, *, retry_after: int) -> None:
        """A 429 with ``Retry-After``. Mailchimp documents none [M14], yet a connector must honour
        one when it comes; without it the engine waits its own 10 s (not in the contract)."""
        server.fail_next(
            n, status=429, headers={"Retry-After": str(retry_after)}, path_contains=self.write_path
        )

    def inject_5xx(self, server: FakeVendor, n: int) -> None:
        server.fail_next(n, status=503, path_contains=self.write_path)

    def inject_401(self, server: FakeVendor, n: int) -> None:
        """The vendor refuses the credentials on the next ``n`` writes, in a way no token
        renewal mends (a pasted key revoked; Marketo: the API user's access denied)."""
        server.fail_next(n, status=401, path_contains=self.write_path)
