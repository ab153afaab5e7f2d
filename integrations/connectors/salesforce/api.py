"""Talking to Salesforce's REST API: the instance, one request with its limits read, errors by
kind, SOQL look-ups.

Facts from ../shared/VENDORS.md §4: ``{instance_url}/services/data/vXX.X/...`` [S1][S2]; every
answer carries ``Sforce-Limit-Info: api-usage=N/M`` [S19]; past the org's daily allowance (or
its concurrency limit) Salesforce answers 403 ``REQUEST_LIMIT_EXCEEDED`` with no
``Retry-After`` [S17][S21]; 401 ``INVALID_SESSION_ID`` means the session ended (renew once);
errors are a JSON array ``[{message, errorCode, fields}]`` [S21].

The daily allowance is the org's daily quota (``integrations.engine.quota``, a *reported*
one): shared by every connection to the org, Salesforce's count in each answer is ours, and
syncs may use MKT_SALESFORCE_DAILY_API_SHARE of it. A run is planned to fit what is left; past
it, or when Salesforce refuses for its daily limit (``TotalRequests``), the records are
deferred (never failed) and one request looks again after MKT_SALESFORCE_LIMIT_WAIT_SECONDS.
The same 403 for the org's concurrency limit holds the connection's requests for that wait.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from integrations.connectors.base import Connector, DailyQuota, QuotaUsage
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
DAILY_LIMIT = "TotalRequests"  # the message of the daily allowance's refusal [S17][S21]


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
    # A rolling 24 hours, Salesforce's count in every answer [S17][S19]; a Developer Edition's
    # 15,000 until the first answer says the org's own allowance.
    daily_quota = DailyQuota(requests=15_000, rolling=True, reported=True)

    def quota_account(self) -> str:
        """The org: connections to one org share its allowance."""
        grant = getattr(self.connection, "oauth_grant", None)
        org = grant.account_id if grant is not None else ""
        return org or super().quota_account()

    def quota_usage(self, response: Response) -> QuotaUsage | None:
        """``Sforce-Limit-Info: api-usage=N/M`` [S19]; the allowance syncs may use is
        MKT_SALESFORCE_DAILY_API_SHARE of M."""
        match = _USAGE.search(response.headers.get("Sforce-Limit-Info") or "")
        if match is None:
            return None
        used, maximum = int(match[1]), int(match[2])
        self.api_usage = (used, maximum)
        share = int(maximum * settings.MKT_SALESFORCE_DAILY_API_SHARE)
        return QuotaUsage(used=used, limit=max(share, 1) if maximum else None)

    def quota_recheck_seconds(self) -> float:
        return float(settings.MKT_SALESFORCE_LIMIT_WAIT_SECONDS)

    def quota_refresh(self) -> None:
        self.call("GET", f"{API}/limits", what="limits")

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

    def custom_objects(self) -> dict[str, str]:
        """The org's custom objects a sync can write (API name -> label): Describe Global's
        objects that are custom, not custom settings, and may be created and updated."""
        body = self.call("GET", f"{API}/sobjects", what="list objects").json()
        found: dict[str, str] = {}
        for item in body.get("sobjects") or ():
            if not isinstance(item, dict) or not _NAME.match(str(item.get("name") or "")):
                continue
            writable = item.get("createable") and item.get("updateable")
            if item.get("custom") and writable and not item.get("customSetting"):
                found[str(item["name"])] = str(item.get("label") or item["name"])
        return found

    # --- limits and errors -------------------------------------------------------------------
    def _hold(self, seconds: float) -> None:
        if self.http.throttle is not None:
            self.http.throttle.block(seconds)

    def limit_error(self, what: str, detail: str) -> ConnectorError:
        """403 ``REQUEST_LIMIT_EXCEEDED``: the daily allowance (``TotalRequests``) spends the
        org's quota until the next look; the concurrency limit holds the connection."""
        wait = settings.MKT_SALESFORCE_LIMIT_WAIT_SECONDS
        usage = f" ({self.api_usage[0]:,} of {self.api_usage[1]:,} used)" if self.api_usage else ""
        if DAILY_LIMIT in detail:
            return self.quota_spent(
                f"{self.label} {what}: the org's daily API request limit is reached{usage}: "
                f"{detail}",
                resets_at=time.time() + wait,
            )
        self._hold(wait)
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
