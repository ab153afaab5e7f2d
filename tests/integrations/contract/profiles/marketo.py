"""Marketo's contract profile: leads (on ``email``, which Marketo matches whatever its case) and
companies (on ``externalCompanyId``), against tests/fakes/marketo.py, held to Marketo's
Swagger. Marketo answers errors inside HTTP 200 bodies, so the faults are injected as Marketo
sends them: 615 (too many calls at once; 606's 20 s window has its own test in
test_marketo_sync.py), 611 (a system error) and 603 (access denied: the API user lost its
permission, which no new token mends)."""

from __future__ import annotations

from tests.fakes import marketo_errors
from tests.fakes.marketo import CLIENT_ID
from tests.integrations.conftest import make_marketo_connection
from tests.integrations.contract.profiles.base import ObjectProfile, VendorProfile


class MarketoObject(ObjectProfile):
    @property
    def store_kind(self) -> str:
        return "lead" if self.name == "leads" else "company"

    def stored(self, server, value):
        return server.find(self.store_kind, self.match[1], value)

    def seed(self, server, value, **fields):
        server.add_record(self.store_kind, {self.match[1]: value, **fields}, match=self.match[1])

    def archived(self, server, value):
        return False  # Marketo only deletes for good: mirror is not offered [K4][K7]

    def creations(self, server, value):
        return server.create_count(self.store_kind, self.match[1], value)

    def reject(self, server, record):
        reason = "Value for field 'company' is locked by a CRM sync rule"
        server.reject_values(
            self.store_kind, self.match[1], self.match_value(record), "1003", reason
        )
        return reason

    def require(self, server):
        return None

    def writes(self, server):
        return server.calls(f"/rest/v1/{self.name}.json", method="POST")

    def opted_out(self, server, value):
        return bool((self.stored(server, value) or {}).get("unsubscribed"))


def _answer(code: str) -> dict:
    return marketo_errors.failure(code).body


class MarketoProfile(VendorProfile):
    vendor = "marketo"
    emulator_fixture = "marketo"
    write_path = "/rest/v1/"
    no_required_fields = "Marketo's describe calls declare no required fields [K4][K7]"
    no_choice_fields = "Marketo's describe calls give no picklist values [K15]"
    auth_refused = "603"
    objects = {
        "leads": MarketoObject(
            name="leads",
            dataset="contacts",
            match=("email", "email"),
            mappings=(
                ("first_name", "firstName"),
                ("last_name", "lastName"),
                ("title", "title"),
                ("company_name", "company"),
            ),
            update=("first_name", "firstName"),
            choice=None,
            kinds={
                "email": "email",
                "firstName": "text",
                "numberOfEmployees": "number",
                "unsubscribed": "bool",
                "dateOfBirth": "date",
            },
            sync_fields={"consent_purpose": "email_marketing"},
            email_match=True,
        ),
        "companies": MarketoObject(
            name="companies",
            dataset="clients",
            match=("external_id", "externalCompanyId"),
            mappings=(
                ("name", "company"),
                ("domain", "website"),
                ("industry", "industry"),
                ("employees", "numberOfEmployees"),
                ("country", "billingCountry"),
            ),
            update=("name", "company"),
            choice=None,
            kinds={"company": "text", "numberOfEmployees": "number"},
        ),
    }

    def connection(self, server, **kwargs):
        return make_marketo_connection(server, **kwargs)

    def wrong_credentials(self, server):
        return {"client_id": CLIENT_ID, "client_secret": f"not-the-{server.credential}"}

    def answer(self, call) -> str:
        body = call.response_body if isinstance(call.response_body, dict) else {}
        if call.status == 200 and body.get("success") is False:
            code = body["errors"][0]["code"]
            return {"606": "rate_limited", "615": "rate_limited", "611": "transient"}.get(
                code, "auth" if code in ("600", "601", "602", "603") else "refused"
            )
        return super().answer(call)

    def rate_limit_wait(self, retry_after: float) -> float:
        return 5.0  # 615 says nothing of when: the connector waits 5 s for a free slot

    def inject_429(self, server, n, *, retry_after):
        server.fail_next(n, status=200, body=_answer("615"), path_contains=self.write_path)

    def inject_5xx(self, server, n):
        server.fail_next(n, status=200, body=_answer("611"), path_contains=self.write_path)

    def inject_401(self, server, n):
        """603: the API user may not do this (its role, or the IP allow-list) [K6]."""
        server.fail_next(n, status=200, body=_answer("603"), path_contains=self.write_path)

    def expire_token(self, server) -> None:
        server.expire_tokens()

    def token_requests(self, server) -> list:
        return server.token_requests()
