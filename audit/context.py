"""Who made a configuration change: the actor and address django-auditlog records.

Three sources, one rule (the actor is whoever the change is done for):

- admin requests: ``AuditContextMiddleware`` (auditlog's middleware) records the session user
  and the client address;
- API requests: DRF checks the token after the middleware ran, so the API base classes call
  ``audit_actor(request.user, ...)`` once the request is authenticated;
- Celery tasks: the named system actor, set around every task (mktintegration.system_actor).

auditlog's own ``set_actor()`` does not restore an enclosing context when it exits: nested
inside the middleware's context it would leave that context's signal receiver connected for
good (one leaked receiver per API request). So ``audit_actor()`` fills in the actor of the
context already open in this thread, and puts the old values back afterwards; only outside
any context does it open auditlog's own.

This module imports no app of ours: everything may use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from auditlog.context import auditlog_value, set_actor

# The context dict auditlog is using in this thread (the one its receiver reads), if any.
_open_context: ContextVar[dict | None] = ContextVar("mkt_audit_context", default=None)


@contextmanager
def audit_context_open(context: dict) -> Iterator[None]:
    """Mark ``context`` (a dict auditlog's context manager is using) as the open one."""
    token = _open_context.set(context)
    try:
        yield
    finally:
        _open_context.reset(token)


@contextmanager
def audit_actor(actor, *, remote_addr: str | None = None) -> Iterator[None]:
    """Changes made inside are recorded with this actor (a user) and address."""
    context = _open_context.get()
    if context is not None:
        saved = {key: context.get(key) for key in ("actor", "remote_addr")}
        context["actor"] = actor
        if remote_addr:
            context["remote_addr"] = remote_addr
        try:
            yield
        finally:
            context.update(saved)
        return
    with set_actor(actor, remote_addr=remote_addr), audit_context_open(auditlog_value.get()):
        yield


def client_address(request) -> str | None:
    """The address the request came from (REMOTE_ADDR: a proxy in front must set it; a
    client-supplied X-Forwarded-For is not trusted for the audit trail)."""
    return request.META.get("REMOTE_ADDR") or None
