"""The README's "A first tour", step by step, as a new user takes it after `make run`.

The demo's objects are made by the same commands `make run` calls; only the demo connections
are pointed at emulators on free ports (the demo's own ports may be busy on this machine).
The part of the suite run with the demo settings (`make test`, DEBUG=1) includes this file.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from integrations.models import Connection, Sync, SyncRun
from mktintegration.demo import reset_demo_users
from tests.integrations.conftest import drive

PASSWORD = "demo-password-for-the-tour"


@pytest.fixture
def demo(db, settings, hubspot, mailchimp, marketo):
    settings.DEMO_MODE = True
    call_command("seed_demo", companies=300, seed=7, verbosity=0)
    reset_demo_users(password_factory=lambda: PASSWORD)
    call_command("seed_demo_integrations", verbosity=0)
    Connection.objects.filter(vendor="hubspot").update(base_url=hubspot.url)
    Connection.objects.filter(vendor="mailchimp").update(base_url=f"{mailchimp.url}/3.0")
    Connection.objects.filter(vendor="marketo").update(base_url=marketo.url)
    return {"hubspot": hubspot, "mailchimp": mailchimp, "marketo": marketo}


def signed_in(username: str) -> Client:
    client = Client()
    page = client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": PASSWORD}, follow=True
    )
    assert page.status_code == 200 and page.context["user"].username == username
    return client


def _action(client: Client, action: str, syncs) -> object:
    return client.post(
        "/admin/integrations/sync/",
        {"action": action, "_selected_action": [s.pk for s in syncs]},
        follow=True,
    )


@pytest.mark.django_db
def test_the_readme_tour(demo, capsys):
    # 1. The manager previews and runs the demo syncs; a second run re-sends nothing.
    manager = signed_in("manager")
    listing = manager.get("/admin/integrations/sync/")
    assert b"Customers to HubSpot" in listing.content
    assert b"Newsletter contacts to Mailchimp" in listing.content
    syncs = list(Sync.objects.order_by("name"))

    preview = _action(manager, "preview", syncs)
    assert preview.status_code == 200 and b"sends nothing" in preview.content
    assert b"records would be sent" in preview.content

    queued = _action(manager, "run_now", syncs)
    assert queued.status_code == 200
    for sync in syncs:  # the message links to the run's page
        run_id = SyncRun.objects.filter(sync=sync).latest("id").pk
        link = f'<a href="/admin/integrations/syncrun/{run_id}/change/">run {run_id}</a> queued.'
        assert link in queued.content.decode()
    first = [drive(SyncRun.objects.filter(sync=s).latest("id")) for s in syncs]
    assert all(run.status == "succeeded" for run in first), [(r.status, r.error) for r in first]
    assert sum(run.created for run in first) > 0
    assert any(run.suppressed for run in first)  # contacts without consent are held back
    runs_page = manager.get("/admin/integrations/syncrun/")
    assert runs_page.status_code == 200 and b"Customers to HubSpot" in runs_page.content

    _action(manager, "run_now", syncs)
    again = [drive(SyncRun.objects.filter(sync=s).latest("id")) for s in syncs]
    # Nothing is sent again. (The rerun re-reads rows changed within the sync's lookback of the
    # last plan, as unchanged: in the first 15 minutes after midnight that is some of the demo's
    # rows, whose history ends at today's midnight.)
    assert [(run.created, run.updated) for run in again] == [(0, 0)] * 3
    assert [run.planned - run.unchanged for run in again] == [0, 0, 0]

    # 2. The dashboard.
    assert manager.get("/admin/operations/dashboard/").status_code == 200

    # 3. The analyst's CSV in the browser, then a token for scripts.
    analyst = signed_in("analyst")
    export = analyst.get(
        "/marketing/export/clients?format=csv&country=DE&fields=external_id,name,health_score"
    )
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0] == ["external_id", "name", "health_score"] and len(rows) > 1

    call_command("create_api_token", username="analyst", scopes="export:clients,export:metrics")
    token = re.search(r"mkt_[0-9a-f]+_\S+", capsys.readouterr().out).group(0)
    metrics = Client().get(
        "/marketing/export/metrics?limit=2", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert metrics.status_code == 200 and metrics.json()["count"] == 2

    # 4. The auditor sees the changes and the reads, and the chains verify.
    auditor = signed_in("auditor")
    history = auditor.get("/admin/auditlog/logentry/")
    reads = auditor.get("/admin/audit/accesslog/")
    assert history.status_code == 200 and reads.status_code == 200
    assert b"analyst" in reads.content
    call_command("verify_audit")
    assert "verified" in capsys.readouterr().out
