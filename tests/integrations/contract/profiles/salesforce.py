"""Salesforce's contract profile: Accounts (clients, by their CRM id), Contacts and Leads
(contacts, by e-mail address) and a custom object, each upserted by an ``External_Id__c``
external id, against tests/fakes/salesforce.py.
The same suite runs through Bulk API 2.0 in tests/integrations/test_salesforce_bulk_contract.py.

Salesforce connections are OAuth only: the profile's connection starts connected (tokens the
emulator issued), and ``inject_401`` sends two 401s, since the first renews the token and the
request is sent again (test_oauth.py); the one that survives the renewal pauses the sync."""

from __future__ import annotations

from integrations.models import Connection
from tests.fakes.salesforce_oauth import ORG_ID
from tests.fakes.salesforce_store import STAGES, FieldDef
from tests.integrations.contract.profiles.base import (
    ChoiceCase,
    ObjectProfile,
    VendorProfile,
    oauth_connected,
)

CUSTOM_OBJECT = "Client_Profile__c"
SCOPES = ("api", "refresh_token")


def connected(vendor: str, server, *, scopes=SCOPES, **kwargs) -> Connection:
    """A connection by OAuth, connected to the emulator's org."""
    return oauth_connected(vendor, server, scopes=scopes, account_id=ORG_ID, **kwargs)


class SalesforceObject(ObjectProfile):
    @property
    def sobject(self) -> str:
        config = self.sync_fields.get("destination_config") or {}
        return config.get("sobject") or self.name

    def prepare(self, server):
        if self.sobject == CUSTOM_OBJECT:
            server.add_object(
                CUSTOM_OBJECT,
                [
                    FieldDef("Name", length=80, nillable=False),
                    FieldDef("External_Id__c", external_id=True, unique=True, custom=True),
                    FieldDef("Employees__c", "double", custom=True),
                    FieldDef("Country__c", custom=True),
                    FieldDef("Stage__c", "picklist", picklist=STAGES, restricted=True, custom=True),
                ],
            )

    def stored(self, server, value):
        return server.find(self.sobject, self.match[1], value)

    def seed(self, server, value, **fields):
        server.add_record(self.sobject, {self.match[1]: value, **fields})

    def archived(self, server, value):
        return any(
            r["IsDeleted"]
            for r in server.records(self.sobject)
            if str(r.get(self.match[1]) or "").lower() == value.lower()
        )

    def creations(self, server, value):
        return server.create_count(self.sobject, self.match[1], value)

    def reject(self, server, record):
        reason = "Records of this region are locked by a validation rule"
        server.reject_values(self.sobject, self.match[1], self.match_value(record), reason)
        return reason

    def require(self, server):
        # A field the org's admin made required (a dataset field both models carry fills it).
        source = "city" if self.dataset == "clients" else "country"
        server.add_field(self.sobject, FieldDef("Home_Base__c", length=100, custom=True))
        server.require_field(self.sobject, "Home_Base__c")
        return "Home_Base__c", source

    def opted_out(self, server, value):
        return bool((self.stored(server, value) or {}).get("HasOptedOutOfEmail"))

    def writes(self, server):
        return [
            call
            for call in server.requests
            if "/composite/sobjects" in call.path and call.method in ("PATCH", "DELETE")
        ]


def _stage(source: str, target: str, attribute: str) -> ChoiceCase:
    # A restricted picklist of our stages: "lead" is one of its values, "mql" is not.
    return ChoiceCase(source, target, "lead", "mql", attribute)


_PEOPLE = (
    ("first_name", "FirstName"),
    ("last_name", "LastName"),
    ("email", "Email"),
    ("title", "Title"),
)


class SalesforceProfile(VendorProfile):
    vendor = "salesforce"
    emulator_fixture = "salesforce"
    write_path = "/composite/sobjects/"
    objects = {
        "Account": SalesforceObject(
            name="Account",
            dataset="clients",
            match=("external_id", "External_Id__c"),
            mappings=(
                ("name", "Name"),
                ("domain", "Website"),
                ("employees", "NumberOfEmployees"),
                ("country", "BillingCountry"),
                ("city", "BillingCity"),
            ),
            update=("name", "Name"),
            choice=_stage("lifecycle_stage", "Lifecycle_Stage__c", "lifecycle_stage"),
            kinds={"NumberOfEmployees": "number", "Lifecycle_Stage__c": "choice", "Name": "text"},
        ),
        "Contact": SalesforceObject(
            name="Contact",
            dataset="contacts",
            match=("email", "External_Id__c"),
            mappings=_PEOPLE,
            update=("first_name", "FirstName"),
            choice=_stage("lifecycle_stage", "Lifecycle_Stage__c", "company__lifecycle_stage"),
            kinds={"Email": "email", "HasOptedOutOfEmail": "bool", "LastName": "text"},
            sync_fields={"consent_purpose": "email_marketing"},
            email_match=True,
        ),
        "Lead": SalesforceObject(
            name="Lead",
            dataset="contacts",
            match=("email", "External_Id__c"),
            mappings=(*_PEOPLE, ("company_name", "Company")),
            update=("first_name", "FirstName"),
            choice=_stage("lifecycle_stage", "Lifecycle_Stage__c", "company__lifecycle_stage"),
            kinds={"Email": "email", "Status": "text", "Company": "text"},
            sync_fields={"consent_purpose": "email_marketing"},
            email_match=True,
        ),
        "custom": SalesforceObject(
            name="custom",
            dataset="clients",
            match=("external_id", "External_Id__c"),
            mappings=(("name", "Name"), ("employees", "Employees__c"), ("country", "Country__c")),
            update=("name", "Name"),
            choice=_stage("lifecycle_stage", "Stage__c", "lifecycle_stage"),
            kinds={"Employees__c": "number", "Stage__c": "choice", "Name": "text"},
            sync_fields={"destination_config": {"sobject": CUSTOM_OBJECT}},
        ),
    }

    def connection(self, server, **kwargs):
        return connected(self.vendor, server, **kwargs)

    def wrong_credentials(self, server):
        return {"access_token": "00D!not-a-session"}  # and no refresh token to renew it with

    def inject_401(self, server, n):
        server.fail_next(n + 1, status=401, path_contains=self.write_path)
