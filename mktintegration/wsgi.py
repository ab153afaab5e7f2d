import os

from django.core.wsgi import get_wsgi_application

from mktintegration import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mktintegration.settings")

tracing.configure()  # OTEL_TRACES_EXPORTER set: traces on (before the middleware is loaded)
application = get_wsgi_application()
