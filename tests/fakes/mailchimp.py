"""``FakeMailchimp``: an HTTP emulator of the Mailchimp Marketing API v3 (``/3.0`` prefix).

Citations in brackets point to the Mailchimp source list in /work/shared/VENDORS.md
(section 1). Behaviour the document does not settle is marked "emulator choice".
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from tests.fakes import mailchimp_errors as errors
from tests.fakes.base import FakeVendor
from tests.fakes.limits import RateStatus
from tests.fakes.mailchimp_oauth import CLIENT_ID, CLIENT_SECRET, MailchimpOAuth
from tests.fakes.mailchimp_store import (
    STATUSES,
    Audience,
    MemberError,
    now_iso,
    subscriber_hash,
)
from tests.fakes.routing import Auth
from tests.fakes.shapes import check_list, check_object
from tests.fakes.wire import Request, Response

MAX_MEMBERS = 500  # [M8][M9] batch subscribe: up to 500 members per call
DEFAULT_LIST = "list0001"
_LIST = "/3.0/lists/(?P<list_id>[A-Za-z0-9_-]+)"
_MEMBER = f"{_LIST}/members/(?P<member>[^/]+)"
_REPORT = "/3.0/reports/(?P<campaign_id>[A-Za-z0-9_-]+)/email-activity"
REPORT_MAX_COUNT = 1000  # "Maximum value is 1000" (the published spec)
#: Member fields of batch subscribe and PUT member [M9][M10][M11].
MEMBER_FIELDS: dict[str, Any] = {
    "email_address": str,
    "status": STATUSES,
    "status_if_new": STATUSES,
    "merge_fields": dict,
    "email_type": frozenset({"html", "text"}),
    "interests": dict,
    "language": str,
    "vip": bool,
    "location": dict,
    "ip_signup": str,
    "timestamp_signup": str,
    "ip_opt": str,
    "timestamp_opt": str,
    "tags": list,
}


class FakeMailchimp(FakeVendor):
    """Mailchimp audiences: ping, the audience list, merge fields, batch subscribe, member
    get/put/archive; and the OAuth endpoints (``oauth``: ``tests.fakes.mailchimp_oauth``)."""

    name = "mailchimp"
    #: "10 simultaneous connections" per API key [M1]; ``set_max_concurrency`` changes it.
    default_max_concurrency = 10
    auth_hint = "expected HTTP Basic with any username and the API key as password [M6]"

    def __init__(
        self,
        *,
        api_key: str = "mc-test-key-us14",
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
    ):
        self.api_key = api_key
        self.oauth = MailchimpOAuth(self, client_id=client_id, client_secret=client_secret)
        super().__init__(host=host, port=port)

    @property
    def credential(self) -> str:
        """The API key the fake accepts (its ``-us14`` suffix is the data centre [M6])."""
        return self.api_key

    @property
    def base_url(self) -> str:
        """The API root to give a client instead of ``https://{dc}.api.mailchimp.com/3.0``."""
        return f"{self.url}/3.0"

    # -- test helpers ---------------------------------------------------------------------

    def set_max_concurrency(self, n: int | None) -> None:
        """Cap simultaneous requests (default 10 [M1]); excess ones get 429. ``None``: no cap."""
        with self._lock:
            self._max_concurrency = n

    def add_list(self, list_id: str, name: str | None = None) -> None:
        """Create an audience with the default merge fields."""
        with self._lock:
            self._lists[list_id] = Audience(list_id, name or list_id)

    def add_merge_field(
        self,
        list_id: str,
        tag: str,
        type_: str = "text",
        required: bool = False,
        *,
        name: str | None = None,
        choices: tuple[str, ...] = (),
    ) -> None:
        """Add a merge field (types per [M20]; ``choices`` for radio/dropdown)."""
        with self._lock:
            self._audience(list_id).add_merge_field(
                tag, type_, required, name=name, choices=choices
            )

    def add_member(
        self,
        list_id: str,
        email: str,
        status: str = "subscribed",
        merge_fields: dict[str, Any] | None = None,
    ) -> None:
        """Seed an existing member (counts as a creation)."""
        data = {"email_address": email, "status": status, "merge_fields": merge_fields or {}}
        with self._lock:
            self._audience(list_id).upsert(data, update_existing=True, skip_merge_validation=True)

    def members(self, list_id: str) -> list[dict[str, Any]]:
        """Every member (archived ones too) in the API's member shape."""
        with self._lock:
            audience = self._audience(list_id)
            return [member.to_json(audience) for member in audience.members.values()]

    def member(self, list_id: str, email: str) -> dict[str, Any] | None:
        """One member by email, or ``None``."""
        with self._lock:
            audience = self._audience(list_id)
            found = audience.member(email)
            return None if found is None else found.to_json(audience)

    def set_member_status(self, list_id: str, email: str, status: str) -> None:
        """Change a member's status behind our back (e.g. the person unsubscribed)."""
        with self._lock:
            found = self._audience(list_id).member(email)
            if found is None:
                raise KeyError(f"{email} is not a member of {list_id}")
            found.status = status
            found.last_changed = now_iso()

    def forget_member(self, list_id: str, email: str) -> None:
        """Permanently delete an address behind our back (someone did it in Mailchimp): it can
        never be re-imported, so a batch subscribe refuses it with its own error [M7]."""
        with self._lock:
            audience = self._audience(list_id)
            key = subscriber_hash(email)
            audience.members.pop(key, None)
            audience.forgotten.add(key)

    def create_count(self, list_id: str, email: str) -> int:
        """How many times the member was added (re-adding an archived member counts)."""
        with self._lock:
            return self._audience(list_id).creations[subscriber_hash(email)]

    # -- campaign reports (GET /reports/{campaign_id}/email-activity) ----------------------

    def add_campaign(self, campaign_id: str, list_id: str, emails: list[str]) -> None:
        """A sent campaign and the members it was sent to."""
        with self._lock:
            self._campaigns[campaign_id] = {
                "list_id": list_id,
                "activity": {email: [] for email in emails},
            }

    def add_activity(
        self,
        campaign_id: str,
        email: str,
        action: str,
        timestamp: str,
        *,
        url: str | None = None,
        bounce_type: str | None = None,
    ) -> None:
        """An ``open``, ``click`` (with ``url``) or ``bounce`` (``hard``/``soft``) of a member."""
        entry: dict[str, Any] = {"action": action, "timestamp": timestamp, "ip": "192.0.2.7"}
        if url:
            entry["url"] = url
        if bounce_type:
            entry["type"] = bounce_type
        with self._lock:
            self._campaigns[campaign_id]["activity"].setdefault(email, []).append(entry)

    # -- Mailchimp as the sender of webhooks ----------------------------------------------

    @staticmethod
    def webhook_form(kind: str, data: dict[str, str], *, fired_at: datetime | None = None) -> bytes:
        """A webhook POST body: form-encoded ``type``, ``fired_at`` (``YYYY-MM-DD HH:MM:SS``)
        and ``data[...]`` [M17][M18]."""
        moment = fired_at or datetime.now(UTC)
        fields = {"type": kind, "fired_at": moment.strftime("%Y-%m-%d %H:%M:%S")}
        fields.update({f"data[{name}]": value for name, value in data.items()})
        return urlencode(fields).encode()

    def _audience(self, list_id: str) -> Audience:
        if list_id not in self._lists:
            raise KeyError(f"no list {list_id!r}; create it with add_list()")
        return self._lists[list_id]

    # -- FakeVendor hooks -----------------------------------------------------------------

    def reset_store(self) -> None:
        self._lists: dict[str, Audience] = {DEFAULT_LIST: Audience(DEFAULT_LIST, "Default list")}
        self._campaigns: dict[str, dict[str, Any]] = {}
        self.oauth.reset()

    def register_routes(self) -> None:
        self.oauth.register()
        self.add_route("GET", "/3.0/ping", self._ping)
        self.add_route(
            "GET",
            "/3.0/lists",
            self._lists_page,
            query=frozenset({"count", "offset", "fields", "exclude_fields"}),
        )
        self.add_route(
            "GET",
            f"{_LIST}/merge-fields",
            self._merge_fields,
            query=frozenset({"count", "offset", "fields", "exclude_fields", "type", "required"}),
        )
        self.add_route(
            "POST",
            _LIST,
            self._batch,
            validate=self._check_batch,
            write=True,
            query=frozenset({"skip_merge_validation", "skip_duplicate_check"}),
            json_body=True,
        )
        self.add_route(
            "GET", _MEMBER, self._get_member, query=frozenset({"fields", "exclude_fields"})
        )
        self.add_route(
            "PUT",
            _MEMBER,
            self._put_member,
            validate=self._check_put,
            write=True,
            query=frozenset({"skip_merge_validation"}),
            json_body=True,
        )
        self.add_route("DELETE", _MEMBER, self._archive_member, write=True)
        self.add_route(
            "POST", f"{_MEMBER}/actions/delete-permanent", self._delete_permanent, write=True
        )
        self.add_route(
            "GET",
            _REPORT,
            self._email_activity,
            validate=self._check_report,
            query=frozenset({"fields", "exclude_fields", "count", "offset", "since"}),
        )

    def authenticate(self, req: Request) -> Auth:
        """HTTP Basic, any username, the key as password [M6]; ``Bearer`` with an OAuth access
        token [M6] (or the key)."""
        header = req.header("authorization")
        if header is None:
            return Auth.MISSING
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "bearer" and value:
            token = value.strip()
            return Auth.OK if token == self.api_key or self.oauth.bearer_ok(token) else Auth.WRONG
        if scheme.lower() != "basic":
            return Auth.MALFORMED
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return Auth.MALFORMED
        _, colon, password = decoded.partition(":")
        if not colon:
            return Auth.MALFORMED
        return Auth.OK if password == self.api_key else Auth.WRONG

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        return errors.unauthorized(missing=auth is Auth.MISSING)

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        return errors.method_not_allowed() if method_not_allowed else errors.not_found()

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        return errors.invalid(problems, json_error=req.body_error is not None)

    def rate_limited_response(self, req: Request, rate: RateStatus, concurrency: bool) -> Response:
        return errors.too_many_requests(self._max_concurrency if concurrency else None)

    def fault_response(self, status: int) -> Response:
        return errors.fault(status)

    # -- validators (violations) ----------------------------------------------------------

    @staticmethod
    def _check_member(member: Any, where: str) -> list[str]:
        """A member object: ``email_address`` required, the other keys typed [M9][M10]."""
        problems = check_object(
            member, where, required={"email_address": str}, optional=MEMBER_FIELDS
        )
        tags = member.get("tags") if isinstance(member, dict) else None
        for i, tag in enumerate(tags if isinstance(tags, list) else []):
            if not isinstance(tag, str):
                problems.append(f"{where}.tags[{i}]: expected a string")
        return problems

    def _check_batch(self, req: Request) -> list[str]:
        """``{"members":[...], "update_existing": bool}``, at most 500 members [M8][M9]."""
        optional = {"update_existing": bool, "sync_tags": bool}
        problems = check_object(req.body, "body", required={"members": list}, optional=optional)
        if problems:
            return problems
        members = req.body["members"]
        problems = check_list(members, "members", max_items=MAX_MEMBERS, source="[M8][M9]")
        if problems:
            return problems
        for i, member in enumerate(members):
            problems += self._check_member(member, f"members[{i}]")
        return problems

    @staticmethod
    def _check_report(req: Request) -> list[str]:
        """``count`` at most 1,000, ``offset`` a number, ``since`` ISO 8601 (the spec)."""
        problems = []
        for name in ("count", "offset"):
            if name in req.query and not req.query[name].isdigit():
                problems.append(f"{name}: expected an integer, got {req.query[name]!r}")
        if (
            req.query.get("count", "0").isdigit()
            and int(req.query.get("count", "0")) > REPORT_MAX_COUNT
        ):
            problems.append(f"count: at most {REPORT_MAX_COUNT}")
        if "since" in req.query:
            try:
                datetime.fromisoformat(req.query["since"])
            except ValueError:
                problems.append(f"since: not ISO 8601: {req.query['since']!r}")
        return problems

    def _check_put(self, req: Request) -> list[str]:
        """The member body; the path hash must be the MD5 of the lower-cased email [M10]."""
        problems = self._check_member(req.body, "body")
        if problems:
            return problems
        if subscriber_hash(req.body["email_address"]) != _path_hash(req.params["member"]):
            problems.append("the subscriber hash in the path is not MD5(lower-cased email) [M10]")
        return problems

    # -- handlers (under the state lock) --------------------------------------------------

    def _ping(self, req: Request) -> Response:
        return Response(200, {"health_status": "Everything's Chimpy!"})

    def _lists_page(self, req: Request) -> Response:
        """``{lists[], total_items}``: the account's audiences, paged by ``count`` (default
        10, at most 1,000) and ``offset`` [M7]."""
        try:
            offset = int(req.query.get("offset", "0"))
            count = min(int(req.query.get("count", "10")), 1000)
        except ValueError:
            return errors.problem(400, "Invalid Resource", "count and offset must be integers.")
        audiences = [{"id": a.id, "name": a.name} for a in self._lists.values()]
        return Response(
            200,
            {"lists": audiences[offset : offset + count], "total_items": len(audiences)},
        )

    def _merge_fields(self, req: Request) -> Response:
        """``{merge_fields[], list_id, total_items}``, paged by ``count`` (default 10)/``offset``.

        Emulator choice: Mailchimp's usual default page size of 10 applies here.
        """
        audience = self._lists.get(req.params["list_id"])
        if audience is None:
            return errors.not_found()
        fields = [f.to_json(audience.id) for f in audience.merge_fields.values()]
        try:
            offset = int(req.query.get("offset", "0"))
            count = min(int(req.query.get("count", "10")), 1000)
        except ValueError:
            return errors.problem(400, "Invalid Resource", "count and offset must be integers.")
        page = fields[offset : offset + count]
        return Response(
            200, {"merge_fields": page, "list_id": audience.id, "total_items": len(fields)}
        )

    def _batch(self, req: Request) -> Response:
        """Batch subscribe: 200 even with rejected members [M9].

        Body ``{new_members, updated_members, errors[{email_address, error, error_code}],
        total_created, total_updated, error_count}`` [M8]. With ``skip_duplicate_check`` the
        first appearance of an email wins [M7]; without it, emulator choice: later repeats are
        errors.
        """
        audience = self._lists.get(req.params["list_id"])
        if audience is None:
            return errors.not_found()
        update_existing = req.body.get("update_existing", False)
        skip_merge = req.query.get("skip_merge_validation", "").lower() == "true"
        skip_duplicates = req.query.get("skip_duplicate_check", "").lower() == "true"
        new, updated, rejected, seen = [], [], [], set()
        for data in req.body["members"]:
            email = data["email_address"]
            key = subscriber_hash(email)
            if key in seen:
                if not skip_duplicates:
                    message = f"{email} appears more than once in this request."
                    rejected.append(MemberError(message).to_json(email))
                continue
            seen.add(key)
            try:
                member, created = audience.upsert(
                    data,
                    update_existing=update_existing,
                    skip_merge_validation=skip_merge,
                    sync_tags=req.body.get("sync_tags", False),
                )
            except MemberError as exc:
                if exc.violation:
                    self.violate(req, exc.violation)
                rejected.append(exc.to_json(email))
                continue
            (new if created else updated).append(member.to_json(audience))
        body = {
            "new_members": new,
            "updated_members": updated,
            "errors": rejected,
            "total_created": len(new),
            "total_updated": len(updated),
            "error_count": len(rejected),
            "_links": [],
        }
        return Response(200, body)

    def _get_member(self, req: Request) -> Response:
        audience = self._lists.get(req.params["list_id"])
        member = audience.member(req.params["member"]) if audience else None
        return errors.not_found() if member is None else Response(200, member.to_json(audience))

    def _put_member(self, req: Request) -> Response:
        """Idempotent single upsert; ``status_if_new`` for new members [M10][M11]."""
        audience = self._lists.get(req.params["list_id"])
        if audience is None:
            return errors.not_found()
        skip_merge = req.query.get("skip_merge_validation", "").lower() == "true"
        try:
            member, _ = audience.upsert(
                req.body, update_existing=True, skip_merge_validation=skip_merge
            )
        except MemberError as exc:
            if exc.violation:
                self.violate(req, exc.violation)
            fields = [{"field": exc.field, "message": exc.field_message}] if exc.field else []
            return errors.problem(400, exc.title, exc.error, errors=fields)
        return Response(200, member.to_json(audience))

    def _archive_member(self, req: Request) -> Response:
        """204; the member's status becomes ``archived`` and it can be re-added [M7].

        Emulator choice: archiving an archived member is a 204 again (idempotent).
        """
        audience = self._lists.get(req.params["list_id"])
        member = audience.member(req.params["member"]) if audience else None
        if member is None:
            return errors.not_found()
        member.status = "archived"
        member.last_changed = now_iso()
        return Response(204)

    def _email_activity(self, req: Request) -> Response:
        """``{emails[{campaign_id, list_id, list_is_active, email_id, email_address,
        activity[{action, timestamp, ip, url?, type?}]}], campaign_id, total_items}``, paged by
        ``count`` (default 10)/``offset`` (the spec). Emulator choice: with ``since``, only members
        with activity after it are listed, with that activity."""
        campaign = self._campaigns.get(req.params["campaign_id"])
        if campaign is None:
            return errors.not_found()
        since = req.query.get("since")
        after = datetime.fromisoformat(since) if since else None
        emails = []
        for email, activity in campaign["activity"].items():
            shown = [
                a
                for a in activity
                if after is None or datetime.fromisoformat(a["timestamp"]) > after
            ]
            if after is not None and not shown:
                continue
            emails.append(
                {
                    "campaign_id": req.params["campaign_id"],
                    "list_id": campaign["list_id"],
                    "list_is_active": True,
                    "email_id": subscriber_hash(email),
                    "email_address": email,
                    "activity": shown,
                    "_links": [],
                }
            )
        offset = int(req.query.get("offset", "0"))
        count = int(req.query.get("count", "10"))
        body = {
            "emails": emails[offset : offset + count],
            "campaign_id": req.params["campaign_id"],
            "total_items": len(emails),
            "_links": [],
        }
        return Response(200, body)

    def _delete_permanent(self, req: Request) -> Response:
        """204, but a violation: our product must only archive (the address is gone) [M7]."""
        self.violate(req, "permanent delete: our product must only archive members [M7]")
        audience = self._lists.get(req.params["list_id"])
        key = _path_hash(req.params["member"])
        if audience is None or key not in audience.members:
            return errors.not_found()
        del audience.members[key]
        audience.forgotten.add(key)
        return Response(204)


def _path_hash(member: str) -> str:
    """The subscriber hash from a path segment holding the hash or the email [M7]."""
    return subscriber_hash(member) if "@" in member else member.lower()
