"""Marketo's answers: every REST answer is HTTP 200 with ``success``, ``errors``, ``warnings``,
``result`` and ``requestId`` (the Swagger's ``ResponseOf...`` shapes require all five), errors
coming inside the body with codes [K6].

Citations point to the Marketo source list in /work/shared/VENDORS.md (section 5).
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.fakes.wire import TEXT_CONTENT_TYPE, Response

# Codes and messages from Marketo's error-code page [K6] (messages as Marketo words them).
MESSAGES = {
    "600": "Access token not specified",
    "601": "Access token invalid",
    "602": "Access token expired",
    "603": "Access denied",
    "604": "Request timed out",
    "606": "Max rate limit '100' exceeded with in '20' secs",
    "607": "Daily quota reached",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "611": "System error",
    "612": "Invalid Content Type",
    "615": "Concurrent access limit reached",
    "1003": "Invalid data",
    "1018": "CRM Enabled",
}


def request_id() -> str:
    return f"{secrets.token_hex(2)}#{secrets.token_hex(6)}"


def answer(result: list[dict[str, Any]] | None = None) -> Response:
    """A successful answer (``success: true``) with its per-record ``result``."""
    body = {
        "requestId": request_id(),
        "success": True,
        "errors": [],
        "warnings": [],
        "result": result or [],
    }
    return Response(200, body)


def failure(code: str, message: str | None = None) -> Response:
    """A refused request: HTTP 200, ``success: false``, the code in ``errors`` [K6]."""
    body = {
        "requestId": request_id(),
        "success": False,
        "errors": [{"code": code, "message": message or MESSAGES.get(code, "Error")}],
        "warnings": [],
        "result": [],
    }
    return Response(200, body)


def http_error(status: int) -> Response:
    """What Marketo's edge sends for an HTTP-level problem (413 over 1 MB, 414 over 8 KB of
    URI [K6]; 502 [K3]): no Marketo body (emulator choice)."""
    phrases = {413: "Request Entity Too Large", 414: "Request-URI Too Long", 502: "Bad Gateway"}
    return Response(status, phrases.get(status, "Error"), TEXT_CONTENT_TYPE)


def identity_refused() -> Response:
    """The identity endpoint refusing the client id or secret: HTTP 401 with RFC 6749 §5.2's
    body (emulator choice: the Swagger documents only the 200 answer)."""
    return Response(401, {"error": "invalid_client", "error_description": "Bad client credentials"})
