"""Constant Contact's bulk activities: what a ``contacts_json_import`` did to each contact.

An import answers only an ``activity_id``; ``GET /activities/{id}`` says when it has run
(``state``), how many contacts it took (``status.items_total_count`` /
``items_completed_count``) and, in ``activity_errors``, why rows were refused [C10][C15]. The
names of the per-record error fields are unconfirmed in VENDORS.md: each error is read as a
message that names the contact's address (the emulator puts it last, in parentheses), and a
refusal that names no contact of ours makes the contacts it could be about go again rather
than count as delivered. Whether a contact was created or updated is read back from the
contacts created since the import began (``GET /contacts?created_after=``), which also gives
the new contacts' ids. Where the vendor gives whole seconds, a contact someone else created in
the second the import began counts as created by it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from integrations.connectors.base import Outcome, OutRecord, RecordResult
from integrations.connectors.feedback import occurred

RUNNING = frozenset({"initialized", "processing"})
SETTLE_SECONDS = 10.0  # how long a short activity (a delete) is waited for
_ADDRESS = re.compile(r"[^\s()<>,;:\"'\[\]]+@[^\s()<>,;:\"'\[\]]+")
_TAIL = re.compile(r"\(([^()]*)\)\s*\.?\s*$")
# The listing's filter may be exclusive, or the vendor's times whole seconds: it is asked from
# a second before the import began, and a contact counts as created when its creation time is
# not before the import's.
QUERY_SLACK = timedelta(seconds=1)


@dataclass
class ActivityReport:
    """What the import activities of one batch reported, gathered."""

    states: list[str] = field(default_factory=list)
    began: datetime | None = None
    refused: dict[str, str] = field(default_factory=dict)  # address -> the vendor's message
    unattributed: int = 0  # rows refused whose message names none of our contacts
    problems: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return any(state in RUNNING for state in self.states)

    @property
    def completed(self) -> bool:
        return bool(self.states) and all(state == "completed" for state in self.states)

    def add(self, activity: dict, addresses: set[str]) -> None:
        state = str(activity.get("state") or "")
        self.states.append(state)
        began = occurred(str(activity.get("created_at") or ""))
        self.began = began if self.began is None else min(self.began, began)
        messages = [_message(error) for error in activity.get("activity_errors") or ()]
        named = 0
        for message in messages:
            found = [a for a in _addresses(message) if a in addresses]
            for address in found:
                self.refused.setdefault(address, message)
            named += bool(found)
        # Refusals naming none of ours; or, where the counts say more rows were not completed
        # than were named (whether completed counts refused rows is unconfirmed), those.
        status = activity.get("status") or {}
        total = _count(status.get("items_total_count"))
        done = _count(status.get("items_completed_count"))
        not_done = total - done if total is not None and done is not None else 0
        self.unattributed += max(len(messages) - named, not_done - named, 0)
        if state not in RUNNING and state != "completed":
            self.problems.append(f"the import ended {state or 'without a state'}")
            self.problems += messages[:3]


def outcomes(
    records: list[OutRecord], report: ActivityReport, created: dict[str, str]
) -> list[RecordResult]:
    """One result per record: refused rows rejected with the vendor's reason, created ones
    created (with their id), the rest updated when the import completed and accounted for every
    row, else sent again."""
    results = []
    why = "; ".join(report.problems) or (
        f"Constant Contact did not import {report.unattributed:,} contact(s) of this import "
        "without saying which"
    )
    clean = report.completed and not report.unattributed
    for record in records:
        address = record.match_value.lower()
        if address in report.refused:
            message = f"Constant Contact refused it: {report.refused[address]}"[:500]
            results.append(RecordResult(record.key, Outcome.REJECTED, "", message))
        elif address in created:
            results.append(RecordResult(record.key, Outcome.CREATED, created[address]))
        elif clean:
            results.append(RecordResult(record.key, Outcome.UPDATED, record.destination_id))
        else:
            results.append(RecordResult(record.key, Outcome.RETRY, "", why[:500]))
    return results


def _message(error) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("error_message") or error)
    return str(error)


def _addresses(message: str) -> list[str]:
    found = [match.group(0).lower() for match in _ADDRESS.finditer(message)]
    tail = _TAIL.search(message)
    if tail:
        found.append(tail.group(1).strip().lower())
    return found


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def settled_state(connector, activity: str) -> str:
    """The state of a short activity once it has run, or as it is after ``SETTLE_SECONDS``."""
    deadline = time.monotonic() + SETTLE_SECONDS
    state = ""
    while activity:
        answer = connector.call("GET", f"/activities/{activity}", what="activity status").json()
        state = str(answer.get("state") or "")
        if state not in RUNNING or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return state
