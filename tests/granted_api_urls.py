"""A test-only URLconf: the project's URLs plus small views on GrantedObjectsAPIView, to prove
the base class (object grants, 404 for others' ids, scopes, the audit actor) on every model
granted one by one."""

from django.urls import path
from rest_framework.response import Response

from exports.models import ExportSchedule
from integrations.models import Connection, Sync
from mktintegration.api_base import GrantedObjectsAPIView
from mktintegration.urls import urlpatterns as project_urlpatterns


class GrantedObjectDetail(GrantedObjectsAPIView):
    def required_scope(self, request) -> str:
        return "integrations:read" if request.method == "GET" else "integrations:configure"

    def get(self, request, pk):
        obj = self.get_granted(pk)
        return Response({"id": obj.pk, "name": obj.name})

    def patch(self, request, pk):
        opts = self.model._meta
        obj = self.get_granted(pk, perm=f"{opts.app_label}.change_{opts.model_name}")
        obj.name = request.data["name"]
        obj.save(update_fields=["name"])
        return Response({"id": obj.pk, "name": obj.name})


GRANTED_MODELS = {"connection": Connection, "sync": Sync, "exportschedule": ExportSchedule}

urlpatterns = [
    *project_urlpatterns,
    *(
        path(f"test-api/{name}/<int:pk>", GrantedObjectDetail.as_view(model=model))
        for name, model in GRANTED_MODELS.items()
    ),
]
