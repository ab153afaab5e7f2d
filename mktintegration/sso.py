"""Staff single sign-on with OpenID Connect (social-auth's generic ``OpenIdConnectAuth``).

Configured by environment variables (see docs/security.md); off unless the endpoint, client id
and client secret are all set. The identity provider's groups decide the roles:
``MKT_OIDC_ROLE_MAP="mkt-managers=Marketing Manager,mkt-auditors=Auditor"``. At every SSO
sign-in the user's role groups are replaced by the mapped ones (other groups are kept) and
``is_staff`` is set; a user none of whose groups maps to a role is refused, and loses the role
groups they had. The pipeline stores no IdP tokens (no ``load_extra_data`` step).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.conf import settings
from django.contrib import messages
from django.core import checks
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse

BACKEND_PATH = "social_core.backends.open_id_connect.OpenIdConnectAuth"
BACKEND_NAME = "oidc"

PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_names",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    # Before a user is created: refuse anyone whose groups map to no role.
    "mktintegration.sso.require_role",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.user.create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.user.user_details",
    "mktintegration.sso.apply_roles",
)

REFUSED = (
    "You signed in at your identity provider, but none of your groups there gives you a role "
    "in mktintegration, so you cannot use it. Ask an administrator to add you to one of the "
    "groups mapped to a role."
)


def role_map_parse(raw: str) -> dict[str, tuple[str, ...]]:
    """``"idp-group=Role,idp-group=Other role"`` -> {idp group: roles}. A group may be listed
    more than once (several roles); ValueError names a malformed entry."""
    mapping: dict[str, list[str]] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        group, sep, role = (item.strip() for item in entry.partition("="))
        if not sep or not group or not role:
            raise ValueError(f"MKT_OIDC_ROLE_MAP entry {entry!r} is not 'idp-group=Role name'")
        mapping.setdefault(group, [])
        if role not in mapping[group]:
            mapping[group].append(role)
    return {group: tuple(roles) for group, roles in mapping.items()}


def roles_for_groups(groups: Iterable[str], role_map: Mapping[str, Iterable[str]]) -> set[str]:
    """The roles the IdP groups map to (unknown groups map to nothing)."""
    return {role for group in groups or () for role in role_map.get(group, ())}


@transaction.atomic
def user_roles_replace(*, user, roles: Iterable[str]) -> None:
    """Make the user's role groups exactly ``roles`` (groups that are not roles are kept);
    staff when they have any role."""
    from django.contrib.auth.models import Group

    from mktintegration.roles import ROLES

    wanted = set(roles)
    unknown = wanted - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    current = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    if current - wanted:
        user.groups.remove(*Group.objects.filter(name__in=current - wanted))
    if wanted - current:
        user.groups.add(*Group.objects.filter(name__in=wanted - current))
    if wanted and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])


# --- pipeline steps (social-auth calls them with keyword arguments) ----------------------------


def require_role(strategy, backend, groups=None, user=None, *args, **kwargs):
    """Refuse a sign-in whose IdP groups map to no role (and take the role groups of a known
    user away, so an existing session loses them too); else pass the roles on."""
    roles = roles_for_groups(groups or (), settings.MKT_OIDC_ROLE_MAP)
    if not roles:
        if user is not None:
            user_roles_replace(user=user, roles=())
        messages.error(strategy.request, REFUSED)
        return HttpResponseRedirect(reverse("admin:login"))
    return {"mkt_roles": sorted(roles)}


def apply_roles(user=None, mkt_roles=(), *args, **kwargs):
    if user is not None:
        user_roles_replace(user=user, roles=mkt_roles)


# --- configuration ------------------------------------------------------------------------------


def sso_enabled() -> bool:
    return bool(getattr(settings, "MKT_OIDC_ENABLED", False))


def sso_login_url() -> str:
    """Where the "Sign in with SSO" form posts (social-auth starts sign-ins on a CSRF-checked
    POST only); empty when SSO is not configured."""
    return reverse("social:begin", args=[BACKEND_NAME]) if sso_enabled() else ""


def check_role_map(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """``manage.py check``: every role named in MKT_OIDC_ROLE_MAP exists."""
    from mktintegration.roles import ROLES

    errors = []
    mapping = getattr(settings, "MKT_OIDC_ROLE_MAP", {})
    for group, roles in mapping.items():
        for role in roles:
            if role not in ROLES:
                errors.append(
                    checks.Error(
                        f"MKT_OIDC_ROLE_MAP maps {group!r} to {role!r}, which is not a role.",
                        hint=f"Roles: {', '.join(ROLES)}.",
                        id="mktintegration.E001",
                    )
                )
    if sso_enabled() and not mapping:
        errors.append(
            checks.Warning(
                "SSO is configured but MKT_OIDC_ROLE_MAP is empty: every SSO sign-in is refused.",
                id="mktintegration.W001",
            )
        )
    return errors
