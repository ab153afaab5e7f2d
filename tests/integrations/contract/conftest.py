"""The contract suite runs once for every (registered vendor, destination object) pair.

The pairs come from the connector registry, not from the profiles: a registered vendor without
a profile fails every contract test (and test_registry.py names the file to add).
"""

from __future__ import annotations

import pytest

from integrations.connectors import REGISTRY
from tests.integrations.contract.case import Contract
from tests.integrations.contract.profiles import PROFILES, missing_object, missing_profile


def rotating(vendor: str) -> list:
    """The marks of a vendor's cases. A vendor whose refresh tokens rotate renews them only
    outside a transaction (never inside one that could roll the new token back, ADR 0007), so
    its tests run without the transaction pytest-django wraps a test in."""
    flows = REGISTRY[vendor].token_flows.values()
    if any(flow.rotates_refresh_tokens for flow in flows):
        return [pytest.mark.django_db(transaction=True)]
    return []


CASES = [
    pytest.param((vendor, name), id=f"{vendor}-{name}", marks=rotating(vendor))
    for vendor, cls in sorted(REGISTRY.items())
    for name in cls.objects
]


@pytest.fixture(params=CASES)
def contract(request, db):
    vendor, name = request.param
    profile = PROFILES.get(vendor)
    if profile is None:
        pytest.fail(missing_profile(vendor))
    obj = profile.objects.get(name)
    if obj is None:
        pytest.fail(missing_object(vendor, name))
    server = request.getfixturevalue(profile.emulator_fixture)
    obj.prepare(server)
    yield Contract(profile, obj, server, profile.connection(server))
    assert server.violations == [], f"{vendor}: requests off the vendor's documented shapes"
