from integrations.models.connections import Connection, ConnectionCheck, ConnectionStatus
from integrations.models.ledger import (
    ConsentEvidence,
    DeadLetter,
    DeadLetterStatus,
    LedgerEntry,
    LedgerStatus,
)
from integrations.models.runs import RateBucket, RunStatus, SyncBatch, SyncRun, Trigger
from integrations.models.syncs import FieldMapping, Sync, SyncMode

__all__ = [
    "Connection",
    "ConnectionCheck",
    "ConnectionStatus",
    "ConsentEvidence",
    "DeadLetter",
    "DeadLetterStatus",
    "FieldMapping",
    "LedgerEntry",
    "LedgerStatus",
    "RateBucket",
    "RunStatus",
    "Sync",
    "SyncBatch",
    "SyncMode",
    "SyncRun",
    "Trigger",
]
