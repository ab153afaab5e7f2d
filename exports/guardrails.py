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
