"""The access log of what syncs read from the backbone: one row per plan (a run's or a
preview's), written when the plan ends, whether it finished or failed; never one per record.

- A run's row (channel ``sync``) counts the source rows its plan read. Its deliveries read
  the planned records again at send time (consent and region are checked again): records
  that row already counts.
- A preview's row (channel ``preview``) counts the records shown to the user, who is named
  with the address the request came from; a refused preview writes a ``denied`` row.
"""

from __future__ import annotations

import time

from audit.models import Channel, Outcome
from audit.services import access_log_write
from integrations.engine.planner import Planner
from integrations.models import Sync


def _actor(user) -> dict:
    if user is None:
        return {"actor": "system", "user_id": None}
    return {"actor": f"user:{user.get_username()}", "user_id": user.pk}


def plan_access_log(
    *,
    planner: Planner,
    outcome: str,
    started: float,
    preview_shown: int | None = None,
    user=None,
    client_address: str | None = None,
) -> None:
    """``started``: ``time.monotonic()`` before the plan. ``preview_shown``: the records a
    preview showed (None: a run's plan). A run's actor is whoever triggered it, else system."""
    run, sync = planner.run, planner.sync
    preview = preview_shown is not None
    read = f"{planner.rows_read:,} source rows read"
    if planner.keys_read:
        read += f", {planner.keys_read:,} keys compared for mirror deletes"
    what = f"{'preview' if preview else run.trigger} run {run.pk}" if run.pk else "preview"
    access_log_write(
        channel=Channel.PREVIEW if preview else Channel.SYNC,
        **_actor(user if preview else run.triggered_by),
        dataset=sync.dataset,
        filters=sync.filters or {},
        fields=list(planner.ctx.reader.fields),
        rows=preview_shown if preview else planner.rows_read,
        duration_ms=int((time.monotonic() - started) * 1000),
        outcome=outcome,
        client_address=client_address,
        detail=f"sync {sync.pk} ({sync.name}), {what}: {read}",
    )


def preview_refused_log(*, sync: Sync, user, client_address: str | None = None) -> None:
    """A preview the user may not make: nothing was read."""
    access_log_write(
        channel=Channel.PREVIEW,
        **_actor(user),
        dataset=sync.dataset,
        filters=sync.filters or {},
        outcome=Outcome.DENIED,
        status_code=403,
        client_address=client_address,
        detail=f"sync {sync.pk} ({sync.name}), preview: refused (no preview permission)",
    )
