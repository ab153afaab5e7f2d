"""Talking to Salesforce's REST API: the instance, one request with its limits read, errors by
kind, SOQL look-ups.

Facts from ../shared/VENDORS.md §4: ``{instance_url}/services/data/vXX.X/...`` [S1][S2]; every
answer carries ``Sforce-Limit-Info: api-usage=N/M`` [S19]; past the org's daily allowance (or
its concurrency limit) Salesforce answers 403 ``REQUEST_LIMIT_EXCEEDED`` with no
``Retry-After`` [S17][S21]; 401 ``INVALID_SESSION_ID`` means the session ended (renew once);
errors are a JSON array ``[{message, errorCode, fields}]`` [S21].

The daily allowance is a budget shared by every sync on the org: when the usage Salesforce
reports reaches MKT_SALESFORCE_DAILY_API_SHARE of it, or Salesforce refuses for its limit,
the connection's rate budget is held for MKT_SALESFORCE_LIMIT_WAIT_SECONDS (RateBudget.block):
every batch of every sync on the connection waits, none fails, and after the wait one request
looks whether there is room again.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from integrations.connectors.base import Connector
from mktintegration.errors import ConnectorError, ErrorKind
from mktintegration.http import Response

API_VERSION = "v62.0"
API = f"/services/data/{API_VERSION}"
QUERY_CHUNK = 100  # values per SOQL IN (...): a query URI stays far under 16 KB
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# A field or object the sync names that Salesforce does not have, or that may not be written.
CONFIG_CODES = {"INVALID_FIELD", "INVALID_TYPE", "NOT_FOUND", "INVALID_FIELD_FOR_INSERT_UPDATE"}
LIMIT_CODE = "REQUEST_LIMIT_EXCEEDED"


def error_codes(response: Response) -> list[str]:
    try:
        body = response.json()
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body]
    return [str(item.get("errorCode") or "") for item in items if isinstance(item, dict)]


def soql_literal(value: str) -> str:
    """A SOQL string literal: backslashes and quotes escaped."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceApi(Connector):
    """What every Salesforce API call shares (the Salesforce connector, and its Bulk jobs)."""

    #: (used, maximum) of the org's daily API requests, from the last answer.
    api_usage: tuple[int, int] | None = None

    def base_url(self) -> str:
        """The org's instance (``instance_url``), as the last token answer named it."""
        if self.tokens is None:
            raise ConnectorError(f"{self.label}: connect the connection first", kind=ErrorKind.AUTH)
        grant = self.tokens.grant()
        if not grant.api_endpoint:
            # A refresh token given by the configure API: its first answer names the instance.
            self.tokens.access_token()
            grant = self.tokens.grant(fresh=True)
        if not grant.api_endpoint:
            raise ConnectorError(
                f"{self.label}: no instance URL is known for this connection: connect it again "
                "(or give its base URL, https://<My Domain>.my.salesforce.com)",
                kind=ErrorKind.CONFIG,
            )
        return grant.api_endpoint

    @staticmethod
    def error_text(response: Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return (response.text or "")[:300]
        if isinstance(body, list):
            parts = [
                f"{item.get('errorCode', '')}: {item.get('message', '')}".strip(": ")
                for item in body
                if isinstance(item, dict)
            ]
            return "; ".join(parts)[:300]
        return Connector.error_text(response)

    def call(
        self, method: str, path: str, *, what: str, records: int = 0, **kwargs: Any
    ) -> Response:
        """One API request (``path`` under the instance), its limits read and its error, if
        any, raised as a ConnectorError of the right kind."""
        response = self.send(method, self.url(path), records=records, **kwargs)
        self._observe_limits(response)
        self._raise(response, what)
        return response

    def query(self, soql: str, *, what: str) -> list[dict[str, Any]]:
        """Every record a SOQL query answers (following ``nextRecordsUrl``)."""
        response = self.call("GET", f"{API}/query?{urlencode({'q': soql})}", what=what)
        body = response.json()
        records = list(body.get("records", []))
        while not body.get("done", True) and body.get("nextRecordsUrl"):
            body = self.call("GET", body["nextRecordsUrl"], what=what).json()
            records += body.get("records", [])
        return records

    def find(self, sobject: str, field: str, values: list[str], *, what: str, extra=()) -> list:
        """The live records whose ``field`` is one of ``values`` (in chunks of QUERY_CHUNK)."""
        names = [sobject, field, *extra]
        if not all(_NAME.match(name) for name in names):
            raise ConnectorError(
                f"{self.label} {what}: {', '.join(names)} are not all API names",
                kind=ErrorKind.CONFIG,
            )
        wanted = sorted({v for v in values if v})
        found: list[dict[str, Any]] = []
        columns = ", ".join(dict.fromkeys(["Id", field, *extra]))
        for start in range(0, len(wanted), QUERY_CHUNK):
            chunk = ", ".join(soql_literal(v) for v in wanted[start : start + QUERY_CHUNK])
            # Names checked above, values quoted and escaped: nothing of a record's is SOQL.
            soql = f"SELECT {columns} FROM {sobject} WHERE {field} IN ({chunk})"  # noqa: S608
            found += self.query(soql, what=what)
        return found

    # --- limits and errors -------------------------------------------------------------------
    def _hold(self, seconds: float) -> None:
        if self.http.throttle is not None:
            self.http.throttle.block(seconds)

    def _observe_limits(self, response: Response) -> None:
        """``Sforce-Limit-Info`` [S19]: at the share of the allowance syncs may use, every
        request on the connection waits."""
        match = _USAGE.search(response.headers.get("Sforce-Limit-Info") or "")
        if match is None:
            return
        used, maximum = int(match[1]), int(match[2])
        self.api_usage = (used, maximum)
        if maximum and used >= maximum * settings.MKT_SALESFORCE_DAILY_API_SHARE:
            self._hold(settings.MKT_SALESFORCE_LIMIT_WAIT_SECONDS)

    def limit_error(self, what: str, detail: str) -> ConnectorError:
        wait = settings.MKT_SALESFORCE_LIMIT_WAIT_SECONDS
        self._hold(wait)
        usage = f" ({self.api_usage[0]:,} of {self.api_usage[1]:,} used)" if self.api_usage else ""
        return ConnectorError(
            f"{self.label} {what}: the org's API request limit is reached{usage}: {detail}. "
            f"The records wait and are sent once it has room (next try in {wait / 60:.0f} min).",
            kind=ErrorKind.RATE_LIMITED,
            status=403,
            retry_after=wait,
        )

    def _raise(self, response: Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        codes = set(error_codes(response))
        if status == 403 and LIMIT_CODE in codes:
            raise self.limit_error(what, self.error_text(response))
        if status == 400 and codes & CONFIG_CODES:
            raise ConnectorError(
                f"{self.label} {what}: {self.error_text(response)} (check the sync's object, "
                "match field and mappings)",
                kind=ErrorKind.CONFIG,
                status=status,
            )
        self.raise_for_status(response, what)
