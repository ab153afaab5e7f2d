"""Constant Contact's contract profile: contacts (by e-mail address) into a list, through the
import activity, against tests/fakes/constantcontact.py.

Connections are OAuth only: the profile's connection starts connected (tokens the emulator
issued), and ``inject_401`` sends two 401s, since the first renews the token and the request is
sent again (test_oauth.py); the one that survives the renewal pauses the sync."""

from __future__ import annotations

from tests.fakes.constantcontact import ACCOUNT_ID, NEWSLETTER_LIST_ID
from tests.integrations.contract.profiles.base import (
    ChoiceCase,
    ObjectProfile,
    VendorProfile,
    oauth_connected,
)

SCOPES = ("account_read", "contact_data", "offline_access")
STAGES = ("lead", "opportunity", "customer", "evangelist", "subscriber")
IMPORT_PATH = "/activities/contacts_json_import"


class ContactsObject(ObjectProfile):
    def prepare(self, server):
        server.add_custom_field("stage", "single_select", choices=STAGES)

    def stored(self, server, value):
        return server.contact(value)

    def seed(self, server, value, **fields):
        server.add_contact(value, **fields)

    def archived(self, server, value):
        record = server.contact_record(value)
        return bool(record and record.get("deleted_at"))

    def creations(self, server, value):
        return server.create_count(value)

    def reject(self, server, record):
        reason = "The e-mail address domain does not accept mail"
        server.reject_email(self.match_value(record), reason)
        return reason

    def require(self, server):
        return None

    def writes(self, server):
        return [call for call in server.requests if IMPORT_PATH in call.path]

    def opted_out(self, server, value):
        return (self.stored(server, value) or {}).get("permission_to_send") == "unsubscribed"


class ConstantContactProfile(VendorProfile):
    vendor = "constantcontact"
    emulator_fixture = "constantcontact"
    write_path = IMPORT_PATH
    no_required_fields = (
        "Constant Contact requires only the e-mail address, which is the match field [C12]"
    )
    suppress_requests_per_person = 2
    no_bulk_opt_out = (
        "Constant Contact has no bulk opt-out: each contact is read and written back "
        "unsubscribed, since a PUT clears the core properties it is not sent [C19]"
    )
    objects = {
        "contacts": ContactsObject(
            name="contacts",
            dataset="contacts",
            match=("email", "email"),
            mappings=(
                ("first_name", "first_name"),
                ("last_name", "last_name"),
                ("title", "job_title"),
            ),
            update=("first_name", "first_name"),
            choice=ChoiceCase(
                "lifecycle_stage", "cf:stage", "lead", "mql", "company__lifecycle_stage"
            ),
            kinds={"email": "email", "cf:stage": "choice", "last_name": "text"},
            sync_fields={
                "consent_purpose": "email_marketing",
                "destination_config": {"list_ids": [NEWSLETTER_LIST_ID]},
            },
            email_match=True,
        )
    }

    def connection(self, server, **kwargs):
        # At the vendor's own pace (4 a second), which the emulator enforces.
        kwargs.setdefault("rate_limit_requests", 4)
        kwargs.setdefault("rate_limit_seconds", 1)
        return oauth_connected(self.vendor, server, scopes=SCOPES, account_id=ACCOUNT_ID, **kwargs)

    def wrong_credentials(self, server):
        return {"access_token": "not-a-token"}  # and no refresh token to renew it with

    def inject_401(self, server, n):
        server.fail_next(n + 1, status=401, path_contains=self.write_path)
