"""Constant Contact's refusals, as ``FakeConstantContact`` gives them: the request shapes it
refuses (the ``*_problems`` validators, each problem a violation) and its error bodies.

The V3 API answers every error with a JSON **array** of ``{error_key, error_message}``
[C23]; the two 429s differ only by their key, ``throttled`` (4 requests a second) or
``quota_exceeded`` (10,000 a day), and carry no ``Retry-After`` [C21][C22]. The OAuth
endpoints (an Okta server at authz.constantcontact.com [C5]) answer RFC 6749 §5.2's
``{error, error_description}`` instead.

Citations point to the Constant Contact source list in /work/shared/VENDORS.md (section 2).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.constantcontact_store import (
    ADDRESS_KEYS,
    CORE,
    IMPORT_KEYS,
    PERMISSIONS,
    SUBRESOURCES,
    Account,
    decode_cursor,
    parse_time,
)
from tests.fakes.shapes import Expected, check_object
from tests.fakes.wire import Request, Response

MAX_ROWS = 40_000  # contacts per import [C12]
MAX_BODY = 4_000_000  # an import body must be under 4 MB [C12]
MAX_LISTS = 50  # list_ids per import (emulator choice, as contact_delete's [C18])
MAX_CUSTOM = 25  # custom fields per contact [C14]
MAX_DELETE = 500  # contact_ids per delete [C18]
STATUSES = frozenset(
    {"all", "active", "deleted", "not_set", "pending_confirmation", "temp_hold", "unsubscribed"}
)

# The error keys of the V3 glossary [C23] for the statuses the emulator answers; the messages
# are emulator choice.
_FAULTS = {
    400: ("bad_request", "The request body is malformed or invalid"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "This application is not allowed to do that"),
    404: ("not_found", "The requested resource was not found"),
    409: ("conflict", "The resource already exists"),
    415: ("unsupported_media_type", "Unsupported Media Type"),
    500: ("server_error", "An internal server error occurred"),
    502: ("bad_gateway", "Bad Gateway"),
    503: ("service_unavailable", "The service is temporarily unavailable"),
}


def error(status: int, key: str, message: str) -> Response:
    """One error in the V3 shape: a JSON array of one ``{error_key, error_message}`` [C23]."""
    return Response(status, [{"error_key": key, "error_message": message}])


def unauthorized() -> Response:
    """401 for a missing, unknown or expired access token [C23]."""
    return error(401, "unauthorized", "Unauthorized")


def not_found(what: str = "The requested resource was not found") -> Response:
    return error(404, "not_found", what)


def method_not_allowed() -> Response:
    return error(405, "method_not_allowed", "Method not allowed")


def invalid(problems: list[str]) -> Response:
    """400 for a malformed body or schema: do not retry [C23]. One entry per problem (emulator
    choice: CC lists one per field)."""
    return Response(400, [{"error_key": "bad_request", "error_message": p} for p in problems])


def throttled() -> Response:
    """429 over 4 requests a second, no ``Retry-After`` [C21][C22]."""
    return error(429, "throttled", "Too many requests per second")


def quota_exceeded() -> Response:
    """429 once the day's 10,000 requests are spent; the day starts 00:00 UTC [C21]."""
    return error(429, "quota_exceeded", "The daily request quota is exceeded")


def fault(status: int) -> Response:
    """The body of an injected ``status`` (a 429 is the per-second one)."""
    if status == 429:
        return throttled()
    key, message = _FAULTS.get(status, ("server_error" if status >= 500 else "bad_request", ""))
    return error(status, key, message or f"HTTP {status}")


# -- request shapes (violations) ------------------------------------------------------------
def _int(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    return int(text) if text.isdigit() else None


def lists_query_problems(req: Request, account: Account) -> list[str]:
    problems = []
    limit = _int(req.query.get("limit"), 50)
    if limit is None or not 1 <= limit <= 1000:
        problems.append("limit must be 1..1000")
    if req.query.get("status", "all") not in ("all", "active", "deleted"):
        problems.append("status must be all, active or deleted")
    if req.query.get("include_membership_count", "all") not in ("all", "active"):
        problems.append("include_membership_count must be all or active")
    return problems


def fields_query_problems(req: Request, account: Account) -> list[str]:
    limit = _int(req.query.get("limit"), 50)
    return [] if limit is not None and 1 <= limit <= 100 else ["limit must be 1..100"]


def include_problems(req: Request, account: Account) -> list[str]:
    wanted = [x for x in req.query.get("include", "").split(",") if x]
    return [
        f"include: {x!r} is not one of {', '.join(SUBRESOURCES)}"
        for x in wanted
        if x not in SUBRESOURCES
    ]


def contacts_query_problems(req: Request, account: Account) -> list[str]:
    query = req.query
    if "cursor" in query:
        others = sorted(set(query) - {"cursor"})
        problems = [f"send the next link as given: {others} beside the cursor"] if others else []
        return problems + (
            [] if decode_cursor(query["cursor"]) else ["the cursor is not one of ours"]
        )
    problems = include_problems(req, account)
    limit = _int(query.get("limit"), 50)
    if limit is None or not 1 <= limit <= 500:
        problems.append("limit must be 1..500")
    if query.get("status", "all") not in STATUSES:
        problems.append(f"status must be one of {', '.join(sorted(STATUSES))}")
    for name in ("updated_after", "created_after"):
        if name in query and parse_time(query[name]) is None:
            problems.append(f"{name} must be an ISO 8601 date-time, got {query[name]!r}")
    return problems


def put_problems(req: Request, account: Account) -> list[str]:
    text, number = (str, type(None)), (int, type(None))
    optional: dict[str, Any] = dict.fromkeys(CORE, text) | {"anniversary": text}
    optional |= {"birthday_month": number, "birthday_day": number}
    optional |= dict.fromkeys(SUBRESOURCES, list)
    problems = check_object(
        req.body,
        "body",
        required={"update_source": frozenset({"Contact", "Account"}), "email_address": dict},
        optional=optional,
    )
    if problems:
        return problems
    problems = check_object(
        req.body["email_address"],
        "email_address",
        required={"address": str},
        optional={"permission_to_send": PERMISSIONS, "opt_out_reason": text},
    )
    fields = frozenset(f["custom_field_id"] for f in account.fields.values())
    value_shape: dict[str, Expected] = {"custom_field_id": fields, "value": str}
    for i, value in enumerate(req.body.get("custom_fields", [])):
        problems += check_object(value, f"custom_fields[{i}]", required=value_shape)
    for i, list_id in enumerate(req.body.get("list_memberships", [])):
        if list_id not in account.lists:
            problems.append(f"list_memberships[{i}]: {list_id!r} is not a list")
    kinds = frozenset({"home", "work", "mobile", "other"})
    phone_shape: dict[str, Expected] = {"phone_number": str, "kind": kinds}
    for i, phone in enumerate(req.body.get("phone_numbers", [])):
        problems += check_object(phone, f"phone_numbers[{i}]", required=phone_shape)
    for i, address in enumerate(req.body.get("street_addresses", [])):
        problems += check_object(
            address,
            f"street_addresses[{i}]",
            required={"kind": str},
            optional=dict.fromkeys(ADDRESS_KEYS.values(), str),
        )
    return problems


def import_problems(req: Request, account: Account) -> list[str]:
    """The shape of a JSON import [C12][C14]; more than 40,000 rows or 4 MB is not refused
    but silently cut (``_import``)."""
    problems = check_object(req.body, "body", required={"import_data": list, "list_ids": list})
    if problems:
        return problems
    rows, list_ids = req.body["import_data"], req.body["list_ids"]
    if not 1 <= len(list_ids) <= MAX_LISTS:
        problems.append(f"list_ids: {len(list_ids)} ids, 1..{MAX_LISTS} allowed [C12]")
    problems += [
        f"list_ids[{i}]: {x!r} is not a contact list"
        for i, x in enumerate(list_ids)
        if x not in account.lists
    ]
    if not rows:
        problems.append("import_data is empty")
    for i, row in enumerate(rows):
        problems += row_problems(account, row, f"import_data[{i}]")
        if len(problems) >= 20:  # enough to tell what is wrong
            break
    return problems


def row_problems(account: Account, row: Any, where: str) -> list[str]:
    if not isinstance(row, dict):
        return [f"{where}: expected an object"]
    problems = [] if "email" in row else [f"{where}: missing required key 'email' [C12]"]
    custom = [k for k in row if k.startswith("cf:")]
    if len(custom) > MAX_CUSTOM:
        problems.append(f"{where}: {len(custom)} custom fields, at most {MAX_CUSTOM} [C14]")
    for key, value in row.items():
        if key.startswith("cf:") and key[3:] not in account.fields:
            problems.append(f"{where}: {key!r} names no custom field [C14]")
        elif not key.startswith("cf:") and key not in IMPORT_KEYS:
            problems.append(f"{where}: unexpected key {key!r} (not an import column [C14])")
        if not isinstance(value, str):
            problems.append(f"{where}.{key}: every import value is a string [C14]")
    return problems


def delete_problems(req: Request, account: Account) -> list[str]:
    """By contact ids only (emulator choice: deleting by ``list_ids`` [C18] is not ours)."""
    problems = check_object(req.body, "body", required={"contact_ids": list})
    ids = [] if problems else req.body["contact_ids"]
    if not problems and not 1 <= len(ids) <= MAX_DELETE:
        problems.append(f"contact_ids: {len(ids)} ids, 1..{MAX_DELETE} allowed [C18]")
    return problems + [
        f"contact_ids[{i}]: expected a string" for i, x in enumerate(ids) if not isinstance(x, str)
    ]
