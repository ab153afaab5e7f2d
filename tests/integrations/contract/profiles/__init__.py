"""The contract profile of every registered vendor (docs/connectors/README.md: "Adding a
connector", step 4)."""

from __future__ import annotations

from tests.integrations.contract.profiles.base import ObjectProfile, VendorProfile
from tests.integrations.contract.profiles.constantcontact import ConstantContactProfile
from tests.integrations.contract.profiles.hubspot import HubSpotProfile
from tests.integrations.contract.profiles.mailchimp import MailchimpProfile
from tests.integrations.contract.profiles.marketo import MarketoProfile
from tests.integrations.contract.profiles.pardot import PardotProfile
from tests.integrations.contract.profiles.salesforce import SalesforceProfile

PROFILES: dict[str, VendorProfile] = {
    profile.vendor: profile
    for profile in (
        ConstantContactProfile(),
        HubSpotProfile(),
        MailchimpProfile(),
        MarketoProfile(),
        PardotProfile(),
        SalesforceProfile(),
    )
}
HERE = "tests/integrations/contract/profiles"


def missing_profile(vendor: str) -> str:
    """What to do about a registered vendor without a profile (the suite fails with it)."""
    return (
        f"connector {vendor!r} is registered (integrations/connectors/__init__.py) but has no "
        f"contract profile: add {HERE}/{vendor}.py (a VendorProfile, see {HERE}/base.py) and "
        f"list it in PROFILES in {HERE}/__init__.py"
    )


def missing_object(vendor: str, name: str) -> str:
    return (
        f"connector {vendor!r} declares the object {name!r}, which its contract profile does "
        f"not cover: add an ObjectProfile for it to `objects` in {HERE}/{vendor}.py"
    )


def profile_problems(registry: dict, profiles: dict) -> list[str]:
    """Registered vendors or objects without a profile, and profiles of unknown vendors."""
    problems = []
    for vendor, cls in sorted(registry.items()):
        profile = profiles.get(vendor)
        if profile is None:
            problems.append(missing_profile(vendor))
            continue
        problems += [
            missing_object(vendor, name) for name in cls.objects if name not in profile.objects
        ]
    problems += [
        f"{HERE}: a profile for {vendor!r}, which is not a registered connector"
        for vendor in sorted(set(profiles) - set(registry))
    ]
    return problems


__all__ = [
    "PROFILES",
    "ObjectProfile",
    "VendorProfile",
    "missing_object",
    "missing_profile",
    "profile_problems",
]
