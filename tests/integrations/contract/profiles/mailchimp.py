"""Mailchimp's contract profile: members of one audience, matched on e-mail, against
tests/fakes/mailchimp.py (held to Mailchimp's published spec where it is downloaded)."""

from __future__ import annotations

from tests.fakes.mailchimp import DEFAULT_LIST
from tests.integrations.contract.profiles.base import ChoiceCase, ObjectProfile, VendorProfile


class MembersObject(ObjectProfile):
    def prepare(self, server):
        # A dropdown merge field, so that choices are part of the contract here too [M20].
        server.add_merge_field(DEFAULT_LIST, "STAGE", "dropdown", choices=("lead", "customer"))

    def stored(self, server, value):
        member = server.member(DEFAULT_LIST, value)
        if member is None or member["status"] == "archived":
            return None
        return {
            "email_address": member["email_address"],
            "status": member["status"],
            **member["merge_fields"],
        }

    def seed(self, server, value, **fields):
        server.add_member(DEFAULT_LIST, value, merge_fields=fields)

    def archived(self, server, value):
        member = server.member(DEFAULT_LIST, value)
        return member is not None and member["status"] == "archived"

    def creations(self, server, value):
        return server.create_count(DEFAULT_LIST, value)

    def reject(self, server, record):
        # Someone deleted the address permanently in Mailchimp: it cannot be re-imported [M7].
        server.forget_member(DEFAULT_LIST, self.match_value(record))
        return "was permanently deleted and cannot be re-imported"

    def require(self, server):
        server.add_merge_field(DEFAULT_LIST, "REGION", "text", required=True)
        return "REGION", "region"

    def opted_out(self, server, value):
        member = server.member(DEFAULT_LIST, value)
        return member is not None and member["status"] == "unsubscribed"

    def writes(self, server):
        # Batch subscribe (POST /lists/{id}), and PUT or DELETE of one member.
        return [
            call
            for call in server.requests
            if call.method in ("PUT", "DELETE")
            or (call.method == "POST" and call.path.endswith(f"/lists/{DEFAULT_LIST}"))
        ]


class MailchimpProfile(VendorProfile):
    vendor = "mailchimp"
    emulator_fixture = "mailchimp"
    write_path = f"/lists/{DEFAULT_LIST}"
    objects = {
        "members": MembersObject(
            name="members",
            dataset="contacts",
            match=("email", "email_address"),
            mappings=(("first_name", "FNAME"), ("last_name", "LNAME"), ("company_name", "COMPANY")),
            update=("first_name", "FNAME"),
            choice=ChoiceCase(
                "lifecycle_stage", "STAGE", "lead", "mql", "company__lifecycle_stage"
            ),
            kinds={"email_address": "email", "STAGE": "choice", "FNAME": "text"},
            sync_fields={
                "destination_config": {"list_id": DEFAULT_LIST},
                "consent_purpose": "email_marketing",
            },
            email_match=True,
        ),
    }
