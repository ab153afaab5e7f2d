"""Reading the audit logs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from audit.models import GENESIS, AccessLog, ChainedLog, OutboundLog

CHAINS: tuple[type[ChainedLog], ...] = (AccessLog, OutboundLog)


@dataclass(frozen=True)
class ChainBreak:
    model: str
    row_id: int
    reason: str

    def __str__(self):
        return f"{self.model} row {self.row_id}: {self.reason}"


def chain_verify(model: type[ChainedLog], *, chunk_size: int = 5000) -> Iterator[ChainBreak]:
    """Walk a chain in insertion order and yield every place it is broken."""
    expected_prev = GENESIS
    previous_id = None
    for row in model.objects.order_by("id").iterator(chunk_size=chunk_size):
        if row.prev_hash != expected_prev:
            where = f"row {previous_id}" if previous_id else "the start of the log"
            yield ChainBreak(
                model.__name__,
                row.id,
                f"its link to {where} is broken: a row between them was removed, "
                "or that row was altered",
            )
        if row.compute_hash() != row.row_hash:
            yield ChainBreak(model.__name__, row.id, "its content does not match its hash: altered")
        expected_prev = row.row_hash
        previous_id = row.id
