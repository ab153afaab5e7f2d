"""``FakePardot``: Account Engagement (Pardot) API v5 prospects and custom fields, with
Salesforce's OAuth endpoints (Pardot signs in through Salesforce [A2]), as a real HTTP server
on 127.0.0.1.

Citations in brackets point to the Pardot source list in /work/shared/VENDORS.md (section 6);
Pardot's API may not be kept as a spec here, so the shapes follow VENDORS.md. Strict about what
the connector sends: every API request carries ``Authorization: Bearer`` and this account's
``Pardot-Business-Unit-Id`` [A2][A3]; upserts are ``upsertLatestByEmail`` with ``matchEmail``
and one ``prospect`` [A1][A4]; reads name their ``fields`` [A3]; no unknown or read-only
prospect field, no value of the wrong JSON type.

- ``POST /api/v5/objects/prospects/do/upsertLatestByEmail``: the most recently updated live
  prospect with that address (whatever its case), else one in the recycle bin when
  ``secondaryDeletedSearch``, else a new one; answers the ``fields`` asked for [A1][A4];
- ``GET /api/v5/objects/prospects?fields=&email=`` (the ``email`` filter is an emulator choice:
  VENDORS.md does not settle how v5 reads prospects by address); ``DELETE .../prospects/{id}``
  to the recycle bin [A1];
- ``GET /api/v5/objects/custom-fields?fields=``: ``fieldId`` (written with ``__c`` on
  prospects [A5]), ``type``, ``isRequired`` and, for fields with predefined values, ``values``
  (emulator choice: unconfirmed in VENDORS.md);
- the daily request allowance per business unit (``set_daily_limit``): past it every request
  gets code 122 [A7][A9]; more than 5 requests at once get code 66 [A9]; an expired or unknown
  access token gets 401 code 184 [A10]; per-record refusals are codes 150-154 [A7].
Datetimes are ISO 8601 with an offset and whole seconds [A3].
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes import pardot_errors as errors
from tests.fakes.base import FakeVendor
from tests.fakes.limits import DailyAllowance, RateStatus
from tests.fakes.oauth_store import _Refresh
from tests.fakes.routing import Auth, Route, bearer_auth
from tests.fakes.salesforce_oauth import TOKEN_PATH, SalesforceOAuth
from tests.fakes.shapes import check_object, check_value
from tests.fakes.wire import Request, Response

API = "/api/v5/objects"
BUSINESS_UNIT_ID = "0Uv000000000001AAA"
DEMO_REFRESH_TOKEN = "pardot-demo-refresh-token"
SCOPES = ["pardot_api", "refresh_token"]
STANDARD = {
    "email": str,
    "firstName": str,
    "lastName": str,
    "salutation": str,
    "company": str,
    "jobTitle": str,
    "department": str,
    "phone": str,
    "website": str,
    "industry": str,
    "annualRevenue": str,
    "employees": str,
    "address1": str,
    "city": str,
    "state": str,
    "zip": str,
    "country": str,
    "source": str,
    "comments": str,
    "optedOut": bool,
    "isDoNotEmail": bool,
    "isDoNotCall": bool,
}
READ_ONLY = {"id", "createdAt", "updatedAt", "isDeleted"}
MULTI = {"Checkbox", "Multi-Select"}
CHOICE = {"Dropdown", "Radio Button", *MULTI}
STAGES = ("lead", "opportunity", "customer", "evangelist", "subscriber")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


class FakePardot(FakeVendor):
    name = "pardot"
    auth_hint = "send 'Authorization: Bearer <access token>' and Pardot-Business-Unit-Id [A2]"
    default_max_concurrency = 5  # [A9]
    token_path = TOKEN_PATH

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, rotate: bool = False):
        self.oauth = SalesforceOAuth(self, rotate=rotate)
        super().__init__(host=host, port=port)

    @property
    def credential(self) -> str:
        """A refresh token the emulator always accepts (the demo's connection)."""
        return DEMO_REFRESH_TOKEN

    # -- test helpers ---------------------------------------------------------------------
    def add_custom_field(
        self, field_id: str, type_: str = "Text", *, values=(), required: bool = False
    ) -> None:
        """A custom field (``fieldId`` without ``__c``; prospects carry it with ``__c``)."""
        with self._lock:
            self.custom[f"{field_id}__c"] = {
                "id": 1000 + len(self.custom),
                "name": field_id.replace("_", " "),
                "fieldId": field_id,
                "type": type_,
                "isRequired": required,
                "values": [{"value": v, "label": v.title()} for v in values],
            }

    def add_prospect(self, email: str, *, days_old: int = 30, **fields: Any) -> int:
        """A prospect someone else created earlier (no validation); returns its id."""
        with self._lock:
            created = datetime.now(UTC) - timedelta(days=days_old)
            return self._create({"email": email, **fields}, created)["id"]

    def opt_out(self, email: str) -> None:
        """The person unsubscribes at Account Engagement (an e-mail's link, say)."""
        with self._lock:
            for record in self._matching(email, deleted=False):
                record.update(optedOut=True, updatedAt=_stamp(datetime.now(UTC)))

    def find(self, email: str, *, deleted: bool = False) -> dict[str, Any] | None:
        """The most recently updated prospect with this address (live, or in the bin)."""
        with self._lock:
            found = self._matching(email, deleted=deleted)
            return dict(found[0]) if found else None

    def prospects(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self.store.values()]

    def create_count(self, email: str) -> int:
        with self._lock:
            return self.created[email.lower()]

    def reject_email(self, email: str, message: str) -> None:
        """A validation rule: an upsert for this address fails (code 152) with ``message``."""
        with self._lock:
            self.rejections[email.lower()] = message

    def set_daily_limit(self, maximum: int) -> None:
        """The business unit's daily request allowance (nothing of it used)."""
        with self._lock:
            self.daily = DailyAllowance(maximum)

    def new_day(self) -> None:
        with self._lock:
            self.daily.used = 0

    @property
    def limit_refusals(self) -> int:
        return self.daily.refusals

    # -- FakeVendor hooks -----------------------------------------------------------------
    def reset_store(self) -> None:
        self.store: dict[int, dict[str, Any]] = {}
        self.custom: dict[str, dict[str, Any]] = {}
        self.created: Counter[str] = Counter()
        self.rejections: dict[str, str] = {}
        self.opted_back_in: list[str] = []  # addresses a write turned from opted out to in
        self.daily = DailyAllowance(25_000)  # Growth edition [A9]
        self.business_unit_id = BUSINESS_UNIT_ID
        self.oauth.reset()
        self.oauth.store.refresh[DEMO_REFRESH_TOKEN] = _Refresh(list(SCOPES))

    def register_routes(self) -> None:
        self.oauth.register()
        add = self.add_route
        prospects = f"{API}/prospects"
        add("POST", f"{prospects}/do/upsertLatestByEmail", self._upsert,
            validate=self._check_upsert, write=True, json_body=True)  # fmt: skip
        add("GET", prospects, self._query,
            query=frozenset({"fields", "email", "limit", "nextPageToken", "updatedAtAfter",
                             "orderBy"}))  # fmt: skip
        add("DELETE", rf"{prospects}/(?P<id>\d+)", self._delete, write=True)
        add("GET", f"{API}/custom-fields", self._custom_fields,
            query=frozenset({"fields", "limit", "nextPageToken"}))  # fmt: skip

    def authenticate(self, req: Request) -> Auth:
        return bearer_auth(req, self.oauth.valid)

    def _check_limits(self, req: Request, route: Route) -> Response | None:
        """Concurrency, then the business unit header [A2], then the daily allowance [A9]."""
        limited = super()._check_limits(req, route)
        if limited is not None or not req.path.startswith("/api/v5/"):
            return limited
        unit = req.header("pardot-business-unit-id")
        if not unit:
            self.violate(req, "no Pardot-Business-Unit-Id header (every request needs it [A2])")
        if unit != self.business_unit_id:
            return errors.business_unit(unit)
        return None if self.daily.take() else errors.daily_limit()

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        return errors.invalid_token()

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        status = 405 if method_not_allowed else 404
        return errors.error(status, errors.NOT_FOUND, "Not found")

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        code = errors.UNKNOWN_PROPERTY if any("unknown" in p for p in problems) else 150
        return errors.error(400, code, "; ".join(problems))

    def rate_limited_response(self, req: Request, rate: RateStatus, concurrency: bool) -> Response:
        return errors.concurrency()

    def fault_response(self, status: int) -> Response:
        return errors.fault(status)

    # -- shapes ---------------------------------------------------------------------------
    def _kind(self, name: str) -> Any:
        if name in STANDARD:
            return STANDARD[name]
        spec = self.custom.get(name)
        if spec is None:
            return None
        if spec["type"] in MULTI:
            return list
        return (int, float) if spec["type"] == "Number" else str

    def _check_upsert(self, req: Request) -> list[str]:
        body = req.body
        problems = check_object(
            body,
            "body",
            required={"matchEmail": str, "prospect": dict},
            optional={"fields": list, "secondaryDeletedSearch": bool},
        )
        prospect = body.get("prospect") if isinstance(body, dict) else None
        if not isinstance(prospect, dict):
            return problems
        for name, value in prospect.items():
            expected = self._kind(name)
            if name in READ_ONLY:
                problems.append(f"prospect.{name}: read-only")
            elif expected is None:
                problems.append(f"prospect.{name}: unknown prospect field")
            elif value is not None:
                problems += check_value(value, expected, f"prospect.{name}")
        email = prospect.get("email")
        if email is not None and str(email).lower() != str(body.get("matchEmail", "")).lower():
            problems.append("prospect.email differs from matchEmail")
        for name in (body.get("fields") or []) if isinstance(body.get("fields"), list) else []:
            if name not in READ_ONLY and self._kind(name) is None:
                problems.append(f"fields: unknown field {name!r}")
        return problems

    # -- store ----------------------------------------------------------------------------
    def _matching(self, email: str, *, deleted: bool) -> list[dict[str, Any]]:
        found = [
            p
            for p in self.store.values()
            if str(p.get("email") or "").lower() == email.lower() and p["isDeleted"] == deleted
        ]
        return sorted(found, key=lambda p: (p["updatedAt"], p["id"]), reverse=True)

    def _create(self, fields: dict[str, Any], moment: datetime) -> dict[str, Any]:
        pid = 1_000_000 + len(self.store) + 1
        record = {
            "optedOut": False,
            **fields,
            "id": pid,
            "createdAt": _stamp(moment),
            "updatedAt": _stamp(moment),
            "isDeleted": False,
        }
        self.store[pid] = record
        self.created[str(fields["email"]).lower()] += 1
        return record

    def _value_problem(self, name: str, value: Any) -> str | None:
        spec = self.custom.get(name)
        if spec is None or spec["type"] not in CHOICE or value is None or not spec["values"]:
            return None
        allowed = {v["value"] for v in spec["values"]}
        bad = [v for v in (value if isinstance(value, list) else [value]) if v not in allowed]
        return f"{name}: {', '.join(map(str, bad))} is not one of its values" if bad else None

    # -- handlers -------------------------------------------------------------------------
    def _upsert(self, req: Request) -> Response:
        body = req.body
        email, prospect = body["matchEmail"], dict(body["prospect"])
        if email.lower() in self.rejections:
            return errors.error(400, errors.INVALID_VALUE, self.rejections[email.lower()])
        for name, value in prospect.items():
            problem = self._value_problem(name, value)
            if problem:
                return errors.error(400, errors.INVALID_VALUE, problem)
        found = self._matching(email, deleted=False)
        if not found and body.get("secondaryDeletedSearch"):
            found = self._matching(email, deleted=True)
        now = datetime.now(UTC)
        if found:
            record = found[0]
            if record.get("optedOut") and prospect.get("optedOut") is False:
                self.opted_back_in.append(email.lower())
            record.update(prospect, isDeleted=False, updatedAt=_stamp(now))
        else:
            missing = [
                name
                for name, spec in self.custom.items()
                if spec["isRequired"] and prospect.get(name) in (None, "", [])
            ]
            if missing:
                return errors.error(
                    400, errors.MISSING_PROPERTY, f"Required field(s) missing: {', '.join(missing)}"
                )
            record = self._create({"email": email, **prospect}, now)
        fields = body.get("fields") or ["id"]
        return Response(200, {name: record.get(name) for name in fields})

    def _query(self, req: Request) -> Response:
        fields = [f for f in req.query.get("fields", "").split(",") if f]
        if not fields:
            self.violate(req, "reads need fields [A3]")
            return errors.error(400, errors.MISSING_PROPERTY, "fields is required")
        limit = int(req.query.get("limit") or 200)
        if not 1 <= limit <= 1000:
            self.violate(req, f"limit {limit} is not 1-1000 [A3]")
        email = req.query.get("email")
        live = [p for p in self.store.values() if not p["isDeleted"]]
        if email is not None:
            live = self._matching(email, deleted=False)
        after = req.query.get("updatedAtAfter")
        if after is not None:
            try:
                moment = datetime.fromisoformat(after)
            except ValueError:
                self.violate(req, f"updatedAtAfter {after!r} is not ISO 8601 [A3]")
                return errors.error(400, errors.INVALID_VALUE, "updatedAtAfter")
            live = [p for p in live if datetime.fromisoformat(p["updatedAt"]) > moment]
        order = req.query.get("orderBy")
        if order not in (None, "updatedAt", "id"):
            self.violate(req, f"orderBy {order!r}")
        if order:
            live.sort(key=lambda p: (p[order], p["id"]))
        offset = int(req.query.get("nextPageToken") or 0)
        page = live[offset : offset + limit]
        more = offset + limit < len(live)
        values = [{f: p.get(f) for f in fields} for p in page]
        return Response(
            200, {"values": values, "nextPageToken": str(offset + limit) if more else None}
        )

    def _delete(self, req: Request) -> Response:
        record = self.store.get(int(req.params["id"]))
        if record is None or record["isDeleted"]:
            return errors.error(404, errors.NOT_FOUND, "Prospect not found")
        record.update(isDeleted=True, updatedAt=_stamp(datetime.now(UTC)))
        return Response(204, None)

    def _custom_fields(self, req: Request) -> Response:
        fields = [f for f in req.query.get("fields", "").split(",") if f]
        if not fields:
            self.violate(req, "reads need fields [A3]")
        values = [{f: spec.get(f) for f in fields} for spec in self.custom.values()]
        return Response(200, {"values": values, "nextPageToken": None})
