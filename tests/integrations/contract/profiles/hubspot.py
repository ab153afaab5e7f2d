"""HubSpot's contract profile: companies (on a custom unique ``external_id``) and contacts (on
``email``, which HubSpot lower-cases), against tests/fakes/hubspot.py."""

from __future__ import annotations

from tests.integrations.conftest import COMPANY_MAPPINGS
from tests.integrations.contract.profiles.base import ChoiceCase, ObjectProfile, VendorProfile


class HubSpotObject(ObjectProfile):
    def stored(self, server, value):
        found = server.find(self.name, self.match[1], value)
        return None if found is None else found["properties"]

    def seed(self, server, value, **fields):
        server.add_object(self.name, {self.match[1]: value, **fields})

    def archived(self, server, value):
        key = value.lower() if self.email_match else value
        return any(
            o["archived"]
            for o in server.objects(self.name)
            if o["properties"].get(self.match[1]) == key
        )

    def creations(self, server, value):
        return server.create_count(self.name, self.match[1], value)

    def reject(self, server, record):
        reason = "this record is locked by a HubSpot workflow"
        server.reject_values(self.name, self.match[1], self.match_value(record), reason)
        return reason

    def require(self, server):
        return None

    def writes(self, server):
        return server.calls(f"/objects/{self.name}/batch/")

    def opted_out(self, server, value):
        return server.unsubscribed_from_all(value)  # Communication Preferences [H11]


def _stages(attribute: str) -> ChoiceCase:
    # HubSpot takes its internal option values: "lead" is one, "mql" is not [H26].
    return ChoiceCase("lifecycle_stage", "lifecyclestage", "lead", "mql", attribute)


class HubSpotProfile(VendorProfile):
    vendor = "hubspot"
    emulator_fixture = "hubspot"
    write_path = "/batch/upsert"
    no_required_fields = "HubSpot's properties API declares no required properties [H25]"
    objects = {
        "companies": HubSpotObject(
            name="companies",
            dataset="clients",
            match=("external_id", "external_id"),
            mappings=tuple(COMPANY_MAPPINGS),
            update=("name", "name"),
            choice=_stages("lifecycle_stage"),
            kinds={"numberofemployees": "number", "lifecyclestage": "choice", "name": "text"},
        ),
        "contacts": HubSpotObject(
            name="contacts",
            dataset="contacts",
            match=("email", "email"),
            mappings=(
                ("first_name", "firstname"),
                ("last_name", "lastname"),
                ("title", "jobtitle"),
                ("company_name", "company"),
            ),
            update=("first_name", "firstname"),
            choice=_stages("company__lifecycle_stage"),
            kinds={"email": "email", "lifecyclestage": "choice", "firstname": "text"},
            sync_fields={"consent_purpose": "email_marketing"},
            email_match=True,
        ),
    }
