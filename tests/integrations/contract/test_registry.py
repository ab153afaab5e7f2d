"""No connector is registered without passing the contract: each needs a profile."""

from __future__ import annotations

import dataclasses

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


def declaration_problems(cls) -> list[str]:
    """What a connector class leaves out of the declarations the base asks for."""
    problems = []
    for name in ("slug", "label", "auth_kinds", "secret_fields", "objects", "default_rate"):
        if not getattr(cls, name, None):
            problems.append(f"declares no {name}")
    if not getattr(cls, "allowed_hosts", None):
        problems.append("declares no allowed_hosts (the vendor's API hosts)")
    for kind in getattr(cls, "auth_kinds", ()):
        if not cls.secret_fields.get(kind) and kind not in cls.token_flows:
            problems.append(f"auth kind {kind!r} names no secret fields and no token flow")
    for name, obj in (getattr(cls, "objects", None) or {}).items():
        if obj.name != name or obj.max_batch < 1:
            problems.append(f"object {name!r}: its name and a max_batch of at least 1")
    config = cls.config_class
    no_default = [
        f.name
        for f in dataclasses.fields(config)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if no_default:
        problems.append(f"its config_class needs defaults for every setting: {no_default}")
    try:
        config.from_dict({})
    except (TypeError, ValueError) as exc:
        # A setting every connection must give (Pardot's business unit) refuses its empty
        # default, naming itself; any other refusal of the defaults is a broken declaration.
        if not config.required or not all(name in str(exc) for name in config.required):
            problems.append(f"its config_class refuses its own defaults: {exc}")
    return problems


@pytest.mark.parametrize("vendor", sorted(REGISTRY))
def test_every_connector_declares_what_the_base_asks_for(vendor):
    cls = REGISTRY[vendor]

    assert cls.slug == vendor
    assert declaration_problems(cls) == []


def test_a_connector_missing_a_declaration_is_told_which():
    class Half(Connector):
        slug = "half"
        label = "Half"
        auth_kinds = ("api_key",)
        secret_fields = {}
        objects = {"leads": DestinationObject("leads", "Leads", 0)}

    assert declaration_problems(Half) == [
        "declares no secret_fields",
        "declares no default_rate",
        "declares no allowed_hosts (the vendor's API hosts)",
        "auth kind 'api_key' names no secret fields and no token flow",
        "object 'leads': its name and a max_batch of at least 1",
    ]
