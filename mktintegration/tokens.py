"""Creating and checking API tokens (``mkt_<public_id>_<secret>``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from mktintegration.models import ApiToken, User
from mktintegration.scopes import scope_validate

PREFIX = "mkt_"
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenError(Exception):
    """The presented token is not valid; the message says why (no secret in it)."""


def _hash(secret: str) -> str:
    key = (settings.MKT_TOKEN_PEPPER or "mktintegration-api-token-v1").encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def token_create(
    *,
    user: User,
    name: str,
    scopes: list[str],
    expires_days: int | None = None,
    created_by: User | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns it and the full secret, which is never available again."""
    if not user.is_active:
        raise ValueError(f"user {user.username} is inactive")
    if expires_days is not None and expires_days < 1:
        raise ValueError("expires_days must be at least 1")
    public_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        public_id=public_id,
        secret_hash=_hash(secret),
        scopes=scope_validate(scopes),
        created_by=created_by,
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    return token, f"{PREFIX}{public_id}_{secret}"


def token_authenticate(raw: str, *, address: str | None = None) -> ApiToken:
    """The token a raw value names, if it is valid now; TokenError otherwise."""
    if not raw.startswith(PREFIX) or raw.count("_") < 2:
        raise TokenError("malformed API token")
    public_id, _, secret = raw[len(PREFIX) :].partition("_")
    token = ApiToken.objects.select_related("user").filter(public_id=public_id).first()
    # Compare even when the id is unknown, so timing does not tell ids apart.
    expected = token.secret_hash if token else _hash("unknown")
    if not hmac.compare_digest(expected, _hash(secret)) or token is None:
        raise TokenError("invalid API token")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenError("this API token was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenError("this API token has expired")
    if not token.user.is_active:
        raise TokenError("this API token's user is inactive")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_address=address)
    return token


def token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
