"""Account Engagement's (Pardot's) contract profile: prospects (contacts, by e-mail address,
one per upsertLatestByEmail), against tests/fakes/pardot.py.

Connections are Salesforce OAuth (``pardot_api``) and name the emulator's business unit; as for
Salesforce, the profile's connection starts connected and ``inject_401`` sends two 401s (the
first renews the token and the request is sent again)."""

from __future__ import annotations

from tests.fakes.pardot import BUSINESS_UNIT_ID, STAGES
from tests.integrations.contract.profiles.base import ChoiceCase, ObjectProfile, VendorProfile
from tests.integrations.contract.profiles.salesforce import connected

SCOPES = ("pardot_api", "refresh_token")
CONFIG = {"business_unit_id": BUSINESS_UNIT_ID}
PROSPECT_MAPPINGS = (
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("title", "jobTitle"),
    ("company_name", "company"),
    ("country", "country"),
)


class ProspectProfile(ObjectProfile):
    def prepare(self, server):
        server.add_custom_field("Lifecycle_Stage", "Dropdown", values=STAGES)

    def stored(self, server, value):
        return server.find(value)

    def seed(self, server, value, **fields):
        server.add_prospect(value, **fields)

    def archived(self, server, value):
        return server.find(value) is None and server.find(value, deleted=True) is not None

    def creations(self, server, value):
        return server.create_count(value)

    def reject(self, server, record):
        reason = "Prospects of this domain are blocked by a completion action"
        server.reject_email(self.match_value(record), reason)
        return reason

    def require(self, server):
        server.add_custom_field("Home_Base", required=True)
        return "Home_Base__c", "country"

    def opted_out(self, server, value):
        return bool((self.stored(server, value) or {}).get("optedOut"))

    def writes(self, server):
        return [
            call
            for call in server.requests
            if call.path.endswith("/do/upsertLatestByEmail")
            or (call.method == "DELETE" and "/prospects/" in call.path)
        ]


class PardotProfile(VendorProfile):
    vendor = "pardot"
    emulator_fixture = "pardot"
    write_path = "/prospects/"
    config = CONFIG
    objects = {
        "prospects": ProspectProfile(
            name="prospects",
            dataset="contacts",
            match=("email", "email"),
            mappings=PROSPECT_MAPPINGS,
            update=("first_name", "firstName"),
            choice=ChoiceCase(
                "lifecycle_stage", "Lifecycle_Stage__c", "lead", "mql", "company__lifecycle_stage"
            ),
            kinds={
                "email": "email",
                "optedOut": "bool",
                "Lifecycle_Stage__c": "choice",
                "firstName": "text",
            },
            sync_fields={"consent_purpose": "email_marketing"},
            email_match=True,
        ),
    }

    def connection(self, server, **kwargs):
        return connected(self.vendor, server, scopes=SCOPES, config=dict(CONFIG), **kwargs)

    def wrong_credentials(self, server):
        return {"access_token": "00D!not-a-session"}  # and no refresh token to renew it with

    def inject_401(self, server, n):
        server.fail_next(n + 1, status=401, path_contains=self.write_path)
