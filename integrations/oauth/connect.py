"""Connect, Reconnect and Disconnect: what the admin's connection pages call.

Connect (Reconnect is the same for a connection that was connected before):

1. ``connect_begin``: social-core's backend builds the vendor's authorization URL with a new
   ``state`` (kept in the session with its time, single use, and with PKCE its verifier); the
   session also notes which connection and which signed-in user the state was made for.
2. The vendor's consent page, then its redirect back to ``callback_url(vendor)``.
3. ``connect_complete``: the state must be one this session made for this user, unused and
   not older than MKT_OAUTH_STATE_MINUTES; a vendor error (access denied) stops there; the
   code is exchanged for tokens; the granted scopes must include the flow's. The tokens are
   stored through ``integrations.credentials`` and the connection is tested; syncs the lost
   authorization had paused are resumed.

Whatever is refused raises ``ConnectRefused`` with a sentence for the person, before anything
is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from social_core.exceptions import (
    AuthCanceled,
    AuthInputError,
    AuthSessionError,
    SocialAuthBaseException,
)

from integrations.connectors import REGISTRY
from integrations.credentials import TOKEN_SECRETS, connection_credentials_save
from integrations.models import Connection, ConnectionStatus, GrantState, OAuthGrant, Sync
from integrations.oauth.backends import TokenAnswer, connect_strategy
from integrations.oauth.flows import AuthorizationCode, flow_for
from mktintegration.errors import ConnectorError
from mktintegration.http import check_url

SESSION_KEY = "mkt_oauth_connects"
# Pause reasons of syncs that a lost authorization paused (ours, and the engine's on a 401):
# resumed by a successful Reconnect.
_AUTH_PAUSES = ("reconnect:", "auth:")


class ConnectRefused(Exception):
    """A Connect that stops here; ``message`` is for the person, nothing was changed."""

    def __init__(self, message: str, *, connection: Connection | None = None):
        super().__init__(message)
        self.message = message
        self.connection = connection


@dataclass
class ConnectResult:
    connection: Connection
    answer: TokenAnswer
    test_ok: bool
    test_message: str
    resumed: list[str] = field(default_factory=list)


@dataclass
class DisconnectResult:
    revoked: bool | None  # None: the vendor has no revoke endpoint
    message: str


def callback_url(vendor: str) -> str:
    """The redirect URI to register at the vendor's app (one per vendor, the state says which
    connection)."""
    return settings.MKT_BASE_URL + reverse(
        "admin:integrations_connection_oauth_callback", args=[vendor]
    )


def connect_url(connection: Connection) -> str:
    return settings.MKT_BASE_URL + reverse(
        "admin:integrations_connection_connect", args=[connection.pk]
    )


def authorization_code_flow(connection: Connection) -> AuthorizationCode:
    """The connection's Connect flow, or ConnectRefused saying why there is none."""
    connector = REGISTRY.get(connection.vendor)
    flow = flow_for(connection)
    if connector is None or not isinstance(flow, AuthorizationCode):
        kinds = [
            kind
            for kind, f in (connector.token_flows.items() if connector else ())
            if isinstance(f, AuthorizationCode)
        ]
        hint = f" (choose auth kind {', '.join(kinds)} first)" if kinds else ""
        raise ConnectRefused(
            f"Connection {connection.name!r} uses {connection.auth_kind!r}, which is not "
            f"connected by OAuth{hint}.",
            connection=connection,
        )
    if not flow.configured():
        raise ConnectRefused(
            f"{connector.label} OAuth is not set up on this installation: an administrator "
            f"sets {flow.setting_names()} (see docs/connectors/{connection.vendor}.md).",
            connection=connection,
        )
    return flow


def consent_origin(request, connection: Connection) -> str:
    """The origin of the vendor's consent page for this connection ('' when it has none): a
    page whose form posts Connect lets its Content-Security-Policy's ``form-action`` follow
    our redirect there (the browser checks every redirect after a form's submission)."""
    try:
        flow = authorization_code_flow(connection)
    except ConnectRefused:
        return ""
    parts = urlsplit(_backend(request, connection, flow).AUTHORIZATION_URL or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _backend(request, connection: Connection, flow: AuthorizationCode):
    return flow.backend(
        connect_strategy(request),
        callback_url(connection.vendor),
        connection=connection,
        flow=flow,
    )


def _pending(request) -> dict:
    """The session's Connects in progress: state -> connection, user and start time."""
    pending = request.session.get(SESSION_KEY)
    lifetime = settings.MKT_OAUTH_STATE_MINUTES * 60
    now = int(time.time())
    if not isinstance(pending, dict):
        return {}
    return {
        state: entry
        for state, entry in pending.items()
        if isinstance(entry, dict) and now - int(entry.get("at", 0)) <= lifetime
    }


def connect_begin(*, request, connection: Connection) -> str:
    """The vendor's authorization URL to send the signed-in user to."""
    flow = authorization_code_flow(connection)
    url = _backend(request, connection, flow).auth_url()
    state = parse_qs(urlsplit(url).query).get("state", [""])[0]
    pending = _pending(request)
    pending[state] = {"connection": connection.pk, "user": request.user.pk, "at": int(time.time())}
    request.session[SESSION_KEY] = pending
    return url


_STATE_REFUSED = (
    "This sign-in answer from {label} does not belong to a Connect started here by you in the "
    "last {minutes} minutes, or it was used already. Nothing was changed. Start again with "
    "Connect on the connection's page."
)


def connect_complete(*, request, vendor: str, may_connect) -> ConnectResult:
    """Finish a Connect from the vendor's redirect (``request.GET``: code and state, or an
    error). ``may_connect(connection)``: whether the user may still connect it."""
    connector = REGISTRY.get(vendor)
    label = connector.label if connector else vendor
    refused = _STATE_REFUSED.format(label=label, minutes=settings.MKT_OAUTH_STATE_MINUTES)
    state = request.GET.get("state", "")
    pending = request.session.get(SESSION_KEY) or {}
    binding = pending.pop(state, None) if isinstance(pending, dict) and state else None
    if binding is not None:
        request.session[SESSION_KEY] = pending  # used once, whatever happens next
    if not isinstance(binding, dict) or binding.get("user") != request.user.pk:
        raise ConnectRefused(refused)
    connection = Connection.objects.filter(pk=binding.get("connection"), vendor=vendor).first()
    if connection is None or not may_connect(connection):
        raise ConnectRefused(refused)
    flow = authorization_code_flow(connection)
    backend = _backend(request, connection, flow)
    try:
        response = backend.auth_complete()
    except AuthCanceled as exc:
        detail = f" ({exc.detail})" if exc.detail else ""
        raise ConnectRefused(
            f"{label} did not grant access{detail}. Connection {connection.name!r} is unchanged.",
            connection=connection,
        ) from None
    except (AuthSessionError, AuthInputError):
        raise ConnectRefused(refused, connection=connection) from None
    except SocialAuthBaseException as exc:
        why = exc.provider_code or exc.code
        detail = f": {exc.detail}" if exc.detail else ""
        raise ConnectRefused(
            f"{label} refused to complete the connection ({why}{detail}). Connection "
            f"{connection.name!r} is unchanged; try Connect again.",
            connection=connection,
        ) from None
    except ConnectorError as exc:
        raise ConnectRefused(
            f"{label} could not be reached to complete the connection ({exc.message}). "
            f"Connection {connection.name!r} is unchanged; try Connect again.",
            connection=connection,
        ) from None
    answer = backend.token_answer(response)
    _check_answer(connection, flow, answer, label)
    values = {
        name: value
        for name, value in connection.get_credentials().items()
        if name not in TOKEN_SECRETS
    }
    values["access_token"] = answer.access_token
    if answer.refresh_token:
        values["refresh_token"] = answer.refresh_token
    connection_credentials_save(
        connection=connection, values=values, answer=answer, user=request.user
    )
    from integrations import services

    ok, message = services.connection_test(connection=connection)
    resumed = _resume_auth_pauses(connection) if ok else []
    return ConnectResult(connection, answer, ok, message, resumed)


def _check_answer(connection, flow, answer: TokenAnswer, label: str) -> None:
    if answer.scopes is not None:
        missing = [scope for scope in flow.scopes if scope not in answer.scopes]
        if missing:
            raise ConnectRefused(
                f"{label} granted {', '.join(answer.scopes) or 'no scopes'}, but connection "
                f"{connection.name!r} needs {', '.join(missing)} too. It is unchanged; connect "
                "again and allow them (or have the app at the vendor ask for them).",
                connection=connection,
            )
    if answer.api_endpoint:
        try:
            check_url(answer.api_endpoint, allowed_hosts=REGISTRY[connection.vendor].allowed_hosts)
        except ConnectorError as exc:
            raise ConnectRefused(
                f"{label} named an API address this installation does not send to ({exc}). "
                f"Connection {connection.name!r} is unchanged.",
                connection=connection,
            ) from None


def _resume_auth_pauses(connection: Connection) -> list[str]:
    from integrations import services

    resumed = []
    for sync in Sync.objects.filter(connection=connection, paused=True):
        if sync.pause_reason.startswith(_AUTH_PAUSES):
            services.sync_set_paused(sync=sync, paused=False)
            resumed.append(sync.name)
    return resumed


def connection_disconnect(*, connection: Connection, user) -> DisconnectResult:
    """Revoke the grant at the vendor where it can be, and forget the tokens here either way;
    the connection's syncs are paused (they have nothing to send with)."""
    flow = authorization_code_flow(connection)
    label = REGISTRY[connection.vendor].label
    stored = connection.get_credentials()
    token = stored.get("refresh_token") or stored.get("access_token")
    revoked: bool | None = None
    if not flow.revokes:
        said = (
            f"{label} has no endpoint to revoke a token: it stays valid at {label} until the "
            "account's owner removes this app's access there."
        )
    elif not token:
        revoked, said = True, "There was no token to revoke."
    else:
        try:
            _backend(None, connection, flow).revoke(token)
            revoked, said = True, f"{label} revoked the authorization."
        except (SocialAuthBaseException, ConnectorError) as exc:
            why = getattr(exc, "provider_code", None) or getattr(exc, "code", None) or exc
            revoked = False
            said = f"{label} could not revoke it ({why}): remove this app's access in {label} too."
    values = {name: value for name, value in stored.items() if name not in TOKEN_SECRETS}
    connection_credentials_save(connection=connection, values=values, user=user)
    Connection.objects.filter(pk=connection.pk).update(
        status=ConnectionStatus.UNTESTED, last_error=""
    )
    from integrations import services

    for sync in Sync.objects.filter(connection=connection, paused=False):
        services.sync_set_paused(
            sync=sync, paused=True, reason=f"paused by {user}: its connection was disconnected"
        )
    return DisconnectResult(revoked, f"Disconnected; the tokens were deleted here. {said}")


def connection_reconnect_needed(*, connection: Connection, reason: str) -> None:
    """The vendor refused the grant for good: mark it, pause the connection's syncs with the
    reason and a link to Reconnect, and alert."""
    from integrations import services
    from integrations.alerts import alert_connection_auth

    with_link = f"{reason} Reconnect it at {connect_url(connection)}"
    grant, _ = OAuthGrant.objects.get_or_create(connection_id=connection.pk)
    grant.state, grant.reason = GrantState.RECONNECT, reason[:500]
    grant.save(update_fields=["state", "reason"])  # in the change history
    Connection.objects.filter(pk=connection.pk).update(
        status=ConnectionStatus.AUTH_FAILED, last_error=with_link, last_checked_at=timezone.now()
    )
    for sync in Sync.objects.filter(connection=connection, paused=False):
        services.sync_set_paused(sync=sync, paused=True, reason=with_link)
    alert_connection_auth(connection_id=connection.pk)
