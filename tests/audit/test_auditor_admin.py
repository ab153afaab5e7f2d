"""The auditor's views: filters, read-only everywhere, CSV downloads that are access-logged and
formula-safe, and object history pages linking to the change history."""

import csv
import io
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from audit.models import AccessLog
from audit.services import access_log_write, outbound_log_write
from integrations.models import Connection
from mktintegration import roles

LISTS = {
    "accesslog": "/admin/audit/accesslog/",
    "outboundlog": "/admin/audit/outboundlog/",
    "logentry": "/admin/auditlog/logentry/",
}


def _read(actor="user:alice", dataset="clients", outcome="ok", channel="api", **fields):
    return access_log_write(
        channel=channel,
        actor=actor,
        dataset=dataset,
        format="csv",
        outcome=outcome,
        status_code=200,
        rows=3,
        **fields,
    )


def _csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body, newline="")))


@pytest.fixture
def auditor(client_for):
    return client_for(roles.AUDITOR, username="audrey")


@pytest.mark.django_db
def test_auditor_filters_the_access_log_by_actor_dataset_outcome_channel_and_date(auditor):
    _read(actor="user:alice", dataset="clients")
    _read(actor="token:mkt_abc (bi)", dataset="contacts", outcome="denied")
    _read(actor="user:bob", dataset="metrics", channel="file")
    _read(actor="user:carol", dataset="clients")
    url = LISTS["accesslog"]

    def actors(**params):
        rows = auditor.get(url, params).context["cl"].result_list
        return sorted(row.actor for row in rows)

    assert actors(actor="user:alice") == ["user:alice"]
    assert actors(dataset="contacts") == ["token:mkt_abc (bi)"]
    assert actors(outcome__exact="denied") == ["token:mkt_abc (bi)"]
    assert actors(channel__exact="file") == ["user:bob"]
    assert actors(q="carol") == ["user:carol"]
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()
    since_2000 = "2000-01-01T00:00:00+00:00"
    assert actors(at__gte=since_2000, at__lt=tomorrow) == sorted(
        ["user:alice", "token:mkt_abc (bi)", "user:bob", "user:carol"]
    )
    assert actors(at__lt=since_2000) == []
    page = auditor.get(url).content.decode()
    assert "Download CSV" in page and "user:alice" in page


@pytest.mark.django_db
def test_auditor_filters_the_outbound_log_by_vendor_and_status(auditor):
    outbound_log_write(
        vendor="hubspot", method="POST", host="api.hubapi.com", path="/x", status=200
    )
    outbound_log_write(vendor="mailchimp", method="POST", host="mc.example", path="/y", status=429)

    rows = auditor.get(LISTS["outboundlog"], {"status": "429"}).context["cl"].result_list
    assert [row.vendor for row in rows] == ["mailchimp"]
    rows = auditor.get(LISTS["outboundlog"], {"vendor": "hubspot"}).context["cl"].result_list
    assert [row.status for row in rows] == [200]


@pytest.mark.django_db
def test_auditor_changes_nothing_in_the_audit_lists(auditor):
    row = _read()
    for name, url in LISTS.items():
        assert auditor.get(f"{url}add/").status_code == 403, name
    assert auditor.post(f"{LISTS['accesslog']}{row.pk}/change/", {"rows": 0}).status_code == 403
    assert auditor.post(f"{LISTS['accesslog']}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    entry = LogEntry.objects.first()
    assert (
        auditor.post(f"{LISTS['logentry']}{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    response = auditor.post(
        LISTS["accesslog"], {"action": "delete_selected", "_selected_action": [row.pk]}
    )
    assert AccessLog.objects.filter(pk=row.pk).exists()
    assert response.status_code in (200, 302)


@pytest.mark.django_db
def test_download_is_the_filtered_list_formula_safe_and_access_logged(auditor):
    _read(actor="user:alice", detail='=HYPERLINK("http://evil.example")')
    _read(actor="user:bob", detail="-2+3")
    _read(actor="user:alice", dataset="contacts", detail="line one\nline two")

    response = auditor.get(f"{LISTS['accesslog']}download/", {"actor": "user:alice"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = _csv(response)
    assert [row["actor"] for row in rows] == ["user:alice", "user:alice"]
    assert {row["detail"] for row in rows} == {
        "line one line two",
        '\'=HYPERLINK("http://evil.example")',
    }
    logged = AccessLog.objects.order_by("-id").first()
    assert (logged.channel, logged.dataset, logged.actor) == (
        "admin",
        "audit:accesslog",
        "user:audrey",
    )
    assert (logged.outcome, logged.rows, logged.filters) == ("ok", 2, {"actor": "user:alice"})
    assert logged.bytes > 0 and "detail" in logged.fields


@pytest.mark.django_db
def test_change_history_download_and_outbound_download(auditor, user_with_role):
    Group.objects.create(name="=cmd|' /C calc'!A0")
    outbound_log_write(vendor="hubspot", method="GET", host="api.hubapi.com", path="/a", status=200)

    history = _csv(auditor.get(f"{LISTS['logentry']}download/", {"q": "calc"}))
    assert [row["object_repr"] for row in history] == ["'=cmd|' /C calc'!A0"]
    assert history[0]["action"] == "create" and history[0]["object_type"] == "auth.group"
    outbound = _csv(auditor.get(f"{LISTS['outboundlog']}download/"))
    assert [row["host"] for row in outbound] == ["api.hubapi.com"]
    datasets = list(AccessLog.objects.order_by("id").values_list("dataset", flat=True))
    assert datasets == ["audit:logentry", "audit:outboundlog"]


@pytest.mark.django_db
def test_download_needs_the_download_permission_and_a_refusal_is_logged(client, user_with_role):
    viewer = user_with_role(None, username="viewer")
    group = Group.objects.create(name="Log readers")
    group.permissions.add(Permission.objects.get(codename="view_accesslog"))
    viewer.groups.add(group)
    client.force_login(viewer)

    assert client.get(LISTS["accesslog"]).status_code == 200
    assert "Download CSV" not in client.get(LISTS["accesslog"]).content.decode()
    assert client.get(f"{LISTS['accesslog']}download/").status_code == 403
    refused = AccessLog.objects.get(dataset="audit:accesslog")
    assert (refused.outcome, refused.status_code, refused.actor) == ("denied", 403, "user:viewer")


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(set(roles.ROLES) - {roles.AUDITOR}))
def test_only_auditors_read_the_audit_lists(client_for, role):
    client = client_for(role)

    for name, url in LISTS.items():
        assert client.get(url).status_code == 403, (role, name)
        assert client.get(f"{url}download/").status_code == 403, (role, name)


@pytest.mark.django_db
def test_object_history_page_links_to_that_objects_change_history(auditor, user_with_role):
    connection = Connection.objects.create(name="HubSpot", vendor="hubspot", auth_kind="x")
    other = Connection.objects.create(name="Mailchimp", vendor="mailchimp", auth_kind="x")
    connection.name = "HubSpot EU"
    connection.save()

    page = auditor.get(f"/admin/integrations/connection/{connection.pk}/history/")
    assert page.status_code == 200
    rows = auditor.get(_history_link(page.content.decode())).context["cl"].result_list
    assert [entry.object_pk for entry in rows] == [str(connection.pk)] * 2  # create, rename
    assert LogEntry.objects.get_for_object(other).exists()  # the neighbour is not listed


def _history_link(html: str) -> str:
    marker = '<a href="/admin/auditlog/logentry/?'
    start = html.index(marker) + len('<a href="')
    return html[start : html.index('"', start)].replace("&amp;", "&")
