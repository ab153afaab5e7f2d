"""Chain the change-history entries already there (in id order) and sign the head of every
chain that has rows (access log, outbound log, change history).

What is in the tables when this runs is taken as it is: the anchors vouch for what follows.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import migrations

from audit.chain import ENTRY_FIELDS, GENESIS, entry_canonical, head_sign, row_canonical, sha256

CHUNK = 2000
LINK_FIELDS = ("entry_id", "entry_hash", "actor_id", "actor")
CHAINS = {"access": "AccessLog", "outbound": "OutboundLog", "change history": "ChangeHistoryLink"}


def _chain_entries(apps, using):
    LogEntry = apps.get_model("auditlog", "LogEntry")
    Link = apps.get_model("audit", "ChangeHistoryLink")
    username = f"actor__{get_user_model().USERNAME_FIELD}"  # a constant: historical models lack it
    prev, after = GENESIS, 0
    while True:
        chunk = list(
            LogEntry.objects.using(using)
            .filter(pk__gt=after)
            .order_by("pk")
            .values(*ENTRY_FIELDS, "actor_id", username)[:CHUNK]
        )
        if not chunk:
            return
        links = []
        for values in chunk:
            link = {
                "entry_id": values["id"],
                "entry_hash": sha256(entry_canonical(values)),
                "actor_id": values["actor_id"],
                "actor": values[username] or "",
            }
            at = values["timestamp"]
            row_hash = sha256(
                row_canonical(
                    at=at, prev_hash=prev, values=((name, link[name]) for name in LINK_FIELDS)
                )
            )
            links.append(Link(at=at, prev_hash=prev, row_hash=row_hash, **link))
            prev = row_hash
        Link.objects.using(using).bulk_create(links)
        after = chunk[-1]["id"]


def forwards(apps, schema_editor):
    using = schema_editor.connection.alias
    _chain_entries(apps, using)
    Anchor = apps.get_model("audit", "ChainAnchor")
    for chain, model_name in CHAINS.items():
        rows = apps.get_model("audit", model_name).objects.using(using)
        last = rows.order_by("-id").values_list("id", "row_hash").first()
        if last is None:
            continue
        length = rows.count()
        Anchor.objects.using(using).update_or_create(
            chain=chain,
            defaults={
                "length": length,
                "last_id": last[0],
                "last_hash": last[1],
                "signature": head_sign(
                    keys=settings.MKT_AUDIT_KEYS,
                    chain=chain,
                    length=length,
                    last_id=last[0],
                    last_hash=last[1],
                ),
            },
        )


def backwards(apps, schema_editor):
    using = schema_editor.connection.alias
    apps.get_model("audit", "ChainAnchor").objects.using(using).all().delete()
    # The links go with their table (0004 backwards).


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_change_history_chain_and_anchors"),
        ("auditlog", "0017_add_actor_email"),
        ("mktintegration", "__first__"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
