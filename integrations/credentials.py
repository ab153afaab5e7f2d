"""Every write of a connection's credentials goes through here: the admin's connection form,
the configure API, the OAuth callback (Connect, Reconnect, Disconnect) and token renewals.

``credentials_plan`` works out what would be stored (and what is missing or unknown) from what
a person gave: a secret left blank keeps the stored one, ``clear`` drops them all, and only the
secrets of the connection's auth kind are kept. For a token-managed auth kind the tokens are
kept too (they came by Connect); giving a seed token (``refresh_token`` in the configure API)
starts a new grant and drops the old grant's tokens.

``connection_credentials_save`` stores them encrypted (a person's change: the change history
names which secrets changed, never their values) and keeps the connection's ``OAuthGrant`` in
step. ``connection_tokens_renewed`` stores what a renewal brought, with no change-history entry
and without touching ``updated_at`` (a renewal changes no configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.connectors import REGISTRY
from integrations.models import Connection, GrantState, OAuthGrant
from integrations.oauth.backends import TokenAnswer
from integrations.oauth.flows import CLIENT_CREDENTIALS, TokenFlow
from mktintegration.crypto import encrypt_secrets

TOKEN_SECRETS = ("access_token", "refresh_token")


@dataclass
class CredentialsPlan:
    values: dict[str, str]  # what would be stored
    changed: bool
    problems: list[tuple[str, str]] = field(default_factory=list)  # (secret name, message)


def _flow(connection) -> TokenFlow | None:
    connector = REGISTRY.get(connection.vendor)
    return connector.token_flows.get(connection.auth_kind) if connector else None


def _stored(connection) -> dict[str, str]:
    if not connection.pk:
        return {}
    row = Connection.objects.filter(pk=connection.pk).first()
    return row.get_credentials() if row is not None else {}


def credentials_plan(
    *, connection: Connection, given: Mapping[str, str], clear: bool = False, seeding: bool = False
) -> CredentialsPlan:
    """What the connection would store given these secrets. ``seeding``: the caller may give
    what the auth kind's flow takes instead of a Connect (the configure API)."""
    connector = REGISTRY.get(connection.vendor)
    if connector is None:
        return CredentialsPlan({}, False)
    kind = connection.auth_kind
    typed = connector.secret_fields.get(kind, ())
    flow = connector.token_flows.get(kind)
    seeds = flow.seed_secrets if flow is not None and seeding else ()
    accepted = (*typed, *seeds)
    problems = [
        (
            name,
            f"{connector.label} ({kind}) has no secret {name!r}; its secrets: "
            f"{', '.join(accepted) or 'none'}",
        )
        for name in given
        if name not in accepted
    ]
    stored = _stored(connection)
    kept = {} if clear else stored
    new = {name: value for name, value in given.items() if name in accepted and value}
    keep = set(typed)
    if flow is not None and not any(name in new for name in seeds):
        keep |= set(TOKEN_SECRETS)  # tokens stay unless a seed starts a new grant
    wanted = {name: value for name, value in kept.items() if name in keep}
    wanted.update(new)
    problems += [
        (name, f"{connector.label} needs {name!r} for auth kind {kind}")
        for name in typed
        if not wanted.get(name)
    ]
    return CredentialsPlan(wanted, wanted != stored, problems)


def connection_credentials_save(
    *,
    connection: Connection,
    values: Mapping[str, str],
    answer: TokenAnswer | None = None,
    user=None,
    commit: bool = True,
) -> Connection:
    """Store ``values`` as the connection's credentials. ``answer``: what the vendor said at a
    Connect (the account, scopes, expiry). ``commit=False`` only sets them on the instance (the
    configure API checks a document before it writes it)."""
    connection.set_credentials(dict(values))
    # A new secret: the destination's cached field list and the engine's cached context go.
    connection.updated_at = timezone.now()
    if not commit:
        return connection
    with transaction.atomic():
        before = _stored(connection)
        connection.save()
        _grant_write(connection, dict(values), before=before, answer=answer, user=user)
    return connection


def _expiries(
    flow: TokenFlow, values: Mapping[str, str], answer: TokenAnswer, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """When the access token expires, and when the grant stops working unless someone
    reconnects (None: no known end): a refresh token's stated lifetime, else the access
    token's own when nothing can renew it."""
    token = now + timedelta(seconds=answer.expires_in) if answer.expires_in else None
    if flow.kind == CLIENT_CREDENTIALS:
        return token, None  # the connection's own secret buys the next one
    if values.get("refresh_token") and flow.renewable:
        lasts = answer.refresh_expires_in
        return token, now + timedelta(seconds=lasts) if lasts else None
    return token, token


def _grant_write(connection, values, *, before, answer, user) -> None:
    flow = _flow(connection)
    if flow is None:
        OAuthGrant.objects.filter(pk=connection.pk).delete()  # a static secret has no grant
        return
    grant, _ = OAuthGrant.objects.get_or_create(connection=connection)
    now = timezone.now()
    tokens = {name: values[name] for name in TOKEN_SECRETS if values.get(name)}
    previous = {name: before[name] for name in TOKEN_SECRETS if before.get(name)}
    if answer is not None:  # a Connect or Reconnect
        grant.token_expires_at, grant.expires_at = _expiries(flow, values, answer, now)
        grant.account_id, grant.account_name = answer.account_id, answer.account_name
        grant.region, grant.api_endpoint = answer.region, answer.api_endpoint
        grant.scopes = list(answer.scopes or ())
    elif tokens != previous or (flow.kind == CLIENT_CREDENTIALS and dict(values) != before):
        # Seeded (configure API), removed, or new client credentials: nothing known yet.
        grant.token_expires_at = grant.expires_at = None
        grant.account_id = grant.account_name = grant.region = grant.api_endpoint = ""
        grant.scopes = []
    else:
        return  # the same grant: only other settings changed
    connected = bool(tokens) or (flow.kind == CLIENT_CREDENTIALS and bool(values))
    grant.state = GrantState.CONNECTED if connected else GrantState.NOT_CONNECTED
    grant.reason = ""
    grant.connected_at = now if connected else None
    grant.connected_by = user if connected else None
    grant.version += 1
    grant.save()


def connection_tokens_renewed(
    *,
    connection_id: int,
    flow: TokenFlow,
    before: Mapping[str, str],
    values: Mapping[str, str],
    answer: TokenAnswer,
) -> None:
    """Store what a renewal brought (the lifecycle holds the connection's renewal lock)."""
    now = timezone.now()
    token_expires_at, expires_at = _expiries(flow, values, answer, now)
    same_refresh_token = values.get("refresh_token") == before.get("refresh_token")
    changes = {
        "token_expires_at": token_expires_at,
        "refreshed_at": now,
        "state": GrantState.CONNECTED,
        "reason": "",
        "version": F("version") + 1,
    }
    if not (same_refresh_token and expires_at is None and values.get("refresh_token")):
        changes["expires_at"] = expires_at  # else the refresh token's known end stays
    if answer.scopes is not None:
        changes["scopes"] = list(answer.scopes)
    if answer.account_id:
        changes["account_id"] = answer.account_id
    if answer.api_endpoint:  # Salesforce: each token answer names the org's instance
        changes["api_endpoint"] = answer.api_endpoint
    with transaction.atomic():
        Connection.objects.filter(pk=connection_id).update(
            credentials_ciphertext=encrypt_secrets(dict(values))
        )
        OAuthGrant.objects.filter(pk=connection_id).update(**changes)
