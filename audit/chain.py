"""What the audit chains hash and sign: pure functions, shared by the models, the write path,
the verifier and the migrations that chained the rows already there.

Changing any of them changes every hash: existing chains would no longer verify.

- ``row_canonical``: a chained row's content (its time, the previous row's hash and its own
  fields) as canonical JSON; the row's hash is its SHA-256.
- ``entry_canonical``: a django-auditlog change-history entry's content, as the database holds
  it; its SHA-256 is stored in the entry's chain link (``ChangeHistoryLink.entry_hash``).
- ``head_sign``: the HMAC of a chain's head (chain name, length, last row id and hash) under
  the first of ``settings.MKT_AUDIT_KEYS``; ``head_signature_valid`` accepts any of them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

GENESIS = "0" * 64

# The entry columns the change history's chain covers: everything an auditor relies on
# (object, action, changes, when, from where, the actor's e-mail at the time). The actor's
# user id is covered by the link itself (``ChangeHistoryLink.actor_id``): deleting a user sets
# it to NULL on the entry, which must not count as tampering.
ENTRY_FIELDS = (
    "id",
    "content_type__app_label",
    "content_type__model",
    "object_pk",
    "object_id",
    "object_repr",
    "serialized_data",
    "action",
    "changes_text",
    "changes",
    "cid",
    "remote_addr",
    "remote_port",
    "timestamp",
    "additional_data",
    "actor_email",
)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _json(payload: Mapping) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def row_canonical(*, at: datetime, prev_hash: str, values: Iterable[tuple[str, object]]) -> str:
    payload: dict[str, object] = {"at": _utc(at), "prev": prev_hash}
    for name, value in values:
        payload[name] = _utc(value) if isinstance(value, datetime) else value
    return _json(payload)


def entry_canonical(values: Mapping) -> str:
    """``values``: one row of ``LogEntry.objects.values(*ENTRY_FIELDS)``."""
    return row_canonical(
        at=values["timestamp"],
        prev_hash="",
        values=((name, values[name]) for name in ENTRY_FIELDS if name != "timestamp"),
    )


def _head_message(chain: str, length: int, last_id: int, last_hash: str) -> bytes:
    return f"mktintegration-audit-head|{chain}|{length}|{last_id}|{last_hash}".encode()


def head_sign(*, keys: list[str], chain: str, length: int, last_id: int, last_hash: str) -> str:
    message = _head_message(chain, length, last_id, last_hash)
    return hmac.new(keys[0].encode(), message, hashlib.sha256).hexdigest()


def head_signature_valid(
    *, keys: list[str], chain: str, length: int, last_id: int, last_hash: str, signature: str
) -> bool:
    message = _head_message(chain, length, last_id, last_hash)
    return any(
        hmac.compare_digest(hmac.new(key.encode(), message, hashlib.sha256).hexdigest(), signature)
        for key in keys
    )
