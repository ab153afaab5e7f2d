from django.urls import path

from integrations.operations import metrics
from integrations.operations.api import events, views

app_name = "operations"

urlpatterns = [
    path("metrics", metrics.metrics_view, name="metrics"),
    path("marketing/integrations/status", views.StatusView.as_view(), name="status"),
    path("marketing/integrations/configure", views.ConfigureView.as_view(), name="configure"),
    path("marketing/events", events.ChangeEventsView.as_view(), name="events"),
    path(
        "marketing/integrations/syncs/<int:pk>/run",
        views.SyncRunStartView.as_view(),
        name="sync-run-start",
    ),
    path(
        "marketing/integrations/syncs/<int:pk>/dead-letters/replay",
        views.DeadLetterReplayView.as_view(),
        name="dead-letter-replay",
    ),
    path(
        "marketing/integrations/exports/<int:pk>/run",
        views.ExportRunStartView.as_view(),
        name="export-run-start",
    ),
    path(
        "marketing/integrations/runs/<int:pk>", views.SyncRunDetailView.as_view(), name="sync-run"
    ),
    path(
        "marketing/integrations/export-runs/<int:pk>",
        views.ExportRunDetailView.as_view(),
        name="export-run",
    ),
]
