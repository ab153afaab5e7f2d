"""Reading the audit logs, and proving them: every chain walked in insertion order against its
signed head.

The rows and the chain's anchor are read by one statement (the anchor rides along as scalar
subqueries), so the check sees one snapshot of both while appends go on, on PostgreSQL and
on SQLite alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Subquery

from audit.chain import ENTRY_FIELDS, GENESIS, entry_canonical, head_signature_valid, sha256
from audit.models import AccessLog, ChainAnchor, ChainedLog, ChangeHistoryLink, OutboundLog

CHAINS: tuple[type[ChainedLog], ...] = (AccessLog, OutboundLog, ChangeHistoryLink)
_ANCHOR_COLUMNS = ("length", "last_id", "last_hash", "signature")


@dataclass(frozen=True)
class ChainBreak:
    model: str
    row_id: int | None
    reason: str
    noun: str = "row"

    def __str__(self):
        if self.row_id is None:
            return f"{self.model}: {self.reason}"
        return f"{self.model} {self.noun} {self.row_id}: {self.reason}"


class ChainCheck:
    """``ChainCheck(AccessLog).breaks()`` yields every place the chain is broken, in order;
    afterwards ``length``, ``head`` (last id, hash) and ``anchored`` describe what was read."""

    def __init__(self, model: type[ChainedLog], *, chunk_size: int = 2000):
        self.model = model
        self.name = "ChangeHistory" if model is ChangeHistoryLink else model.__name__
        self.chunk_size = chunk_size
        self.length = 0
        self.head: tuple[int, str] | None = None
        self.anchored = False
        self._newest_entry = 0  # change history: the highest entry id with a link

    def _break(self, row_id, reason, noun="row") -> ChainBreak:
        return ChainBreak(self.name, row_id, reason, noun)

    def _rows(self):
        anchor = ChainAnchor.objects.filter(chain=self.model.chain)
        columns = {f"anchor_{c}": Subquery(anchor.values(c)[:1]) for c in _ANCHOR_COLUMNS}
        rows = self.model.objects.order_by("id").annotate(**columns)
        return rows.iterator(chunk_size=self.chunk_size)

    def breaks(self) -> Iterator[ChainBreak]:
        expected_prev, previous_id = GENESIS, None
        anchor: dict | None = None
        anchor_read = False
        anchored_at = None  # the position of the row the anchor names, once seen
        batch: list[ChainedLog] = []
        for row in self._rows():
            if not anchor_read:
                anchor_read = True
                anchor = _anchor_of(row)
                yield from self._anchor_signature(anchor)
            self.length += 1
            if row.prev_hash != expected_prev:
                where = f"row {previous_id}" if previous_id else "the start of the log"
                yield self._break(
                    row.id,
                    f"its link to {where} is broken: a row between them was removed, "
                    "or that row was altered",
                )
            if row.compute_hash() != row.row_hash:
                yield self._break(row.id, "its content does not match its hash: altered")
            if anchor and row.id == anchor["last_id"]:
                anchored_at = self.length
                if row.row_hash != anchor["last_hash"]:
                    yield self._break(
                        row.id, "it is not the row the signed head names (another hash): rewritten"
                    )
            expected_prev, previous_id = row.row_hash, row.id
            batch.append(row)
            if len(batch) >= self.chunk_size:
                yield from self._rows_content(batch)
                batch = []
        if batch:
            yield from self._rows_content(batch)
        self.head = (previous_id, expected_prev) if previous_id else None
        if not anchor_read:  # no rows: the anchor, if any, is read on its own
            anchor = (
                ChainAnchor.objects.filter(chain=self.model.chain).values(*_ANCHOR_COLUMNS).first()
            )
            yield from self._anchor_signature(anchor)
        yield from self._end(anchor, anchored_at)
        if self.model is ChangeHistoryLink:
            yield from self._unlinked_entries()

    def _anchor_signature(self, anchor: dict | None) -> Iterator[ChainBreak]:
        if anchor is None:
            return
        if not head_signature_valid(keys=settings.MKT_AUDIT_KEYS, chain=self.model.chain, **anchor):
            yield self._break(
                None,
                "the signature of its head (audit_chainanchor) is not valid: the anchor was "
                "altered, or signed with a key no longer in MKT_AUDIT_KEYS",
            )

    def _end(self, anchor: dict | None, anchored_at: int | None) -> Iterator[ChainBreak]:
        """Compare where the chain ends with where its signed head says it ends."""
        if anchor is None:
            if self.length:
                yield self._break(
                    None, f"it has {self.length:,} rows but no signed head: the anchor was removed"
                )
            return
        ends_at = f"row {self.head[0]}" if self.head else "no row at all"
        if anchor["length"] == 0 and self.length == 0:  # re-anchored while empty
            self.anchored = True
            return
        if anchored_at is None:
            if self.length < anchor["length"]:
                yield self._break(
                    None,
                    f"the last {anchor['length'] - self.length:,} rows were removed (the signed "
                    f"head names row {anchor['last_id']}, the log ends at {ends_at})",
                )
            else:
                yield self._break(
                    None,
                    f"row {anchor['last_id']}, which the signed head names, was removed and "
                    f"rows were added in its place (the log ends at {ends_at})",
                )
            return
        self.anchored = anchored_at == anchor["length"] and self.length == anchor["length"]
        if anchored_at != anchor["length"]:
            yield self._break(
                anchor["last_id"],
                f"it is row {anchored_at:,} of the log, but the signed head counts "
                f"{anchor['length']:,} rows up to it: rows before it were added or removed",
            )
        if self.length > anchored_at:
            yield self._break(
                None,
                f"{self.length - anchored_at:,} rows after row {anchor['last_id']} are not "
                f"covered by the signed head (the log ends at {ends_at}): added behind the "
                "application's back, or while its head could not be verified (a key missing "
                "from MKT_AUDIT_KEYS)",
            )

    def _rows_content(self, links: list[ChainedLog]) -> Iterator[ChainBreak]:
        """Change history: each link's entry is there, unchanged, with the recorded actor."""
        if self.model is not ChangeHistoryLink:
            return
        self._newest_entry = max(self._newest_entry, *(link.entry_id for link in links))
        entries = {
            values["id"]: values
            for values in LogEntry.objects.filter(pk__in=[link.entry_id for link in links]).values(
                *ENTRY_FIELDS, "actor_id"
            )
        }
        emptied = {
            link.actor_id
            for link in links
            if link.entry_id in entries
            and link.actor_id is not None
            and entries[link.entry_id]["actor_id"] is None
        }
        still_there = set(
            get_user_model().objects.filter(pk__in=emptied).values_list("pk", flat=True)
        )
        for link in links:
            values = entries.get(link.entry_id)
            if values is None:
                yield self._break(
                    link.entry_id, f"removed (its chain link, row {link.id}, remains)", "entry"
                )
            elif sha256(entry_canonical(values)) != link.entry_hash:
                yield self._break(
                    link.entry_id,
                    "its content does not match the hash its chain link recorded: altered",
                    "entry",
                )
            elif values["actor_id"] != link.actor_id and (
                values["actor_id"] is not None or link.actor_id in still_there
            ):
                yield self._break(
                    link.entry_id,
                    f"its actor is not the one recorded ({link.actor or 'none'}): altered",
                    "entry",
                )

    def _unlinked_entries(self) -> Iterator[ChainBreak]:
        """Entries older than the newest chained one (all, if none is chained), without a link.

        Newer ones may be on their way (an entry and its link are two commits outside a
        transaction), and candidates are looked up again, so a link committed meanwhile counts.
        """
        has_link = ChangeHistoryLink.objects.filter(entry_id=OuterRef("pk"))
        entries = LogEntry.objects.filter(~Exists(has_link))  # an anti-join, also on big tables
        if self._newest_entry:
            entries = entries.filter(pk__lt=self._newest_entry)
        candidates = list(entries.order_by("pk").values_list("pk", flat=True)[:100])
        linked = set(
            ChangeHistoryLink.objects.filter(entry_id__in=candidates).values_list(
                "entry_id", flat=True
            )
        )
        for entry_id in candidates:
            if entry_id not in linked:
                yield self._break(
                    entry_id,
                    "it is not in the chain: written behind the application's back (or its "
                    "process stopped between writing it and its link)",
                    "entry",
                )


def _anchor_of(row) -> dict | None:
    values = {column: getattr(row, f"anchor_{column}") for column in _ANCHOR_COLUMNS}
    return None if values["signature"] is None else values


def chain_verify(model: type[ChainedLog], *, chunk_size: int = 2000) -> Iterator[ChainBreak]:
    """Walk a chain in insertion order and yield every place it is broken."""
    return ChainCheck(model, chunk_size=chunk_size).breaks()
