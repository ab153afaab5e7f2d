"""Who creates a granted object (a connection, a sync, an export schedule) is granted it: the
one place that says with which permissions. The admin (``ObjectPermissionAdmin.save_model``),
the configure API and the export services all call ``creator_grant``."""

from __future__ import annotations

from guardian.shortcuts import assign_perm

# model label -> the object permissions (codenames of its app) its creator gets.
CREATOR_PERMS: dict[str, tuple[str, ...]] = {
    "integrations.connection": (
        "view_connection",
        "change_connection",
        "delete_connection",
        "test_connection",
        "connect_connection",
        "disconnect_connection",
    ),
    "integrations.sync": (
        "view_sync",
        "change_sync",
        "delete_sync",
        "run_sync",
        "preview_sync",
        "pause_sync",
    ),
    "exports.exportschedule": (
        "view_exportschedule",
        "change_exportschedule",
        "delete_exportschedule",
        "run_exportschedule",
    ),
}


def creator_grant(*, obj, user) -> None:
    """Grant ``user`` the object permissions the creator of ``obj`` gets."""
    opts = obj._meta
    for codename in CREATOR_PERMS[opts.label_lower]:
        assign_perm(f"{opts.app_label}.{codename}", user, obj)
