from django.urls import path

from exports.api import export_view
from exports.datasets import DATASETS

app_name = "exports"

urlpatterns = [
    path(f"marketing/export/{name}", export_view(name), name=f"export-{name}") for name in DATASETS
]
