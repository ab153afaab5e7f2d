"""The one receiver view: every vendor, every connection (docs/webhooks.md)."""

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from integrations.webhooks.receive import webhook_receive


@csrf_exempt  # vendors post without our CSRF token; each proves itself its own way
@never_cache
@require_http_methods(["GET", "POST"])
def receive_view(request, vendor: str, connection_id: int):
    answer = webhook_receive(vendor=vendor, connection_id=connection_id, request=request)
    response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
    for name, value in answer.headers.items():
        response[name] = value
    return response
