"""No connector is registered without passing the contract: each needs a profile."""

from __future__ import annotations

import pytest

from integrations.connectors import REGISTRY
from integrations.connectors.base import Connector, DestinationObject
from tests.integrations.contract.profiles import PROFILES, profile_problems

pytestmark = pytest.mark.contract


def test_every_registered_connector_and_object_has_a_contract_profile():
    assert profile_problems(REGISTRY, PROFILES) == []


def test_a_connector_registered_without_a_profile_is_named_with_the_file_to_add():
    class Acme(Connector):
        slug = "acme"
        objects = {"leads": DestinationObject("leads", "Leads", 100)}

    registry = {**REGISTRY, "acme": Acme}

    [problem] = profile_problems(registry, PROFILES)

    assert "'acme' is registered" in problem
    assert "tests/integrations/contract/profiles/acme.py" in problem
    assert "PROFILES in tests/integrations/contract/profiles/__init__.py" in problem


def test_an_object_the_profile_does_not_cover_is_named():
    hubspot = REGISTRY["hubspot"]

    class MoreHubSpot(hubspot):
        objects = {**hubspot.objects, "deals": DestinationObject("deals", "Deals", 100)}

    [problem] = profile_problems({**REGISTRY, "hubspot": MoreHubSpot}, PROFILES)

    assert "'hubspot' declares the object 'deals'" in problem
    assert "tests/integrations/contract/profiles/hubspot.py" in problem
