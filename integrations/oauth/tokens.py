"""The access token of one connection, renewed when due, one renewal at a time.

``TokenSource.access_token()`` gives the token to send: the stored one while it has more than
MKT_OAUTH_REFRESH_MARGIN_SECONDS to live, else a renewed one (refresh token, or the
connection's client credentials). ``after_rejection(token)`` is what a 401 calls: the token
is renewed once (``Connector.send`` then sends the request once more).

Renewals are single-flight across every worker (``lock.renewal_lock``): the holder reads the
tokens again under the lock, asks the vendor, and stores the answer (a rotated refresh token
included) before it lets go; the others wait, then find the new version and use it. Nothing
is cached across tasks: each worker reads the stored tokens when its copy is due.

What can go wrong, and what the caller sees (a ``ConnectorError``, so the engine needs no
OAuth knowledge):

- the vendor refuses the grant for good (``invalid_grant``): the connection is marked
  "reconnect" and its syncs paused with a link to Reconnect; an AUTH error;
- the token endpoint is down, slow or answers nonsense: a RATE_LIMITED error with a wait, so
  a batch waits and tries again and no record spends an attempt or is marked failed;
- the app's client id or secret is refused: CONFIG (settings), or AUTH for a connection's
  own client credentials.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from social_core.exceptions import (
    AuthConfigurationError,
    AuthCredentialError,
    SocialAuthBaseException,
)

from integrations.credentials import connection_tokens_renewed
from integrations.models import Connection, GrantState, OAuthGrant
from integrations.oauth.backends import TokenAnswer, connect_strategy
from integrations.oauth.flows import CLIENT_CREDENTIALS, TokenFlow
from integrations.oauth.lock import renewal_lock
from mktintegration.crypto import decrypt_secrets
from mktintegration.errors import ConnectorError, ErrorKind

log = logging.getLogger(__name__)
WAIT_SECONDS = 30.0  # how long a worker waits for another worker's renewal
RETRY_SECONDS = 30.0  # a token endpoint that gave no token: the batch waits this long


class TokenSource:
    def __init__(self, *, connection, flow: TokenFlow, label: str):
        self.connection = connection
        self.flow = flow
        self.label = label
        self._token = ""
        self._expires: datetime | None = None
        self._grant: OAuthGrant | None = None

    # --- what a connector asks -------------------------------------------------------------
    def access_token(self) -> str:
        if self._token and not self._due(self._expires):
            return self._token
        credentials, grant = self._load()
        token = credentials.get("access_token", "")
        if token and not self._due(grant.token_expires_at):
            return self._remember(token, grant)
        if not self._can_renew(credentials):
            if token:
                return self._remember(token, grant)  # nothing renews it: the vendor will say
            raise self._not_connected()
        return self._renew(seen=grant.version)

    def grant(self, *, fresh: bool = False) -> OAuthGrant:
        """The connection's grant as stored (account, API address, scopes); ``fresh``: read
        again (after a renewal that may have brought the API address)."""
        if self._grant is None or fresh:
            self._grant = self._load()[1]
        return self._grant

    def after_rejection(self, rejected: str | None) -> str | None:
        """The vendor refused ``rejected`` (401): a renewed token to send once more, or None
        when nothing can renew it."""
        if not self.flow.renewable:
            return None
        credentials, grant = self._load()
        if not self._can_renew(credentials):
            return None
        current = credentials.get("access_token", "")
        if current and current != rejected:
            return self._remember(current, grant)  # another worker renewed it meanwhile
        return self._renew(seen=grant.version, force=True)

    # --- inside ------------------------------------------------------------------------------
    def _load(self) -> tuple[dict[str, str], OAuthGrant]:
        pk = self.connection.pk
        if pk is None:
            raise self._not_connected()
        ciphertext = (
            Connection.objects.filter(pk=pk)
            .values_list("credentials_ciphertext", flat=True)
            .first()
        )
        grant, _ = OAuthGrant.objects.get_or_create(connection_id=pk)
        if grant.state == GrantState.RECONNECT:
            raise ConnectorError(self.with_link(grant.reason), kind=ErrorKind.AUTH)
        return decrypt_secrets(ciphertext or ""), grant

    def _remember(self, token: str, grant: OAuthGrant) -> str:
        self._token, self._expires = token, grant.token_expires_at
        return token

    def _due(self, expires: datetime | None) -> bool:
        margin = self.flow.renew_margin_seconds
        if margin is None:
            margin = settings.MKT_OAUTH_REFRESH_MARGIN_SECONDS
        return expires is not None and expires - timezone.now() <= timedelta(seconds=margin)

    def _can_renew(self, credentials: dict[str, str]) -> bool:
        if self.flow.kind == CLIENT_CREDENTIALS:
            return bool(credentials.get("client_id") and credentials.get("client_secret"))
        return self.flow.renewable and bool(credentials.get("refresh_token"))

    def _renew(self, *, seen: int, force: bool = False) -> str:
        if self.flow.rotates_refresh_tokens and transaction.get_connection().in_atomic_block:
            raise ConnectorError(
                f"{self.label}: the access token is due, and its rotating refresh token is not "
                "renewed inside a transaction that could roll the new one back; the next run "
                "renews it",
                kind=ErrorKind.RATE_LIMITED,
                retry_after=RETRY_SECONDS,
            )
        with renewal_lock(self.connection.pk, wait=WAIT_SECONDS) as held:
            if not held:
                raise ConnectorError(
                    f"{self.label}: another worker is still renewing the access token; "
                    "trying again shortly",
                    kind=ErrorKind.RATE_LIMITED,
                    retry_after=5.0,
                )
            credentials, grant = self._load()
            token = credentials.get("access_token", "")
            renewed_meanwhile = grant.version != seen and token
            if renewed_meanwhile and (force or not self._due(grant.token_expires_at)):
                return self._remember(token, grant)
            answer = self._ask(credentials)
            values = {**credentials, "access_token": answer.access_token}
            if answer.refresh_token:
                values["refresh_token"] = answer.refresh_token  # rotated: stored before use
            connection_tokens_renewed(
                connection_id=self.connection.pk,
                flow=self.flow,
                before=credentials,
                values=values,
                answer=answer,
            )
            grant.refresh_from_db()
            log.info("connection %s: access token renewed", self.connection.pk)
            return self._remember(answer.access_token, grant)

    def _ask(self, credentials: dict[str, str]) -> TokenAnswer:
        backend = self.flow.backend(
            connect_strategy(),
            None,
            connection=self.connection,
            flow=self.flow,
            secrets=credentials,
        )
        try:
            if self.flow.kind == CLIENT_CREDENTIALS:
                return backend.fetch()
            return backend.refresh(credentials["refresh_token"])
        except AuthCredentialError as exc:
            raise self._grant_refused(exc) from None
        except AuthConfigurationError as exc:
            raise self._client_refused(exc) from None
        except SocialAuthBaseException as exc:
            why = exc.provider_code or exc.code
            raise self._wait(f"it answered {exc.status_code or 'an error'} ({why})") from None
        except ConnectorError as exc:
            if exc.kind == ErrorKind.CONFIG:
                raise  # an address or host this connection may not reach
            raise self._wait(exc.message) from None

    # --- errors ------------------------------------------------------------------------------
    def _wait(self, why: str) -> ConnectorError:
        return ConnectorError(
            f"{self.label}: the token endpoint gave no token ({why}); the records wait and are "
            f"sent once it does (next try in {RETRY_SECONDS:.0f} s)",
            kind=ErrorKind.RATE_LIMITED,
            retry_after=RETRY_SECONDS,
        )

    def _grant_refused(self, exc: SocialAuthBaseException) -> ConnectorError:
        from integrations.oauth.connect import connection_reconnect_needed

        if self.flow.kind == CLIENT_CREDENTIALS:
            return self._client_refused(exc)
        reason = (
            f"reconnect: {self.label} no longer accepts this connection's authorization "
            f"({exc.provider_code or exc.code}); until someone reconnects it, its syncs are "
            "paused."
        )
        connection_reconnect_needed(connection=self.connection, reason=reason)
        return ConnectorError(self.with_link(reason), kind=ErrorKind.AUTH)

    def _client_refused(self, exc: SocialAuthBaseException) -> ConnectorError:
        why = exc.provider_code or exc.code
        if self.flow.kind == CLIENT_CREDENTIALS:
            status = f" with HTTP {exc.status_code}" if exc.status_code else ""
            return ConnectorError(
                f"{self.label} refused the connection's client id and secret ({why}){status}: "
                "enter them again on the connection's page",
                kind=ErrorKind.AUTH,
            )
        return ConnectorError(
            f"{self.label} refused this installation's OAuth app ({why}): check "
            f"{self.flow.setting_names()}",
            kind=ErrorKind.CONFIG,
        )

    def _not_connected(self) -> ConnectorError:
        if self.flow.kind == CLIENT_CREDENTIALS:
            what = "has no client id and secret yet: enter them on the connection's page"
            return ConnectorError(f"{self.label}: this connection {what}", kind=ErrorKind.AUTH)
        return ConnectorError(
            self.with_link(
                f"{self.label}: this connection is not connected to a {self.label} account yet.",
                verb="Connect",
            ),
            kind=ErrorKind.AUTH,
        )

    def with_link(self, text: str, *, verb: str = "Reconnect") -> str:
        """``text`` with where to (re)connect the connection (client credentials: its page)."""
        from integrations.oauth.connect import connect_url

        if self.flow.kind == CLIENT_CREDENTIALS or self.connection.pk is None:
            return text
        return f"{text} {verb} it at {connect_url(self.connection)}"
