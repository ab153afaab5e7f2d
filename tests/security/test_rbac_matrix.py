"""The RBAC matrix: every principal (anonymous, a staff user with no role, each role of
mktintegration/roles.py) x every admin changelist and add page of every registered model x
every admin action x every API endpoint under /marketing/ and /api/ -> the status written in
the expectation tables below.

The tables are explicit on purpose: a change to the roles matrix, an admin or an API that
changes who may do what must change this file too. The admin models, their actions and the
endpoints are discovered (``admin.site._registry`` and the URL resolver), so a new one
without an expectation fails, saying what to add.

Users here hold no object grants: what a grant adds is tested both ways in
test_object_permissions.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver

from mktintegration import roles
from tests.security.conftest import ANONYMOUS, NO_ROLE, PRINCIPALS

MM, MA = roles.MARKETING_MANAGER, roles.MARKETING_ANALYST
IA, AU, API = roles.INTEGRATION_ADMIN, roles.AUDITOR, roles.API_CLIENT
NOBODY: frozenset[str] = frozenset()
NO_ADD_PAGE = "no add page"  # the add URL answers 404 to every signed-in principal


@dataclass(frozen=True)
class Admin:
    """Who gets 200 on the changelist and on the add page (other signed-in principals: 403;
    anonymous: a redirect to the login page), and to whom each list action is offered."""

    changelist: frozenset[str]
    add: frozenset[str] | str
    actions: dict[str, frozenset[str]] = field(default_factory=dict)


def _s(*names: str) -> frozenset[str]:
    return frozenset(names)


def _superuser_only(*actions: str) -> Admin:
    return Admin(NOBODY, NOBODY, {name: NOBODY for name in ("delete_selected", *actions)})


def _read_only(*readers: str) -> Admin:
    return Admin(_s(*readers), NOBODY, {"delete_selected": NOBODY})


BACKBONE_READERS = (MM, MA, IA)

ADMIN: dict[str, Admin] = {
    # Users, groups and sign-in records: superusers only.
    "auth.Group": _superuser_only(),
    "mktintegration.User": _superuser_only(),
    "social_django.UserSocialAuth": _superuser_only(),
    "social_django.Nonce": _superuser_only(),
    "social_django.Association": _superuser_only(),
    # Beat's tables are kept in step by services; their actions need the change permission.
    "django_celery_beat.PeriodicTask": _superuser_only(
        "enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"
    ),
    "django_celery_beat.ClockedSchedule": _superuser_only(),
    "django_celery_beat.CrontabSchedule": _superuser_only(),
    "django_celery_beat.SolarSchedule": _superuser_only(),
    "django_celery_beat.IntervalSchedule": _superuser_only(),
    "mktintegration.WorkerHeartbeat": _read_only(IA),
    "mktintegration.ApiToken": Admin(_s(IA), _s(IA), {"delete_selected": NOBODY, "revoke": _s(IA)}),
    "mktintegration.ServiceCertificate": Admin(
        _s(IA), _s(IA), {"delete_selected": NOBODY, "revoke": _s(IA)}
    ),
    # The backbone: read-only for everyone; consent records are not the analyst's.
    "backbone.Company": _read_only(*BACKBONE_READERS),
    "backbone.Contact": _read_only(*BACKBONE_READERS),
    "backbone.ActivityEvent": _read_only(*BACKBONE_READERS),
    "backbone.CompanyMetrics": _read_only(*BACKBONE_READERS),
    "backbone.MetricsRefresh": _read_only(*BACKBONE_READERS),
    "backbone.Segment": _read_only(*BACKBONE_READERS),
    "backbone.ConsentRecord": _read_only(MM, IA),
    # Scheduled exports: destinations hold credentials (Integration Admins change them).
    "exports.ExportDestination": Admin(_s(MM, IA, AU), _s(IA), {"delete_selected": _s(IA)}),
    "exports.ExportSchedule": Admin(
        _s(MM, IA, AU), _s(MM, IA), {"delete_selected": _s(IA), "run_now": _s(IA)}
    ),
    "exports.ExportRun": _read_only(MM, MA, IA, AU),
    # Syncs: managers create syncs and act on the ones granted to them (none here).
    "integrations.Connection": Admin(
        _s(IA, AU), _s(IA), {"delete_selected": _s(IA), "test_connections": _s(IA)}
    ),
    "integrations.Sync": Admin(
        _s(MM, IA, AU),
        _s(MM, IA),
        {
            "delete_selected": _s(IA),
            "preview": _s(IA),
            "run_now": _s(IA),
            "pause": _s(IA),
            "resume": _s(IA),
            "replay_dead_letters": _s(IA),
        },
    ),
    "integrations.SyncRun": _read_only(MM, IA, AU),
    # Managers: the letters of the syncs granted to them (the payload as the dataset allows).
    "integrations.DeadLetter": Admin(
        _s(MM, IA), NOBODY, {"delete_selected": NOBODY, "replay": _s(IA)}
    ),
    "integrations.LedgerEntry": _read_only(IA),
    # Which consent decision allowed each send (no payload or match value): auditors too.
    "integrations.ConsentEvidence": _read_only(IA, AU),
    # Operations: the dashboard shows only what is granted to each viewer.
    "operations.Dashboard": Admin(_s(MM, IA, AU), NO_ADD_PAGE, {"delete_selected": NOBODY}),
    "operations.AlertRecipients": Admin(_s(IA, AU), _s(IA), {"delete_selected": _s(IA)}),
    "operations.Alert": _read_only(IA, AU),
    "operations.AlertState": _read_only(IA, AU),
    # Feedback from vendors: received events hold e-mail addresses (Integration Admins); the
    # opt-outs and refusal counts hold ids; receiver secrets are generated and rotated like
    # credentials, never deleted (a connection's receiver goes with the connection).
    "webhooks.WebhookEvent": _read_only(IA),
    "webhooks.Suppression": Admin(_s(IA, AU), NOBODY, {"delete_selected": NOBODY, "retry": _s(IA)}),
    "webhooks.WebhookEndpoint": Admin(
        _s(IA), _s(IA), {"delete_selected": NOBODY, "rotate": _s(IA)}
    ),
    "webhooks.FeedbackPoll": _read_only(IA),
    "webhooks.WebhookRefusal": _read_only(IA, AU),
    "events_out.OutboxEvent": _read_only(IA),
    # The audit trail: auditors only, read-only for everyone.
    "audit.AccessLog": _read_only(AU),
    "audit.OutboundLog": _read_only(AU),
    "auditlog.LogEntry": _read_only(AU),
}


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # may name objects: {connection} {sync} {sync_run} {schedule} {export_run}
    status: dict[str, int]
    body: dict | None = None


def _statuses(anonymous: int, no_role: int, **by_role: int) -> dict[str, int]:
    names = {"mm": MM, "ma": MA, "ia": IA, "au": AU, "api": API}
    return {ANONYMOUS: anonymous, NO_ROLE: no_role, **{names[k]: v for k, v in by_role.items()}}


_EXPORT_BUSINESS = _statuses(401, 403, mm=200, ma=200, ia=200, au=403, api=200)
_SIGNED_IN = _statuses(401, 200, mm=200, ma=200, ia=200, au=200, api=200)
# Writes on one granted object: nobody here holds a grant; auditors see it but may not act.
_ACT_ON_OBJECT = _statuses(401, 404, mm=404, ma=404, ia=202, au=403, api=404)
_READ_RUN = _statuses(401, 404, mm=404, ma=404, ia=200, au=200, api=404)
_CONFIGURE = {
    "dry_run": True,
    "connection": {
        "name": "HubSpot prod",
        "vendor": "hubspot",
        "auth_kind": "private_app_token",
        "rate_limit_requests": 50,
        "rate_limit_seconds": 10,
    },
}

# Route (as the resolver spells it) -> the calls made to it, with the status per principal
# (signed in with a session; tokens are tested in test_bad_input.py).
API: dict[str, list[Call]] = {
    "api/schema/": [Call("get", "/api/schema/", _SIGNED_IN)],
    "api/docs/": [Call("get", "/api/docs/", _SIGNED_IN)],
    "marketing/export/clients": [Call("get", "/marketing/export/clients", _EXPORT_BUSINESS)],
    "marketing/export/metrics": [Call("get", "/marketing/export/metrics", _EXPORT_BUSINESS)],
    "marketing/export/contacts": [
        Call(
            "get",
            "/marketing/export/contacts",
            _statuses(401, 403, mm=403, ma=200, ia=200, au=403, api=403),
        )
    ],
    # Lists only what is granted to the caller: an empty list for those with no grant.
    "marketing/integrations/status": [
        Call(
            "get",
            "/marketing/integrations/status",
            _statuses(401, 200, mm=200, ma=200, ia=200, au=200, api=200),
        )
    ],
    "marketing/integrations/configure": [
        Call(
            "post",
            "/marketing/integrations/configure",
            _statuses(401, 404, mm=404, ma=404, ia=200, au=403, api=404),
            body=_CONFIGURE,
        )
    ],
    "marketing/integrations/syncs/<int:pk>/run": [
        Call("post", "/marketing/integrations/syncs/{sync}/run", _ACT_ON_OBJECT)
    ],
    "marketing/integrations/exports/<int:pk>/run": [
        Call("post", "/marketing/integrations/exports/{schedule}/run", _ACT_ON_OBJECT)
    ],
    # Nothing is dead-lettered: the Integration Admin's replay answers "0 replayed".
    "marketing/integrations/syncs/<int:pk>/dead-letters/replay": [
        Call(
            "post",
            "/marketing/integrations/syncs/{sync}/dead-letters/replay",
            _statuses(401, 404, mm=404, ma=404, ia=200, au=403, api=404),
        )
    ],
    "marketing/integrations/runs/<int:pk>": [
        Call("get", "/marketing/integrations/runs/{sync_run}", _READ_RUN)
    ],
    # Vendors call it: no session or role counts, only the vendor's own proof (the tests set
    # no HubSpot app secret, so every POST is refused 503 with Retry-After; GET is Mailchimp's).
    "marketing/integrations/webhooks/<slug:vendor>/<int:connection_id>": [
        Call(
            "post",
            "/marketing/integrations/webhooks/hubspot/{connection}",
            _statuses(503, 503, mm=503, ma=503, ia=503, au=503, api=503),
        ),
        Call(
            "get",
            "/marketing/integrations/webhooks/hubspot/{connection}",
            _statuses(405, 405, mm=405, ma=405, ia=405, au=405, api=405),
        ),
    ],
    "marketing/integrations/export-runs/<int:pk>": [
        Call("get", "/marketing/integrations/export-runs/{export_run}", _READ_RUN)
    ],
    # Announcing changes to real-time syncs: the services (API clients) and Integration Admins.
    "marketing/events": [
        Call(
            "post",
            "/marketing/events",
            _statuses(401, 403, mm=403, ma=403, ia=202, au=403, api=202),
            body={"events": [{"subject": "company", "id": 1}]},
        )
    ],
}


# --- discovery --------------------------------------------------------------------------------


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    found = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _routes(pattern, route)
        elif isinstance(pattern, URLPattern):
            found.append(route)
    return found


def api_routes() -> list[str]:
    return sorted(
        route for route in _routes(get_resolver()) if route.startswith(("marketing/", "api/"))
    )


def admin_models() -> dict[str, admin.ModelAdmin]:
    return {model._meta.label: model_admin for model, model_admin in admin.site._registry.items()}


def _action_names(model_admin) -> set[str]:
    return {name for _, name, _ in model_admin._get_base_actions()}


# --- the tables cover everything, and only what exists ----------------------------------------


def test_every_admin_model_and_action_has_an_expectation():
    registered = admin_models()
    missing = sorted(set(registered) - set(ADMIN))
    assert not missing, (
        f"Admin models without an RBAC expectation: {missing}. Add them to ADMIN in "
        "tests/security/test_rbac_matrix.py (who may open the list and the add page, and to "
        "whom each action is offered)."
    )
    stale = sorted(set(ADMIN) - set(registered))
    assert not stale, f"ADMIN names models no longer registered in the admin: {stale}"
    for label, model_admin in registered.items():
        actions, expected = _action_names(model_admin), set(ADMIN[label].actions)
        assert actions <= expected, (
            f"{label}: admin actions without an RBAC expectation: {sorted(actions - expected)}. "
            f"Add them to ADMIN[{label!r}].actions in tests/security/test_rbac_matrix.py."
        )
        assert expected <= actions, f"{label}: no such admin actions: {sorted(expected - actions)}"


def test_every_api_endpoint_has_an_expectation():
    routes = api_routes()
    missing = sorted(set(routes) - set(API))
    assert not missing, (
        f"API endpoints without an RBAC expectation: {missing}. Add them to API in "
        "tests/security/test_rbac_matrix.py with the status each principal gets."
    )
    assert not set(API) - set(routes), (
        f"API names routes that no longer exist: {set(API) - set(routes)}"
    )
    for route, calls in API.items():
        for call in calls:
            assert set(call.status) == set(PRINCIPALS), f"{route}: give a status for everyone"


# --- the matrix ----------------------------------------------------------------------------------


def _offered(response) -> set[str]:
    try:
        form = response.context["action_form"]
    except (KeyError, TypeError):  # a custom changelist page without the actions form
        form = None
    return set() if form is None else {value for value, _ in form.fields["action"].choices if value}


def _add_status(expected: Admin, principal: str) -> int:
    if expected.add == NO_ADD_PAGE:
        return 404
    return 200 if principal in expected.add else 403


@pytest.mark.django_db
@pytest.mark.parametrize("principal", PRINCIPALS)
def test_admin_pages_and_actions(principal, client_as, objects):
    client = client_as(principal)
    wrong = []
    for label, model_admin in sorted(admin_models().items()):
        expected = ADMIN[label]
        opts = model_admin.model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        changelist, add = client.get(base), client.get(f"{base}add/")
        if principal == ANONYMOUS:
            for page in (changelist, add):
                if page.status_code != 302 or not page["Location"].startswith("/admin/login/"):
                    wrong.append(f"{label}: anonymous got {page.status_code}, not the login page")
            continue
        want_list = 200 if principal in expected.changelist else 403
        want_add = _add_status(expected, principal)
        if changelist.status_code != want_list:
            wrong.append(f"{label} changelist: {changelist.status_code}, expected {want_list}")
        if add.status_code != want_add:
            wrong.append(f"{label} add page: {add.status_code}, expected {want_add}")
        want_actions = {name for name, who in expected.actions.items() if principal in who}
        if changelist.status_code == 200:
            offered = _offered(changelist)
            if offered != want_actions:
                wrong.append(f"{label} actions offered: {sorted(offered)}, expected {want_actions}")
        elif want_actions:
            wrong.append(f"{label}: actions expected for {principal}, who cannot open the list")
        else:
            for name in expected.actions:
                response = client.post(base, {"action": name, "_selected_action": ["1"]})
                if response.status_code != 403:
                    wrong.append(f"{label} action {name} POST: {response.status_code}, not 403")
    assert not wrong, f"{principal}:\n" + "\n".join(wrong)


@pytest.mark.django_db
@pytest.mark.parametrize("principal", PRINCIPALS)
def test_api_endpoints(principal, client_as, objects):
    client = client_as(principal)
    values = objects.path_values()
    wrong = []
    for _route, calls in sorted(API.items()):
        for call in calls:
            path = call.path.format(**values)
            if call.body is None:
                response = getattr(client, call.method)(path)
            else:
                response = getattr(client, call.method)(
                    path, json.dumps(call.body), content_type="application/json"
                )
            if response.status_code != call.status[principal]:
                wrong.append(
                    f"{call.method.upper()} {path}: {response.status_code}, "
                    f"expected {call.status[principal]}"
                )
    assert not wrong, f"{principal}:\n" + "\n".join(wrong)
