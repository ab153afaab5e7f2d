"""Account Engagement's error bodies, as ``FakePardot`` answers them: ``{"code": n,
"message": ...}`` with a coarse HTTP status [A3]. Citations: /work/shared/VENDORS.md section 6.

Codes from VENDORS.md: 66 concurrency, 122 daily limit [A7], 184 invalid access token [A10],
150-154 validation [A7]. Which validation code means which, the HTTP statuses that carry 66
and 122 (Pardot sends no 429 for them [A7]) and the code of a bad business unit header are
emulator choices: the connector reads the code, whatever the status.
"""

from __future__ import annotations

from tests.fakes.wire import Response

CONCURRENCY = 66
DAILY_LIMIT = 122
INVALID_TOKEN = 184
INVALID_JSON = 150
MISSING_PROPERTY = 151
INVALID_VALUE = 152
UNKNOWN_PROPERTY = 153
READ_ONLY_PROPERTY = 154
BUSINESS_UNIT = 181  # emulator choice: the header is missing or names another business unit
NOT_FOUND = 404  # emulator choice


def error(status: int, code: int, message: str) -> Response:
    return Response(status, {"code": code, "message": message[:2000]})


def invalid_token() -> Response:
    return error(401, INVALID_TOKEN, "access_token is invalid, unknown, or malformed")


def concurrency() -> Response:
    return error(400, CONCURRENCY, "You have exceeded your concurrent request limit")


def daily_limit() -> Response:
    return error(400, DAILY_LIMIT, "Daily API rate limit met")


def business_unit(value: str | None) -> Response:
    shown = "missing" if not value else f"not this account's ({value})"
    return error(400, BUSINESS_UNIT, f"Pardot-Business-Unit-Id header is {shown}")


def fault(status: int) -> Response:
    if status == 401:
        return invalid_token()
    if status == 429:
        return error(429, CONCURRENCY, "You have exceeded your concurrent request limit")
    if status >= 500:
        return error(status, status, "Internal server error, try again later")
    return error(status, INVALID_VALUE, "Bad request")
