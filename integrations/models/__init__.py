from integrations.models.connections import Connection, ConnectionCheck, ConnectionStatus
from integrations.models.ledger import DeadLetter, DeadLetterStatus, LedgerEntry, LedgerStatus
from integrations.models.oauth import GrantState, OAuthGrant
from integrations.models.realtime import RealtimeLag, RealtimePending
from integrations.models.runs import (
    DailyQuotaCount,
    RateBucket,
    RunStatus,
    SyncBatch,
    SyncRun,
    Trigger,
)
from integrations.models.syncs import FieldMapping, Sync, SyncMode

__all__ = [
    "Connection",
    "ConnectionCheck",
    "ConnectionStatus",
    "DailyQuotaCount",
    "DeadLetter",
    "DeadLetterStatus",
    "FieldMapping",
    "GrantState",
    "LedgerEntry",
    "LedgerStatus",
    "OAuthGrant",
    "RateBucket",
    "RealtimeLag",
    "RealtimePending",
    "RunStatus",
    "Sync",
    "SyncBatch",
    "SyncMode",
    "SyncRun",
    "Trigger",
]
