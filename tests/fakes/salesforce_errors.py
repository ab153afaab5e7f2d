"""Salesforce's error bodies, as ``FakeSalesforce`` answers them: a JSON array of
``{message, errorCode, fields}`` [S21]. Citations: /work/shared/VENDORS.md section 4."""

from __future__ import annotations

from tests.fakes.wire import Response


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    body: list[dict] = [{"message": message, "errorCode": code}]
    if fields:
        body[0]["fields"] = fields
    return Response(status, body)


def invalid_session() -> Response:
    """401 ``INVALID_SESSION_ID``: the session expired or the token is not one [S21][S22]."""
    return error(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit(daily: bool) -> Response:
    """403 ``REQUEST_LIMIT_EXCEEDED`` for the daily allowance and for concurrency alike, with
    no ``Retry-After`` [S17][S21]."""
    message = (
        "TotalRequests Limit exceeded." if daily else "ConcurrentPerOrgLongTxn Limit exceeded."
    )
    return error(403, "REQUEST_LIMIT_EXCEEDED", message)


def not_found(method: str, path: str, method_not_allowed: bool) -> Response:
    if method_not_allowed:
        return error(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET"
        )
    return error(404, "NOT_FOUND", "The requested resource does not exist")


def invalid(problems: list[str]) -> Response:
    """400 for a malformed request [S1]: JSON_PARSER_ERROR (emulator choice of code)."""
    return error(400, "JSON_PARSER_ERROR", "; ".join(problems)[:2000])


def fault(status: int) -> Response:
    if status == 401:
        return invalid_session()
    if status == 403:
        return request_limit(daily=True)
    if status == 503:
        return error(503, "SERVER_UNAVAILABLE", "Server is busy, try again later")
    if status >= 500:
        return error(status, "UNKNOWN_EXCEPTION", "An unexpected error occurred")
    return error(status, "BAD_REQUEST", "Bad request")
