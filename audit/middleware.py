"""auditlog's middleware, recording the session user and the client address of each request."""

from __future__ import annotations

from auditlog.cid import set_cid
from auditlog.context import set_extra_data
from auditlog.middleware import AuditlogMiddleware

from audit.context import audit_context_open, client_address


class AuditContextMiddleware(AuditlogMiddleware):
    """As auditlog's, with two differences: the address is REMOTE_ADDR (the same address the
    access log records; a client can write any X-Forwarded-For it likes), and the context is
    marked open so ``audit.context.audit_actor`` can fill in an API token's user later."""

    @staticmethod
    def _get_remote_addr(request):
        return client_address(request)

    def __call__(self, request):
        set_cid(request)
        context = self.get_extra_data(request)
        with set_extra_data(context_data=context), audit_context_open(context):
            return self.get_response(request)
