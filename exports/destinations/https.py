"""HTTPS: POST the file, streamed from disk, signed with HMAC-SHA256 when a secret is set."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from exports.destinations.base import DestinationType, ExportFile, raise_if, register
from exports.streaming import CONTENT_TYPES
from mktintegration.errors import ConnectorError, ErrorKind
from mktintegration.http import HttpClient, check_url, retry_after_seconds

VENDOR = "https-export"
TIMEOUT = (10.0, 300.0)  # connect, read (the receiver may take a while to store a big file)
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class HttpsConfig:
    url: str
    signature_header: str

    @classmethod
    def of(cls, destination) -> HttpsConfig:
        return cls(destination.url, destination.signature_header)


def body_signature(path: Path, secret: str) -> str:
    """'sha256=' + hex HMAC-SHA256 of the file's bytes under ``secret``."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            mac.update(chunk)
    return "sha256=" + mac.hexdigest()


def url_without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@register
class Https(DestinationType):
    kind = "https"
    secret_fields = ("hmac_secret",)

    def clean(self, destination) -> None:
        errors = {}
        destination.url = (destination.url or "").strip()
        if not destination.url:
            errors["url"] = "an HTTPS destination needs a URL"
        else:
            try:
                check_url(destination.url)
            except ConnectorError as exc:
                errors["url"] = exc.message
        destination.signature_header = (destination.signature_header or "").strip()
        if not _HEADER_NAME.fullmatch(destination.signature_header):
            errors["signature_header"] = "give an HTTP header name, e.g. X-Mkt-Signature"
        raise_if(errors)

    def describe(self, destination) -> str:
        return url_without_query(destination.url)

    def deliver(self, destination, file: ExportFile, secrets: dict[str, str]) -> dict[str, Any]:
        config = HttpsConfig.of(destination)
        target = url_without_query(config.url)
        headers = {
            "Content-Type": CONTENT_TYPES[file.format],
            "X-Mkt-Export-Sha256": file.sha256,
            "X-Mkt-Export-Rows": str(file.rows),
            "X-Mkt-Export-File": file.name,
            "Idempotency-Key": f"mkt-export-run-{file.run_id}",
        }
        if secrets.get("hmac_secret"):
            headers[config.signature_header] = body_signature(file.path, secrets["hmac_secret"])
        client = HttpClient(vendor=VENDOR, ca_bundle=settings.MKT_HTTP_CA_BUNDLE, timeout=TIMEOUT)
        try:
            with file.path.open("rb") as body:
                response = client.request(
                    "POST",
                    config.url,
                    data=body,
                    headers=headers,
                    records=file.rows,
                    idempotency_key=headers["Idempotency-Key"],
                )
        except ConnectorError as exc:
            raise ConnectorError(
                f"https: POST to {target} failed: {exc.message}",
                kind=exc.kind,
                status=exc.status,
            ) from None
        finally:
            client.close()
        status = response.status_code
        if response.is_redirect:
            location = response.headers.get("Location", "")
            raise ConnectorError(
                f"https: {target} redirected the upload to {url_without_query(location)}; "
                "set the destination's URL to the final address",
                kind=ErrorKind.CONFIG,
                status=status,
            )
        if 200 <= status < 300:
            return {"url": target, "status": status}
        said = f"https: {target} answered HTTP {status} {response.reason or ''}".rstrip()
        if status == 429:
            raise ConnectorError(
                said,
                kind=ErrorKind.RATE_LIMITED,
                status=status,
                retry_after=retry_after_seconds(response),
            )
        if status >= 500:
            raise ConnectorError(said, kind=ErrorKind.TRANSIENT, status=status)
        raise ConnectorError(
            said + "; the receiver refused the file, retrying will not help",
            kind=ErrorKind.PERMANENT,
            status=status,
        )
