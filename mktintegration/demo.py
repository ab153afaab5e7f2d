"""Demo users for ``make run``: one per role, staff, with a fresh password each start."""

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from mktintegration import roles

DEMO_USERS = (
    ("manager", roles.MARKETING_MANAGER),
    ("analyst", roles.MARKETING_ANALYST),
    ("integration-admin", roles.INTEGRATION_ADMIN),
    ("auditor", roles.AUDITOR),
)


@transaction.atomic
def reset_demo_users(*, password_factory: Callable[[], str]) -> dict[str, str]:
    """Create or reset the demo users; returns username -> new password."""
    User = get_user_model()
    passwords = {}
    for username, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@demo.example"}
        )
        password = password_factory()
        user.set_password(password)
        user.is_staff = True
        user.is_superuser = False
        user.is_active = True
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        passwords[username] = password
    return passwords


# The vendor emulators `make run` starts next to the web server (tests/fakes), and the demo
# objects that use them.
DEMO_HUBSPOT_PORT = 8101
DEMO_MAILCHIMP_PORT = 8102
DEMO_MARKETO_PORT = 8103


def demo_integrations_create() -> list[str]:
    """Demo connections to the local emulators, two syncs and a daily export file, granted to
    the demo manager. Idempotent: existing objects (by name) are left as they are."""
    from guardian.shortcuts import assign_perm

    from exports.models import ExportDestination, ExportSchedule
    from exports.services import export_destination_save, export_schedule_save
    from integrations.credentials import connection_credentials_save
    from integrations.models import Connection, FieldMapping, Sync
    from integrations.services import sync_schedule_apply

    User = get_user_model()
    manager = User.objects.filter(username="manager").first()
    created = []

    def connection(name, vendor, auth_kind, base_url, credentials, config=None):
        obj = Connection.objects.filter(name=name).first()
        if obj is None:
            obj = Connection(
                name=name,
                vendor=vendor,
                auth_kind=auth_kind,
                base_url=base_url,
                config=config or {},
            )
            connection_credentials_save(connection=obj, values=credentials)
            created.append(f"connection {name}")
        return obj

    hubspot = connection(
        "HubSpot (demo emulator)",
        "hubspot",
        "private_app_token",
        f"http://127.0.0.1:{DEMO_HUBSPOT_PORT}",
        {"token": "hs-test-token"},
    )
    mailchimp = connection(
        "Mailchimp (demo emulator)",
        "mailchimp",
        "api_key",
        f"http://127.0.0.1:{DEMO_MAILCHIMP_PORT}/3.0",
        {"api_key": "mc-test-key-us14"},
    )
    marketo = connection(
        "Marketo (demo emulator)",
        "marketo",
        "client_credentials",
        f"http://127.0.0.1:{DEMO_MARKETO_PORT}",
        {"client_id": "mkto-client-id", "client_secret": "mkto-client-secret"},
        config={"munchkin_id": "284-RPR-133"},
    )

    def sync(name, mappings, **fields):
        obj = Sync.objects.filter(name=name).first()
        if obj is None:
            obj = Sync.objects.create(name=name, owner=manager, **fields)
            for position, (source, target) in enumerate(mappings):
                FieldMapping.objects.create(
                    sync=obj, source_field=source, destination_field=target, position=position
                )
            sync_schedule_apply(sync=obj)
            created.append(f"sync {name}")
        return obj

    syncs = [
        sync(
            "Customers to HubSpot",
            [
                ("name", "name"),
                ("domain", "domain"),
                ("industry", "industry"),
                ("employees", "numberofemployees"),
                ("country", "country"),
                ("city", "city"),
            ],
            connection=hubspot,
            dataset="clients",
            filters={"lifecycle_stage": "customer,evangelist"},
            destination_object="companies",
            match_source_field="external_id",
            match_destination_field="external_id",
            every_minutes=30,
        ),
        sync(
            "Newsletter contacts to Mailchimp",
            [("first_name", "FNAME"), ("last_name", "LNAME"), ("company_name", "COMPANY")],
            connection=mailchimp,
            dataset="contacts",
            filters={"region": "eu,uk"},
            destination_object="members",
            destination_config={"list_id": "list0001"},
            match_source_field="email",
            match_destination_field="email_address",
            consent_purpose="email_marketing",
            every_minutes=60,
        ),
        sync(
            "EU contacts to Marketo leads",
            [
                ("first_name", "firstName"),
                ("last_name", "lastName"),
                ("title", "title"),
                ("company_name", "company"),
            ],
            connection=marketo,
            dataset="contacts",
            filters={"region": "eu"},
            destination_object="leads",
            match_source_field="email",
            match_destination_field="email",
            consent_purpose="email_marketing",
            every_minutes=60,
        ),
    ]
    destination = ExportDestination.objects.filter(name="Local exports folder").first()
    if destination is None:
        destination = export_destination_save(
            destination=ExportDestination(
                name="Local exports folder", kind="local", subdirectory="demo", retention_days=7
            )
        )
        created.append("export destination Local exports folder")
    if not ExportSchedule.objects.filter(name="Daily health scores").exists():
        export_schedule_save(
            schedule=ExportSchedule(
                name="Daily health scores",
                dataset="metrics",
                format="csv",
                destination=destination,
                cron="0 6 * * *",
                owner=manager,
                fields=["company_id", "external_id", "name", "health_score", "lead_grade"],
            ),
            creator=manager,
        )
        created.append("export schedule Daily health scores")
    if manager is not None:
        for obj in (hubspot, mailchimp, marketo):
            assign_perm("integrations.view_connection", manager, obj)
        for obj in syncs:
            for perm in ("view_sync", "change_sync", "run_sync", "preview_sync", "pause_sync"):
                assign_perm(f"integrations.{perm}", manager, obj)
    return created
