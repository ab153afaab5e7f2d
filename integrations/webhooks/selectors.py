"""Reads for feedback processing: who an event is about, and which destinations hold them."""

from __future__ import annotations

from collections.abc import Iterable

from exports.backbone.models import Contact
from exports.datasets import DATASETS
from integrations.connectors import connector_class
from integrations.models import Connection, LedgerEntry, LedgerStatus, Sync


def person_datasets() -> list[str]:
    """Datasets whose records are people keyed by the contact id (their consent subject is
    their key): a ledger entry of one of them is a contact held at a destination."""
    return [
        d.name
        for d in DATASETS.values()
        if d.consent_subject_sql and d.consent_subject_sql == d.field(d.key).sql
    ]


def person_syncs() -> list[Sync]:
    """Syncs of people into objects that can be opted out of e-mail."""
    syncs = Sync.objects.select_related("connection").filter(dataset__in=person_datasets())
    return [
        s
        for s in syncs
        if getattr(
            connector_class(s.connection.vendor).objects.get(s.destination_object),
            "suppressible",
            False,
        )
    ]


def in_scope(sync: Sync, connection: Connection, scope: dict) -> bool:
    """Whether ``sync`` writes where the event happened (its connection, and every key of the
    event's scope equal in the sync's destination config)."""
    config = sync.destination_config or {}
    return sync.connection_id == connection.pk and all(
        str(config.get(k, "")) == str(v) for k, v in scope.items()
    )


def contacts_by_email(
    *, emails: Iterable[str], connection: Connection, syncs: list[Sync]
) -> dict[str, int]:
    """Lower-cased address -> contact id: by the ledgers of this connection's syncs (which keep
    addresses as the vendor compares them), then by the backbone's contacts."""
    wanted = {e.strip().lower() for e in emails if e and e.strip()}
    found: dict[str, int] = {}
    own = [s.pk for s in syncs if s.connection_id == connection.pk]
    if own and wanted:
        for value, key in LedgerEntry.objects.filter(
            sync_id__in=own, match_value__in=wanted
        ).values_list("match_value", "record_key"):
            if key.isdigit():
                found.setdefault(value, int(key))
    missing = wanted - set(found)
    if missing:
        for pk, email in Contact.objects.filter(email__in=missing).values_list("pk", "email"):
            found.setdefault(email.lower(), pk)
    return found


def holders(*, contact_ids: Iterable[int], syncs: list[Sync]) -> list[tuple[Sync, str]]:
    """(sync, record key) for every sync whose destination may hold one of these contacts: it
    confirmed them, or a write was sent whose answer never came (it may have landed), and no
    mirror archived them since."""
    keys = [str(c) for c in contact_ids]
    by_id = {s.pk: s for s in syncs}
    if not keys or not by_id:
        return []
    entries = (
        LedgerEntry.objects.filter(sync_id__in=list(by_id), record_key__in=keys)
        .exclude(payload_hash="", sent_hash="")
        .exclude(status=LedgerStatus.DELETED)
        .values_list("sync_id", "record_key")
    )
    return [(by_id[sync_id], key) for sync_id, key in entries]
