"""Export guardrails: how many rows a user may take in one request."""

from __future__ import annotations

from mktintegration.roles import ROLES

OVERRIDE_PERMISSION = "exports.override_export_limits"


def export_row_limit(user) -> int | None:
    """The most rows ``user`` may export in one request; None means no limit.

    The largest limit among the user's roles applies; the override permission (or a role
    without a limit) lifts it.
    """
    if user.is_superuser or user.has_perm(OVERRIDE_PERMISSION):
        return None
    limits = [
        ROLES[name].max_export_rows
        for name in user.groups.values_list("name", flat=True)
        if name in ROLES
    ]
    if not limits:
        return 0
    if any(limit is None for limit in limits):
        return None
    return max(limits)


def export_regions(*, user, destination=None) -> list[str] | None:
    """The data-residency regions a read may return: the user's restriction and the file
    destination's together (both must allow a region); None when neither restricts."""
    allowed: set[str] | None = None
    for restriction in (
        getattr(user, "allowed_regions", None),
        getattr(destination, "allowed_regions", None),
    ):
        if restriction:
            allowed = set(restriction) if allowed is None else allowed & set(restriction)
    return None if allowed is None else sorted(allowed)
