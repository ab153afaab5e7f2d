"""The contract for connections by OAuth, for every registered vendor that offers it: a 401
renews the token once (single-flight) and the run delivers everything; a vendor whose tokens
cannot be renewed pauses the sync with a Reconnect link, and nothing is lost. Connections by
client credentials (Marketo): a token the vendor refuses is bought again once, and the run
delivers."""

from __future__ import annotations

import pytest

from integrations.connectors import REGISTRY
from integrations.models import LedgerEntry, RunStatus
from integrations.oauth.flows import CLIENT_CREDENTIALS
from mktintegration import roles
from tests.integrations.conftest import start_and_drive
from tests.integrations.contract.case import Contract
from tests.integrations.contract.conftest import rotating
from tests.integrations.contract.profiles import PROFILES
from tests.integrations.oauth.conftest import connect, oauth_apps, oauth_connection, token_calls

__all__ = ["oauth_apps"]  # the emulators' OAuth apps, configured for every test here

OAUTH_CASES = [
    pytest.param((vendor, name), id=f"{vendor}-{name}", marks=rotating(vendor))
    for vendor, cls in sorted(REGISTRY.items())
    if "oauth2" in cls.token_flows
    for name in cls.objects
]


@pytest.fixture(params=OAUTH_CASES)
def oauth_contract(request, db, client_for):
    vendor, name = request.param
    profile = PROFILES[vendor]
    obj = profile.objects[name]
    server = request.getfixturevalue(profile.emulator_fixture)
    obj.prepare(server)
    connection = oauth_connection(vendor, server, config=profile.config)
    connect(client_for(roles.INTEGRATION_ADMIN, username="ira"), connection)
    connection.refresh_from_db()
    yield Contract(profile, obj, server, connection)
    assert server.violations == [], f"{vendor}: requests off the vendor's documented shapes"


@pytest.mark.contract
def test_a_401_on_an_oauth_connection_renews_once_or_asks_to_reconnect(oauth_contract):
    contract = oauth_contract
    flow = REGISTRY[contract.profile.vendor].token_flows["oauth2"]
    records = contract.make(3)
    sync = contract.sync()
    store = contract.server.oauth.store
    if flow.renewable:
        store.expire_access_tokens()  # the vendor ended the token early; we think it good
    else:
        store.revoke_everything()  # nothing to renew with: the account removed the app
    refreshes_before = len(token_calls(contract.server, "refresh_token"))

    run = start_and_drive(sync)

    sync.refresh_from_db()
    refreshes = len(token_calls(contract.server, "refresh_token")) - refreshes_before
    if flow.renewable:
        assert (run.status, run.created, run.failed) == (RunStatus.SUCCEEDED, 3, 0), run.counts()
        assert refreshes == 1
        assert [contract.creations(r) for r in records] == [1, 1, 1]
    else:
        assert run.status == RunStatus.PAUSED and refreshes == 0
        assert sync.paused and "Reconnect" in sync.pause_reason
        assert not LedgerEntry.objects.filter(sync=sync, status="synced").exists()


CLIENT_CREDENTIALS_CASES = [
    pytest.param((vendor, name), id=f"{vendor}-{name}")
    for vendor, cls in sorted(REGISTRY.items())
    for kind, flow in cls.token_flows.items()
    if flow.kind == CLIENT_CREDENTIALS and kind in cls.auth_kinds
    for name in cls.objects
]


@pytest.fixture(params=CLIENT_CREDENTIALS_CASES)
def machine_contract(request, db):
    vendor, name = request.param
    profile = PROFILES[vendor]
    obj = profile.objects[name]
    server = request.getfixturevalue(profile.emulator_fixture)
    obj.prepare(server)
    yield Contract(profile, obj, server, profile.connection(server))
    assert server.violations == [], f"{vendor}: requests off the vendor's documented shapes"


@pytest.mark.contract
def test_a_refused_token_of_client_credentials_is_bought_again_once_and_the_run_delivers(
    machine_contract,
):
    contract = machine_contract
    records = contract.make(3)
    sync = contract.sync()
    start_and_drive(sync, full=True)  # a token bought and used
    contract.profile.expire_token(contract.server)  # the vendor ended it early
    bought = len(contract.profile.token_requests(contract.server))
    changed = [contract.obj.change(r) for r in records]

    run = start_and_drive(sync)

    assert (run.status, run.updated, run.failed) == (RunStatus.SUCCEEDED, 3, 0), run.counts()
    assert len(contract.profile.token_requests(contract.server)) == bought + 1
    assert [contract.stored(r)[contract.field] for r in records] == changed
    assert [contract.creations(r) for r in records] == [1, 1, 1]
