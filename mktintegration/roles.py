"""The roles matrix: which permissions each role's group holds. The one place to change it.

``apply_roles()`` makes the groups match this matrix exactly (idempotent); it runs after
every ``migrate`` and from ``python manage.py setup_roles``. Object-level grants (which
Connection, Sync or ExportSchedule a user may touch) are given per object with
django-guardian and are not part of this matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.db import transaction


def view(app_label: str, *models: str) -> frozenset[str]:
    return frozenset(f"{app_label}.view_{model}" for model in models)


def manage(app_label: str, *models: str) -> frozenset[str]:
    return frozenset(
        f"{app_label}.{action}_{model}"
        for model in models
        for action in ("add", "change", "delete", "view")
    )


MARKETING_MANAGER = "Marketing Manager"
MARKETING_ANALYST = "Marketing Analyst"
INTEGRATION_ADMIN = "Integration Admin"
AUDITOR = "Auditor"
API_CLIENT = "API client"


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    permissions: frozenset[str]
    # The most rows one export request may return (None: no limit). Users in several roles
    # get the largest; exports.override_export_limits lifts it.
    max_export_rows: int | None = 0


# Reading the backbone in the admin. Contacts and consent are personal data.
_BACKBONE_BUSINESS = view("backbone", "company", "companymetrics", "metricsrefresh", "segment")
_BACKBONE_PERSONAL = view("backbone", "contact", "activityevent", "consentrecord")
_EXPORT_BUSINESS = frozenset({"exports.export_clients", "exports.export_metrics"})
_EXPORT_ALL = _EXPORT_BUSINESS | {"exports.export_contacts"}
# Scheduled files. Managers create schedules and are granted the ones they create (object
# grants); destinations hold credentials, so only Integration Admins change them.
_SCHEDULED_EXPORTS = ("exportschedule", "exportdestination", "exportrun")
# The "Object permissions" pages of granted objects (django-guardian).
_GRANT_PAGES = frozenset(
    {
        "guardian.view_userobjectpermission",
        "guardian.change_userobjectpermission",
        "guardian.view_groupobjectpermission",
        "guardian.change_groupobjectpermission",
    }
)

# Syncs. Managers create syncs and are granted the ones they create, and see the runs and
# the dead letters of the syncs granted to them (a letter's payload only where they may
# export the sync's dataset; the ledger holds personal data);
# connections hold credentials, so Integration Admins create and change them and grant them
# to managers. Connecting a connection to a vendor account by OAuth (and disconnecting it) is
# its own permission: Integration Admins hold it, and may grant it on one connection to a
# manager, who then connects it without ever seeing a secret.
_SYNC_CONFIG = manage("integrations", "fieldmapping") | {"integrations.add_sync"}
_SYNC_ADMIN = (
    manage("integrations", "connection", "sync", "fieldmapping")
    | view("integrations", "syncrun", "deadletter", "ledgerentry")
    | {
        "integrations.test_connection",
        "integrations.connect_connection",
        "integrations.disconnect_connection",
        "integrations.run_sync",
        "integrations.preview_sync",
        "integrations.pause_sync",
        "integrations.replay_deadletters",
        "integrations.override_guardrails",
    }
)
_SYNC_READ = view("integrations", "connection", "sync", "fieldmapping", "syncrun")
# Feedback from vendors: received events show e-mail addresses (Integration Admins only); the
# opt-outs and refusal counts hold ids and numbers. Receiver secrets are generated (shown once)
# and rotated by Integration Admins, like credentials.
_FEEDBACK_ADMIN = (
    view("webhooks", "webhookevent", "suppression", "feedbackpoll", "webhookrefusal")
    | {"webhooks.change_suppression"}
    | {"webhooks.add_webhookendpoint", "webhooks.change_webhookendpoint"}
    | view("webhooks", "webhookendpoint")
    | view("events_out", "outboxevent")
)
_FEEDBACK_READ = view("webhooks", "suppression", "webhookrefusal")
# Operations: the dashboard (it shows only granted objects), alert recipients and history.
_DASHBOARD = frozenset({"operations.view_dashboard"})
_ANNOUNCE_CHANGES = frozenset({"integrations.announce_changes"})  # POST /marketing/events
_ALERTS_ADMIN = manage("operations", "alertrecipients") | view("operations", "alert", "alertstate")
_ALERTS_READ = view("operations", "alertrecipients", "alert", "alertstate")

# Auditors download what they browse (each download is itself access-logged).
_AUDIT_DOWNLOADS = frozenset(
    {"audit.download_accesslog", "audit.download_outboundlog", "audit.download_changehistory"}
)
# Which consent decision allowed each send (no payload, no match value): browse and download.
_CONSENT_EVIDENCE = frozenset(
    {"integrations.view_consentevidence", "integrations.download_consentevidence"}
)
# API tokens (create, shown once) and service certificates (register): list, revoke; never
# deleted, so their history stays.
_API_TOKENS = frozenset(
    {
        "mktintegration.add_apitoken",
        "mktintegration.change_apitoken",
        "mktintegration.view_apitoken",
        "mktintegration.add_servicecertificate",
        "mktintegration.change_servicecertificate",
        "mktintegration.view_servicecertificate",
    }
)

ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role(
            MARKETING_MANAGER,
            "Configures the connections, syncs, schedules and mappings granted to them; "
            "runs and previews them.",
            _BACKBONE_BUSINESS
            | _BACKBONE_PERSONAL
            | _EXPORT_BUSINESS
            | {"exports.add_exportschedule"}
            | view("exports", "exportdestination", "exportrun")
            | _SYNC_CONFIG
            | view("integrations", "syncrun", "deadletter")
            | _DASHBOARD,
            max_export_rows=250_000,
        ),
        Role(
            MARKETING_ANALYST,
            "Reads the datasets and exports them.",
            _BACKBONE_BUSINESS
            | view("backbone", "contact", "activityevent")
            | _EXPORT_ALL
            | view("exports", "exportrun"),
            max_export_rows=1_000_000,
        ),
        Role(
            INTEGRATION_ADMIN,
            "Owns credentials and every integration object; replays dead letters and "
            "overrides guardrails.",
            _BACKBONE_BUSINESS
            | _BACKBONE_PERSONAL
            | _EXPORT_ALL
            | {"exports.override_export_limits"}
            | manage("exports", *_SCHEDULED_EXPORTS)
            | {"exports.run_exportschedule"}
            | _GRANT_PAGES
            | _SYNC_ADMIN
            | _CONSENT_EVIDENCE
            | view("mktintegration", "workerheartbeat")
            | _API_TOKENS
            | _DASHBOARD
            | _ALERTS_ADMIN
            | _FEEDBACK_ADMIN
            | _ANNOUNCE_CHANGES,
            max_export_rows=None,
        ),
        Role(
            AUDITOR,
            "Reads the change history, the access and outbound logs and the consent evidence of "
            "each send; exports no data and changes nothing.",
            view("auditlog", "logentry")
            | view("audit", "accesslog", "outboundlog")
            | _AUDIT_DOWNLOADS
            | _CONSENT_EVIDENCE
            | view("exports", *_SCHEDULED_EXPORTS)
            | _SYNC_READ
            | _DASHBOARD
            | _ALERTS_READ
            | _FEEDBACK_READ,
        ),
        Role(
            API_CLIENT,
            "Service accounts of BI and marketing tools: export through API tokens; other "
            "services announce changes to real-time syncs.",
            _EXPORT_BUSINESS | _ANNOUNCE_CHANGES,
            max_export_rows=5_000_000,
        ),
    )
}


class UnknownPermissionError(LookupError):
    pass


def _resolve(names: frozenset[str]) -> dict[str, Permission]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            codename__in={codename for _, codename in wanted}
        )
    }
    missing = sorted(f"{app}.{code}" for app, code in wanted if (app, code) not in found)
    if missing:
        raise UnknownPermissionError(
            f"The roles matrix names permissions that do not exist: {', '.join(missing)}"
        )
    return {f"{app}.{code}": found[(app, code)] for app, code in wanted}


@transaction.atomic
def apply_roles() -> dict[str, tuple[list[str], list[str]]]:
    """Make each role's group hold exactly its permissions.

    Returns, per role, the permissions added and removed (both empty when nothing changed).
    """
    changes: dict[str, tuple[list[str], list[str]]] = {}
    for role in ROLES.values():
        wanted = _resolve(role.permissions)
        group, _ = Group.objects.get_or_create(name=role.name)
        current = {
            f"{p.content_type.app_label}.{p.codename}": p
            for p in group.permissions.select_related("content_type")
        }
        added = sorted(set(wanted) - set(current))
        removed = sorted(set(current) - set(wanted))
        if added:
            group.permissions.add(*(wanted[name] for name in added))
        if removed:
            group.permissions.remove(*(current[name] for name in removed))
        changes[role.name] = (added, removed)
    return changes
