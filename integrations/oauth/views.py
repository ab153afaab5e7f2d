"""The connection's Connect, Disconnect and callback pages (wired by ConnectionAdmin.get_urls,
behind the admin's sign-in). Thin: the work is integrations.oauth.connect's.

Connect and Disconnect show what will happen and act on a POST (CSRF-checked), so no link or
image elsewhere can start them. Anything refused is a readable page saying that nothing changed.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from integrations.connectors import REGISTRY
from integrations.models import GrantState, OAuthGrant
from integrations.oauth.connect import (
    ConnectRefused,
    authorization_code_flow,
    connect_begin,
    connect_complete,
    connection_disconnect,
    consent_origin,
)
from integrations.oauth.flows import AuthorizationCode, flow_for
from mktintegration.api_base import may

CONNECT = "integrations.connect_connection"
DISCONNECT = "integrations.disconnect_connection"
TEMPLATES = "admin/integrations/connection"


def change_form_context(request, connection) -> dict:
    """What the connection's change page needs for its Connect and Disconnect buttons."""
    flow = flow_for(connection)
    if not isinstance(flow, AuthorizationCode):
        return {}
    grant = OAuthGrant.objects.filter(pk=connection.pk).first()
    return {
        "oauth_label": REGISTRY[connection.vendor].label,
        "oauth_connected": grant is not None and grant.state != GrantState.NOT_CONNECTED,
        "may_connect": may(request.user, CONNECT, connection),
        "may_disconnect": may(request.user, DISCONNECT, connection),
    }


def grant_summary(connection) -> str:
    """The account connected, the scopes granted and when the token expires (no secret)."""
    grant = OAuthGrant.objects.filter(pk=connection.pk).first() if connection.pk else None
    if grant is None:
        return "not connected yet" if flow_for(connection) else "-"
    rows = [("State", grant.get_state_display()), ("Why", grant.reason)]
    name = f" ({grant.account_name})" if grant.account_name else ""
    rows += [
        ("Account", f"{grant.account_id}{name}".strip()),
        ("Data centre", grant.region),
        ("API address", grant.api_endpoint),
        ("Scopes granted", ", ".join(grant.scopes)),
    ]
    if grant.token_expires_at:
        when = f"{grant.token_expires_at:%Y-%m-%d %H:%M:%S} UTC"
        rows.append(("Access token expires", f"{when} (renewed automatically before then)"))
    elif grant.state == GrantState.CONNECTED and grant.connected_at:
        rows.append(("Access token expires", "does not expire (until revoked)"))
    if grant.expires_at:
        rows.append(("Reconnect before", f"{grant.expires_at:%Y-%m-%d %H:%M} UTC"))
    if grant.connected_at:
        who = f" by {grant.connected_by}" if grant.connected_by else ""
        rows.append(("Connected", f"{grant.connected_at:%Y-%m-%d %H:%M} UTC{who}"))
    if grant.refreshed_at:
        rows.append(("Last renewed", f"{grant.refreshed_at:%Y-%m-%d %H:%M:%S} UTC"))
    return format_html_join(mark_safe("<br>"), "{}: {}", [row for row in rows if row[1]])


def _change_url(connection) -> str:
    return reverse("admin:integrations_connection_change", args=[connection.pk])


def _checked(request, model_admin, object_id, perm: str, what: str):
    connection = model_admin.get_object(request, object_id)  # not visible: 404
    if not may(request.user, perm, connection):
        raise PermissionDenied(
            f"You may not {what} connection “{connection.name}”: that takes the permission to "
            f"{what} it (Integration Admins hold it; others may be granted it on the "
            "connection)."
        )
    return connection


def _page(request, model_admin, template: str, status: int = 200, **context):
    return TemplateResponse(
        request,
        f"{TEMPLATES}/{template}",
        {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, **context},
        status=status,
    )


def _refused(request, model_admin, exc: ConnectRefused):
    return _page(
        request,
        model_admin,
        "oauth_refused.html",
        status=400,
        title="Not connected",
        message=exc.message,
        connection=exc.connection,
    )


def connect(request, *, model_admin, object_id):
    connection = _checked(request, model_admin, object_id, CONNECT, "connect")
    try:
        flow = authorization_code_flow(connection)
        if request.method == "POST":
            return HttpResponseRedirect(connect_begin(request=request, connection=connection))
    except ConnectRefused as exc:
        return _refused(request, model_admin, exc)
    grant = OAuthGrant.objects.filter(pk=connection.pk).first()
    label = REGISTRY[connection.vendor].label
    return allow_consent_redirect(
        request,
        connection,
        _page(
            request,
            model_admin,
            "oauth_connect.html",
            title=f"Connect {connection.name} to {label}",
            connection=connection,
            label=label,
            scopes=flow.scopes,
            reconnect=grant is not None and grant.state != GrantState.NOT_CONNECTED,
            grant=grant,
        ),
    )


def allow_consent_redirect(request, connection, response):
    """``response`` (a page with a Connect form) with the vendor's consent page added to its
    CSP ``form-action``, so the browser follows Connect's redirect there."""
    origin = consent_origin(request, connection)
    if origin:
        response._csp_update = {"form-action": [origin]}
    return response


def callback(request, *, model_admin, vendor):
    try:
        result = connect_complete(
            request=request,
            vendor=vendor,
            may_connect=lambda connection: (
                may(request.user, CONNECT, connection)
                and model_admin.has_view_permission(request, connection)
            ),
        )
    except ConnectRefused as exc:
        return _refused(request, model_admin, exc)
    connection, answer = result.connection, result.answer
    account = answer.account_name or answer.account_id or "the account"
    level = messages.SUCCESS if result.test_ok else messages.WARNING
    messages.add_message(
        request,
        level,
        f"{connection.name}: connected to {account}. Test: {result.test_message}",
    )
    if result.resumed:
        messages.info(
            request, f"Resumed, as the connection works again: {', '.join(result.resumed)}"
        )
    return HttpResponseRedirect(_change_url(connection))


def disconnect(request, *, model_admin, object_id):
    connection = _checked(request, model_admin, object_id, DISCONNECT, "disconnect")
    try:
        flow = authorization_code_flow(connection)
        if request.method == "POST":
            result = connection_disconnect(connection=connection, user=request.user)
            messages.add_message(
                request,
                messages.SUCCESS if result.revoked is not False else messages.WARNING,
                f"{connection.name}: {result.message}",
            )
            return HttpResponseRedirect(_change_url(connection))
    except ConnectRefused as exc:
        return _refused(request, model_admin, exc)
    label = REGISTRY[connection.vendor].label
    return _page(
        request,
        model_admin,
        "oauth_disconnect.html",
        title=f"Disconnect {connection.name} from {label}",
        connection=connection,
        label=label,
        revokes=flow.revokes,
        syncs=list(connection.syncs.filter(paused=False).values_list("name", flat=True)),
    )
