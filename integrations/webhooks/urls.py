from django.urls import path

from integrations.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path(
        "marketing/integrations/webhooks/<slug:vendor>/<int:connection_id>",
        views.receive_view,
        name="receive",
    ),
]
