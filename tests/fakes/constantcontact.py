"""``FakeConstantContact``: an HTTP emulator of one Constant Contact account's V3 API and the
OAuth server in front of it.

Citations in brackets point to the Constant Contact source list in /work/shared/VENDORS.md
(section 2); CC publishes no spec we may keep, so the shapes come from VENDORS.md and the
API guide. Behaviour neither settles is marked "emulator choice".

- API root ``base_url`` (``/v3``, for ``https://api.cc.email/v3`` [C1]); every call sends
  ``Authorization: Bearer`` [C10]; errors are a JSON array of ``{error_key, error_message}``
  [C23] (``constantcontact_errors``); OAuth in ``constantcontact_oauth`` (``oauth.store``).
- Account summary, contact lists and custom fields [C25] to read; contacts to list (cursor
  paging), read and ``PUT`` (core properties left out become null, subresources left out are
  kept [C19]); bulk JSON import and delete as activities to poll [C12][C15][C18]
  (``constantcontact_store``).
- 4 requests a second per key (``throttled``) and, with ``daily_limit``, a day's quota
  starting 00:00 UTC (``quota_exceeded``), both 429 without ``Retry-After`` [C21][C22]. The
  per-second limit is enforced from the start, as Marketo's (``clear_rate_limit()`` lifts it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.fakes import constantcontact_errors as errors
from tests.fakes.base import FakeVendor
from tests.fakes.constantcontact_oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_REFRESH_TOKEN,
    TOKEN_PATH,
    ConstantContactOAuth,
)
from tests.fakes.constantcontact_store import (
    CUSTOMERS_LIST_ID,
    NEWSLETTER_LIST_ID,
    SUBRESOURCES,
    Account,
    Activity,
    decode_cursor,
    encode_cursor,
    parse_time,
    stamp_time,
    status_of,
)
from tests.fakes.limits import DailyLimit, RateStatus
from tests.fakes.routing import Auth, Route, Validator, bearer_auth
from tests.fakes.wire import RecordedRequest, Request, Response

__all__ = [  # what tests and the contract profile import from here
    "ACCOUNT_ID",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CUSTOMERS_LIST_ID",
    "DEMO_REFRESH_TOKEN",
    "IMPORT_PATH",
    "NEWSLETTER_LIST_ID",
    "TOKEN_PATH",
    "FakeConstantContact",
]
API = "/v3"
IMPORT_PATH = f"{API}/activities/contacts_json_import"
DELETE_PATH = f"{API}/activities/contact_delete"
DAILY_UTC_OFFSET = 0.0  # the day's count resets at 00:00 UTC [C21]
CONTACTS_QUERY = frozenset(
    {"email", "status", "updated_after", "created_after", "limit", "cursor", "include"}
    | {"include_count"}
)
ACCOUNT_ID = "a07e1lq2xjq3"  # the account summary's encoded_account_id
ACCOUNT = {
    "encoded_account_id": ACCOUNT_ID,
    "organization_name": "Acme Demo",
    "contact_email": "owner@acme.example",
    "time_zone_id": "America/New_York",
}


def _flag(text: str | None) -> bool:
    return (text or "").lower() == "true"


class FakeConstantContact(FakeVendor):
    """One Constant Contact account: OAuth, account, lists, custom fields, contacts."""

    name = "constantcontact"
    nominal_rate_limit = (4, 1.0)  # 4 requests a second per API key [C21]
    enforce_nominal_rate_limit = True
    auth_hint = "expected 'Authorization: Bearer <access token>' [C10]"
    token_path = TOKEN_PATH

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        job_seconds: float = 0.2,
        daily_limit: int | None = None,
    ) -> None:
        self.job_seconds, self.daily_limit = job_seconds, daily_limit
        self.oauth = ConstantContactOAuth(self, client_id=client_id, client_secret=client_secret)
        super().__init__(host=host, port=port)

    @property
    def credential(self) -> str:
        """A refresh token the emulator accepts once (it rotates): the demo's connection."""
        return DEMO_REFRESH_TOKEN

    @property
    def base_url(self) -> str:
        """The API root to give a client instead of ``https://api.cc.email/v3`` [C1]."""
        return self.url + API

    # -- test helpers ---------------------------------------------------------------------
    def add_contact(
        self, email: str, *, permission: str = "implicit", lists: tuple[str, ...] = (), **fields
    ) -> dict[str, Any]:
        """Seed a contact someone else made; ``fields`` are import keys (``first_name``,
        ``home_phone``, ``city``) or custom field names, with or without ``cf:``."""
        with self._lock:
            if self.account.find(email) is not None:
                raise ValueError(f"a contact with {email!r} exists already")
            contact = self.account.create(email, permission)
            if permission == "unsubscribed":
                self.account.set_permission(contact, permission, "Contact", None)
            values = {
                (f"cf:{k}" if k in self.account.fields else k): str(v) for k, v in fields.items()
            }
            self.account.set_values(contact, values)
            contact["list_memberships"] = list(lists)
            return self.account.flatten(contact)

    def contact(self, email: str) -> dict[str, Any] | None:
        """The live (not deleted) contact with this address, flattened (``Account.flatten``)."""
        with self._lock:
            self.account.advance()
            found = self.account.find(email)
            return None if found is None or "deleted_at" in found else self.account.flatten(found)

    def contact_record(self, email: str) -> dict[str, Any] | None:
        """The contact as stored, deleted or not."""
        with self._lock:
            self.account.advance()
            found = self.account.find(email)
            return None if found is None else json.loads(json.dumps(found))

    def create_count(self, email: str) -> int:
        """How many contacts were made with this address, seeded or by the API (1: no duplicate)."""
        with self._lock:
            self.account.advance()
            return self.account.creations[email.strip().lower()]

    def reject_email(self, email: str, reason: str) -> None:
        """An import fails this address's row with ``reason`` (and applies nothing of it)."""
        with self._lock:
            self.account.rejected[email.strip().lower()] = reason

    def fail_activity_next(self, n: int, reason: str = "The activity failed") -> None:
        """The next ``n`` activities end ``failed`` with nothing applied."""
        with self._lock:
            self.account.fail_next += [reason] * n

    def add_custom_field(
        self, name: str, type: str = "string", choices: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """A custom field of this type [C25] (``choices`` for the select types)."""
        with self._lock:
            return dict(self.account.add_custom_field(name, type, tuple(choices)))

    @property
    def activities(self) -> list[dict[str, Any]]:
        """Every activity received, oldest first, as ``GET /activities/{id}`` shows it, with
        its ``kind`` and ``payload``."""
        with self._lock:
            self.account.advance()
            return [
                {**a.to_json(), "kind": a.kind, "payload": a.payload}
                for a in self.account.activities.values()
            ]

    def imports(self) -> list[RecordedRequest]:
        """The JSON import requests received (refused ones too)."""
        return self.calls(IMPORT_PATH, method="POST")

    def expire_tokens(self) -> None:
        """Every access token issued so far has expired (401 from now on)."""
        with self._lock:
            self.oauth.store.expire_access_tokens()

    # -- FakeVendor hooks -----------------------------------------------------------------
    def reset_store(self) -> None:
        self.oauth.reset()
        self.account = Account(self.job_seconds)
        if self.daily_limit is not None:
            self._daily = DailyLimit(self.daily_limit, DAILY_UTC_OFFSET)

    def register_routes(self) -> None:
        self.oauth.register()
        lists_query = frozenset({"limit", "include_count", "status", "include_membership_count"})
        contact = rf"{API}/contacts/(?P<contact_id>[0-9a-f-]+)"
        reads = [
            (f"{API}/contact_lists", self._lists, errors.lists_query_problems, lists_query),
            (
                f"{API}/contact_custom_fields",
                self._fields,
                errors.fields_query_problems,
                frozenset({"limit"}),
            ),
            (f"{API}/contacts", self._contacts, errors.contacts_query_problems, CONTACTS_QUERY),
            (contact, self._contact, errors.include_problems, frozenset({"include"})),
        ]
        for path, handle, check, query in reads:
            self.add_route("GET", path, handle, validate=self._rule(check), query=query)
        writes = [
            ("PUT", contact, self._put, errors.put_problems),
            ("POST", IMPORT_PATH, self._import, errors.import_problems),
            ("POST", DELETE_PATH, self._delete, errors.delete_problems),
        ]
        for method, path, handle, check in writes:
            self.add_route(
                method, path, handle, validate=self._rule(check), write=True, json_body=True
            )
        self.add_route("GET", f"{API}/account/summary", lambda req: Response(200, dict(ACCOUNT)))
        self.add_route("GET", rf"{API}/activities/(?P<activity_id>[0-9a-f-]+)", self._activity)

    def _rule(self, check: Callable[[Request, Account], list[str]]) -> Validator:
        """A route's validator: ``check`` on the request and the account's lists and fields."""
        return lambda req: check(req, self.account)

    def authenticate(self, req: Request) -> Auth:
        return bearer_auth(req, self.oauth.store.valid)

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        return errors.unauthorized()

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        return errors.method_not_allowed() if method_not_allowed else errors.not_found()

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        return errors.invalid(problems)

    def rate_limited_response(self, req: Request, rate: RateStatus, concurrency: bool) -> Response:
        return errors.throttled()

    def daily_limited_response(self, req: Request) -> Response:
        return errors.quota_exceeded()

    def fault_response(self, status: int) -> Response:
        return errors.fault(status)

    def _check_limits(self, req: Request, route: Route) -> Response | None:
        """The OAuth endpoints are another host's (authz.constantcontact.com [C5]): the API
        key's limits do not count them."""
        return None if route.public else super()._check_limits(req, route)

    def _run(self, route: Route, req: Request) -> Response:
        self.account.advance()  # activities move on with wall time, seen at each request
        return super()._run(route, req)

    # -- reads ------------------------------------------------------------------------------
    def _lists(self, req: Request) -> Response:
        lists = [dict(item) for item in self.account.lists.values()]
        if req.query.get("status") == "deleted":
            lists = []
        if "include_membership_count" in req.query:
            only_active = req.query["include_membership_count"] == "active"
            for item in lists:
                item["membership_count"] = sum(
                    item["list_id"] in c["list_memberships"]
                    and "deleted_at" not in c
                    and (not only_active or status_of(c) == "active")
                    for c in self.account.contacts.values()
                )
        body: dict[str, Any] = {"lists": lists}
        if _flag(req.query.get("include_count")):
            body["lists_count"] = len(lists)
        return Response(200, body)

    def _fields(self, req: Request) -> Response:
        fields = [json.loads(json.dumps(f)) for f in self.account.fields.values()]
        return Response(200, {"custom_fields": fields})

    def _contact(self, req: Request) -> Response:
        contact = self.account.contacts.get(req.params["contact_id"])
        if contact is None:
            return errors.not_found("Contact not found")
        include = set(req.query.get("include", "").split(","))
        return Response(200, self.account.present(contact, include))

    def _contacts(self, req: Request) -> Response:
        """Sorted by ``updated_at`` then ``contact_id``; the cursor holds the query and where
        the page ended (emulator choice: CC's cursor is opaque). ``status`` defaults to every
        contact but the deleted (emulator choice); the time filters are strict (after)."""
        query, after = dict(req.query), None
        if "cursor" in query:
            query, after = decode_cursor(query["cursor"]) or ({}, None)
        status = query.get("status")
        email = query.get("email", "").strip().lower()
        since = {
            f"{name}_at": moment
            for name in ("updated", "created")
            if (moment := parse_time(query.get(f"{name}_after", "")))
        }
        found = []
        for contact in self.account.contacts.values():
            state = status_of(contact)
            if (status is None and state == "deleted") or status not in (None, "all", state):
                continue
            if email and contact["email_address"]["address"] != email:
                continue
            if any(stamp_time(contact[stamp]) <= t for stamp, t in since.items()):
                continue
            found.append(contact)
        found.sort(key=lambda c: (c["updated_at"], c["contact_id"]))
        total = len(found)
        if after is not None:
            found = [c for c in found if (c["updated_at"], c["contact_id"]) > tuple(after)]
        limit = int(query.get("limit", 50))
        page, more = found[:limit], len(found) > limit
        include = set(query.get("include", "").split(","))
        body: dict[str, Any] = {"contacts": [self.account.present(c, include) for c in page]}
        if more:
            last = page[-1]
            token = encode_cursor(query, [last["updated_at"], last["contact_id"]])
            body["_links"] = {"next": {"href": f"{API}/contacts?cursor={token}"}}
        if _flag(query.get("include_count")):
            body["contacts_count"] = total
        return Response(200, body)

    def _activity(self, req: Request) -> Response:
        activity = self.account.activities.get(req.params["activity_id"])
        if activity is None:
            return errors.not_found("Activity not found")
        return Response(200, activity.to_json())

    # -- writes -----------------------------------------------------------------------------
    def _put(self, req: Request) -> Response:
        contact = self.account.contacts.get(req.params["contact_id"])
        if contact is None:
            return errors.not_found("Contact not found")
        body, current = req.body, contact["email_address"]
        other = self.account.find(body["email_address"]["address"])
        if other is not None and other is not contact:
            return errors.error(409, "conflict", "Another contact has this e-mail address")
        permission = body["email_address"].get("permission_to_send")
        if (
            current["permission_to_send"] == "unsubscribed"
            and permission in ("implicit", "explicit")
            and body["update_source"] == "Account"
        ):
            # Only the contact may opt back in (update_source Contact) [C19].
            self.violate(req, "re-opt-in of an unsubscribed contact (update_source Account)")
            return errors.error(400, "bad_request", "The contact is unsubscribed")
        self.account.apply_put(contact, body)
        return Response(200, self.account.present(contact, set(SUBRESOURCES)))

    def _import(self, req: Request) -> Response:
        """CC silently leaves out the contacts past 40,000 or past 4 MB of body [C12]: so does
        the emulator, and it records the loss as a violation. Which rows 4 MB still holds is
        counted on the body as ``json.dumps`` writes it (emulator choice)."""
        rows, list_ids = req.body["import_data"], req.body["list_ids"]
        if len(rows) > errors.MAX_ROWS:
            self.violate(
                req, f"{len(rows)} contacts: those past {errors.MAX_ROWS} are not imported [C12]"
            )
            rows = rows[: errors.MAX_ROWS]
        if len(req.raw_body) >= errors.MAX_BODY:
            size, kept = len(json.dumps({"import_data": [], "list_ids": list_ids})), 0
            for row in rows:
                size += len(json.dumps(row).encode()) + (2 if kept else 0)
                if size >= errors.MAX_BODY:
                    break
                kept += 1
            self.violate(
                req,
                f"the body is {len(req.raw_body)} bytes, 4 MB or more: contacts "
                f"past row {kept} are not imported [C12]",
            )
            rows = rows[:kept]
        payload = {"import_data": rows, "list_ids": list(list_ids)}
        return self._accepted(self.account.start("contacts_json_import", payload, len(rows)))

    def _delete(self, req: Request) -> Response:
        ids = list(req.body["contact_ids"])
        return self._accepted(self.account.start("contact_delete", {"contact_ids": ids}, len(ids)))

    @staticmethod
    def _accepted(activity: Activity) -> Response:
        """201 with the new activity to poll [C12]; it is always ``initialized`` when answered."""
        body = {
            "activity_id": activity.activity_id,
            "state": "initialized",
            "created_at": activity.created_at,
            "_links": {"self": {"href": f"{API}/activities/{activity.activity_id}"}},
        }
        return Response(201, body)
