"""HubSpot's error bodies, as ``FakeHubSpot`` answers them.

Citations in brackets point to the HubSpot source list in /work/shared/VENDORS.md (section 3).
"""

from __future__ import annotations

import json
import uuid
from http import HTTPStatus
from typing import Any

from tests.fakes.wire import Response

_CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES"}
_CATEGORIES.update({404: "OBJECT_NOT_FOUND", 409: "CONFLICT"})
_SINGULAR = {"companies": "COMPANY", "contacts": "CONTACT"}


def error(status: int, message: str, category: str, **extra: Any) -> Response:
    """The error shape ``{status, message, correlationId, category, ...}`` [H17]."""
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return Response(status, body)


def unauthorized() -> Response:
    """401 ``INVALID_AUTHENTICATION``."""
    message = (
        "Authentication credentials not found. This API supports OAuth 2.0 authentication "
        "and you can find more details at "
        "https://developers.hubspot.com/docs/methods/auth/oauth-overview"
    )
    return error(401, message, "INVALID_AUTHENTICATION")


def not_found(method: str, path: str, method_not_allowed: bool) -> Response:
    """404 for an unknown route, 405 for a known path with another method."""
    if method_not_allowed:
        return error(405, f"Method {method} not allowed", "METHOD_NOT_ALLOWED")
    return error(404, f"Unable to find route {method} {path}", "OBJECT_NOT_FOUND")


def invalid(problems: list[str]) -> Response:
    """400 ``VALIDATION_ERROR`` [H17], one ``errors[]`` entry per problem."""
    errors = [{"message": problem} for problem in problems]
    return error(400, "; ".join(problems), "VALIDATION_ERROR", errors=errors)


def too_many_requests(retry_after: str) -> Response:
    """429 ``RATE_LIMIT`` / ``TEN_SECONDLY_ROLLING`` [H18] with ``Retry-After``.

    Whether HubSpot sends ``Retry-After`` is unconfirmed [H18]; emulator choice: whole seconds.
    """
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": "TEN_SECONDLY_ROLLING",
    }
    return Response(429, body, headers={"Retry-After": retry_after})


def daily_limit_reached() -> Response:
    """429 ``RATE_LIMIT`` / ``DAILY``: the account's requests of the day are spent [H18]
    (no ``Retry-After``: the day ends at midnight in the account's time zone)."""
    body = {
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": "DAILY",
    }
    return Response(429, body)


def fault(status: int) -> Response:
    """The body for an injected ``status`` (a 429 looks like the real rate limit)."""
    if status == 429:
        return too_many_requests("1")
    category = _CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
    try:
        message = HTTPStatus(status).phrase
    except ValueError:
        message = "error"
    return error(status, message, category)


def record_error(
    input_id: str, problems: list[dict[str, Any]], *, trace: str | None = None
) -> dict[str, Any]:
    """A 207 ``errors[]`` entry for one failed input [H11].

    ``message`` embeds HubSpot's ``[{isValid, message, error, name}]`` list; ``context.ids``
    names the input's ``id``; ``errors[]`` has ``{message, code, in}`` per property.
    """
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": "Property values were not valid: " + json.dumps(problems),
        "context": {"ids": [input_id], **({"objectWriteTraceId": [trace]} if trace else {})},
        "errors": [
            {"message": p["message"], "code": p["error"], "in": p["name"]} for p in problems
        ],
    }


def objects_not_found(object_type: str, ids: list[str]) -> dict[str, Any]:
    """The 207 ``errors[]`` entry of a batch read for ids that match no live object."""
    message = (
        f"Could not get some {_SINGULAR[object_type]} objects, they may be deleted or not "
        "exist. Check that ids are valid."
    )
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": message,
        "context": {"ids": ids},
    }
