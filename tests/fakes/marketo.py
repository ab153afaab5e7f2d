"""``FakeMarketo``: an HTTP emulator of one Marketo Engage instance's REST API.

Citations in brackets point to the Marketo source list in /work/shared/VENDORS.md (section 5);
paths and shapes follow Marketo's own Swagger (../shared/vendor-specs/marketo, kept in
tests/fakes/specs/marketo/), against which the ``marketo`` fixture holds every request and
answer. Behaviour neither settles is marked "emulator choice".

- Identity: ``GET``/``POST /identity/oauth/token`` with ``grant_type``, ``client_id`` and
  ``client_secret`` as query parameters (the Swagger's); a token lives 3,600 s and asking again
  before it expires gives the same token with its remaining life [K2].
- Every REST call sends ``Authorization: Bearer`` (the ``access_token`` query parameter is
  retired [K2]) and is answered HTTP 200 with ``success`` and ``errors[].code``: 601 invalid
  and 602 expired token, 606 over 100 calls in 20 s, 615 over 10 concurrent calls, 607 the
  daily quota spent [K6][K9]; 413 over 1 MB of body and 414 over 8 KB of URI are HTTP [K6].
- Sync Leads ``POST /rest/v1/leads.json`` and Sync Companies ``POST /rest/v1/companies.json``:
  at most 300 records [K4][K7], ``action`` and ``lookupField`` / ``dedupeBy``; per-record
  results in input order (companies with ``seq``), ``skipped`` with ``reasons`` [K6].
- Describe: ``GET /rest/v1/leads/describe2.json`` and ``/rest/v1/companies/describe.json``;
  look-ups ``GET /rest/v1/leads.json`` and ``/rest/v1/companies.json`` by ``filterType``
  (a searchable field) and comma-separated ``filterValues`` (at most 300) [K4][K7].
- Daily usage ``GET /rest/v1/stats/usage.json`` [K11].
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from tests.fakes import marketo_errors as errors
from tests.fakes.base import FakeVendor
from tests.fakes.limits import RateStatus
from tests.fakes.marketo_store import FieldDef, ObjectStore, Skip, company_fields, lead_fields
from tests.fakes.oauth_store import OAuthError, OAuthStore
from tests.fakes.routing import Auth
from tests.fakes.shapes import check_list, check_object
from tests.fakes.wire import Request, Response

CLIENT_ID = "mkto-client-id"
CLIENT_SECRET = "mkto-client-secret"
MUNCHKIN_ID = "284-RPR-133"
MAX_RECORDS = 300  # [K4][K7]
MAX_BODY = 1024 * 1024  # 1 MB [K6]
MAX_URI = 8 * 1024  # 8 KB [K6]
TOKEN_SECONDS = 3600  # [K2]
LEAD_ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate", "createDuplicate"})
COMPANY_ACTIONS = frozenset({"createOnly", "updateOnly", "createOrUpdate"})
LOOKUP_QUERY = frozenset({"filterType", "filterValues", "fields", "batchSize", "nextPageToken"})
_IDENTITY = "/identity/oauth/token"


class FakeMarketo(FakeVendor):
    """One Marketo instance: identity, leads, companies, describe, usage."""

    name = "marketo"
    nominal_rate_limit = (100, 20.0)  # 100 calls per 20 s per instance [K9]
    enforce_nominal_rate_limit = True
    default_max_concurrency = 10  # [K9]
    auth_hint = "expected 'Authorization: Bearer <access token>' [K2]"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
    ):
        self.client_id, self.client_secret = client_id, client_secret
        super().__init__(host=host, port=port)

    @property
    def credential(self) -> str:
        return self.client_secret

    # -- test helpers ---------------------------------------------------------------------

    def store(self, kind: str) -> ObjectStore:
        return self._stores[kind]

    def add_record(self, kind: str, values: dict[str, Any], *, match: str) -> dict[str, Any]:
        """Seed a lead or company that someone else created."""
        with self._lock:
            return dict(self._stores[kind].add(values, match=match))

    def find(self, kind: str, name: str, value: Any) -> dict[str, Any] | None:
        with self._lock:
            found = self._stores[kind].find(name, value)
            return dict(found[0]) if found else None

    def create_count(self, kind: str, name: str, value: Any) -> int:
        with self._lock:
            store = self._stores[kind]
            return store.creations[(name, store.norm(name, value))]

    def reject_values(self, kind: str, name: str, value: Any, code: str, message: str) -> None:
        """Marketo skips records whose ``name`` is ``value`` with this reason."""
        with self._lock:
            self._stores[kind].refused[(name, str(value))] = (code, message)

    def add_lead_field(self, name: str, data_type: str = "string", *, searchable=False) -> None:
        """A custom lead field (``searchable``: a dedupe field a sync may match on) [K4]."""
        with self._lock:
            store = self._stores["lead"]
            store.fields[name] = FieldDef(name, name, data_type)
            if searchable:
                store.searchable.append(name)

    def expire_tokens(self) -> None:
        """Every token issued so far has expired (602 from now on)."""
        with self._lock:
            self.tokens.expire_access_tokens()

    def refuse_client_next(self, n: int) -> None:
        """The identity endpoint refuses the next ``n`` token requests (a rotated secret)."""
        with self._lock:
            self._refuse_client += n

    def set_crm_enabled(self, enabled: bool = True) -> None:
        """Companies become read-only, as with Salesforce or Dynamics sync on (1018) [K7]."""
        with self._lock:
            self._crm_enabled = enabled

    def token_requests(self) -> list:
        return [c for c in self.calls(_IDENTITY) if c.path == _IDENTITY]

    # -- FakeVendor hooks -----------------------------------------------------------------

    def reset_store(self) -> None:
        self.tokens = OAuthStore(
            client_id=self.client_id,
            client_secret=self.client_secret,
            prefix="mkto",
            access_lifetime=TOKEN_SECONDS,
            issue_refresh_tokens=False,
        )
        self._current_token = ""
        self._refuse_client = 0
        self._crm_enabled = False
        self._stores = {
            "lead": ObjectStore("lead", lead_fields(), ["email", "id", "externalCompanyId"]),
            "company": ObjectStore("company", company_fields(), ["externalCompanyId", "id"]),
        }

    def register_routes(self) -> None:
        identity_query = frozenset({"grant_type", "client_id", "client_secret"})
        for method in ("GET", "POST"):
            self.add_route(
                method,
                _IDENTITY,
                self._identity,
                validate=self._check_identity,
                query=identity_query,
                public=True,
            )
        self.add_route("GET", "/rest/v1/stats/usage.json", self._usage)
        self.add_route("GET", "/rest/v1/leads/describe2.json", self._describe_leads)
        self.add_route("GET", "/rest/v1/companies/describe.json", self._describe_companies)
        self.add_route(
            "GET",
            "/rest/v1/leads.json",
            lambda req: self._lookup(req, "lead"),
            validate=lambda req: self._check_lookup(req, "lead"),
            query=LOOKUP_QUERY,
        )
        self.add_route(
            "GET",
            "/rest/v1/companies.json",
            lambda req: self._lookup(req, "company"),
            validate=lambda req: self._check_lookup(req, "company"),
            query=LOOKUP_QUERY,
        )
        self.add_route(
            "POST",
            "/rest/v1/leads.json",
            self._sync_leads,
            validate=self._check_sync_leads,
            write=True,
            json_body=True,
        )
        self.add_route(
            "POST",
            "/rest/v1/companies.json",
            self._sync_companies,
            validate=self._check_sync_companies,
            write=True,
            json_body=True,
        )

    def authenticate(self, req: Request) -> Auth:
        if "access_token" in req.query:
            self.violate(req, "the access_token query parameter is retired: send a Bearer [K2]")
        header = req.header("authorization")
        if header is None:
            return Auth.MISSING
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            return Auth.MALFORMED
        return Auth.OK if self.tokens.valid(token.strip()) else Auth.WRONG

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        """HTTP 200: 600 no token, 602 expired, 601 any other [K6]."""
        if auth is Auth.MISSING:
            return errors.failure("600")
        token = (req.header("authorization") or "").partition(" ")[2].strip()
        return errors.failure("602" if token in self.tokens.access else "601")

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        return errors.failure("610")

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        if req.body_error is not None:
            return errors.failure("609")
        if any("1 MB" in problem for problem in problems):
            return errors.http_error(413)
        if any("8 KB" in problem for problem in problems):
            return errors.http_error(414)
        return errors.failure("1003", "; ".join(problems)[:500])

    def rate_limited_response(self, req: Request, rate: RateStatus, concurrency: bool) -> Response:
        return errors.failure("615" if concurrency else "606")

    def daily_limited_response(self, req: Request) -> Response:
        return errors.failure("607")

    def fault_response(self, status: int) -> Response:
        return errors.http_error(status)

    # -- validators (violations) ----------------------------------------------------------

    def _check_identity(self, req: Request) -> list[str]:
        problems = [
            f"missing query parameter {name!r} (the Swagger's identity call)"
            for name in ("grant_type", "client_id", "client_secret")
            if name not in req.query
        ]
        if req.query.get("grant_type", "client_credentials") != "client_credentials":
            problems.append("grant_type must be client_credentials [K2]")
        if req.raw_body:
            problems.append("the identity call takes its parameters in the query string")
        return problems

    def _check_lookup(self, req: Request, kind: str) -> list[str]:
        problems = []
        uri = len(req.path) + len("?") + sum(len(k) + len(v) + 2 for k, v in req.query.items())
        if uri > MAX_URI:
            problems.append(f"the URI is {uri} bytes, over Marketo's 8 KB [K6]")
        for name in ("filterType", "filterValues"):
            if not req.query.get(name):
                problems.append(f"missing query parameter {name!r}")
        name = req.query.get("filterType", "")
        if name and name not in self._stores[kind].searchable:
            problems.append(f"filterType {name!r} is not a searchable {kind} field [K4][K7]")
        values = [v for v in req.query.get("filterValues", "").split(",") if v]
        if len(values) > MAX_RECORDS:
            problems.append(f"{len(values)} filterValues exceed Marketo's 300 per call [K4]")
        return problems

    def _check_sync(self, req: Request, *, actions: frozenset, optional: dict) -> list[str]:
        problems = []
        if len(req.raw_body) > MAX_BODY:
            problems.append(f"the body is {len(req.raw_body)} bytes, over Marketo's 1 MB [K6]")
        problems += check_object(
            req.body, "body", required={"input": list}, optional={"action": actions, **optional}
        )
        if problems:
            return problems
        problems += check_list(req.body["input"], "input", max_items=MAX_RECORDS, source="[K4]")
        for i, record in enumerate(req.body["input"] if not problems else []):
            if not isinstance(record, dict):
                problems.append(f"input[{i}]: expected an object")
        return problems

    def _check_sync_leads(self, req: Request) -> list[str]:
        problems = self._check_sync(
            req,
            actions=LEAD_ACTIONS,
            optional={"lookupField": str, "partitionName": str, "asyncProcessing": bool},
        )
        if problems:
            return problems
        lookup = req.body.get("lookupField", "email")
        if lookup not in self._stores["lead"].searchable:
            problems.append(f"lookupField {lookup!r} is not a searchable lead field [K4]")
        if lookup == "id" and req.body.get("action", "createOrUpdate") != "updateOnly":
            problems.append("lookupField id may only be used with updateOnly [K4]")
        if req.body.get("action") == "createDuplicate":
            problems.append("createDuplicate makes a second lead for one person: never ours")
        if req.body.get("asyncProcessing"):
            problems.append("asyncProcessing answers no per-record results: never ours")
        return problems

    def _check_sync_companies(self, req: Request) -> list[str]:
        problems = self._check_sync(
            req,
            actions=COMPANY_ACTIONS,
            optional={"dedupeBy": frozenset({"dedupeFields", "idField"})},
        )
        if problems:
            return problems
        dedupe = req.body.get("dedupeBy", "dedupeFields")
        key = "externalCompanyId" if dedupe == "dedupeFields" else "id"
        for i, record in enumerate(req.body["input"]):
            if key not in record:
                problems.append(f"input[{i}]: dedupeBy {dedupe} needs {key!r} [K7]")
        return problems

    # -- handlers (under the state lock) --------------------------------------------------

    def _identity(self, req: Request) -> Response:
        """The same token while it lives, with its remaining life [K2]."""
        if self._refuse_client:
            self._refuse_client -= 1
            return errors.identity_refused()
        form = {k: req.query.get(k, "") for k in ("client_id", "client_secret")}
        try:
            self.tokens._client(form)
        except OAuthError:
            return errors.identity_refused()
        current = self.tokens.access.get(self._current_token)
        now = time.time()
        if current is None or not self.tokens.valid(self._current_token):
            self._current_token = self.tokens.client_credentials(form)["access_token"]
            current = self.tokens.access[self._current_token]
        remaining = int((current.expires_at or now) - now)
        return Response(
            200,
            {
                "access_token": self._current_token,
                "token_type": "bearer",
                "expires_in": max(remaining, 0),
                "scope": "api-user@acme.example",
            },
        )

    def _usage(self, req: Request) -> Response:
        today = datetime.fromtimestamp(time.time(), UTC).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        total = self.daily_used
        return errors.answer(
            [
                {
                    "date": today.isoformat().replace("+00:00", "Z"),
                    "total": total,
                    "users": [{"userId": "api-user@acme.example", "count": total}],
                }
            ]
        )

    def _describe_leads(self, req: Request) -> Response:
        store = self._stores["lead"]
        return errors.answer(
            [
                {
                    "name": "API Lead",
                    "searchableFields": [[name] for name in store.searchable],
                    "fields": [f.to_json() for f in store.fields.values()],
                }
            ]
        )

    def _describe_companies(self, req: Request) -> Response:
        store = self._stores["company"]
        stamp = "2026-01-01T00:00:00Z"
        return errors.answer(
            [
                {
                    "apiName": "company",
                    "displayName": "Company",
                    "pluralName": "Companies",
                    "description": "Companies",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "idField": "id",
                    "dedupeFields": ["externalCompanyId"],
                    "searchableFields": [[name] for name in store.searchable],
                    "fields": [f.to_json() for f in store.fields.values()],
                    "relationships": [],
                    "status": "approved",
                    "version": "approved",
                }
            ]
        )

    def _lookup(self, req: Request, kind: str) -> Response:
        store = self._stores[kind]
        name = req.query["filterType"]
        wanted = [f for f in req.query.get("fields", "").split(",") if f] or [
            "id",
            name,
            "updatedAt",
        ]
        found = []
        for value in dict.fromkeys(req.query["filterValues"].split(",")):
            for record in store.find(name, value):
                found.append({f: record[f] for f in ["id", *wanted] if f in record})
        if kind == "company":  # the Swagger's CompanyResponse: each result has its seq
            found = [{"seq": seq, **item} for seq, item in enumerate(found)]
        return errors.answer(found)

    def _sync_leads(self, req: Request) -> Response:
        body = req.body
        action = body.get("action", "createOrUpdate")
        lookup = body.get("lookupField", "email")
        results = []
        for values in body["input"]:
            try:
                status, record_id = self._stores["lead"].sync(values, action=action, match=lookup)
            except Skip as skip:
                results.append({"status": "skipped", "reasons": skip.to_json()})
                continue
            results.append({"id": record_id, "status": status})
        return errors.answer(results)

    def _sync_companies(self, req: Request) -> Response:
        if self._crm_enabled:
            return errors.failure("1018")
        body = req.body
        action = body.get("action", "createOrUpdate")
        match = (
            "externalCompanyId" if body.get("dedupeBy", "dedupeFields") == "dedupeFields" else "id"
        )
        store = self._stores["company"]
        results = []
        for seq, values in enumerate(body["input"]):
            try:
                status, record_id = store.sync(values, action=action, match=match)
            except Skip as skip:
                # The Swagger requires an id in every result: the record's when there is one,
                # else 0 (emulator choice).
                existing = store.find(match, values.get(match))
                record_id = existing[0]["id"] if existing else 0
                results.append(
                    {"seq": seq, "id": record_id, "status": "skipped", "reasons": skip.to_json()}
                )
                continue
            results.append({"seq": seq, "id": record_id, "status": status})
        return errors.answer(results)
