"""The one settings module. Everything comes from environment variables (see .env.example).

With no variable set except ``DEBUG=1`` (what ``make run`` does) the product runs embedded:
SQLite in ``data/`` and a Celery broker kept in files under ``data/broker`` (no server).
Production sets ``DEBUG=0`` (the default), PostgreSQL, Redis and real secrets.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from mktintegration.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    random_secret_key,
)
from mktintegration.sso import BACKEND_PATH as SSO_BACKEND
from mktintegration.sso import PIPELINE as SSO_PIPELINE
from mktintegration.sso import role_map_parse
from mktintegration.tracing import exporters_from as tracing_exporters_from

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("MKT_DATA_DIR") or BASE_DIR / "data").resolve()

DEBUG = env_bool("DEBUG", False)
# Demo mode: seeded demo users with printed passwords, vendor emulators as demo connections.
DEMO_MODE = env_bool("MKT_DEMO", DEBUG)
if DEMO_MODE and not DEBUG:
    raise ImproperlyConfigured("MKT_DEMO=1 prints passwords and is refused when DEBUG is off.")

SECRET_KEY = env_secret(
    "SECRET_KEY", debug=DEBUG, demo_file=DATA_DIR / "secret_key", generate=random_secret_key
)
# Fernet keys, comma-separated, newest first. The first encrypts; all decrypt (rotation).
MKT_ENCRYPTION_KEYS = [
    key.strip()
    for key in env_secret(
        "MKT_ENCRYPTION_KEYS",
        debug=DEBUG,
        demo_file=DATA_DIR / "encryption_key",
        generate=lambda: Fernet.generate_key().decode(),
    ).split(",")
    if key.strip()
]
for _index, _key in enumerate(MKT_ENCRYPTION_KEYS):
    try:
        Fernet(_key)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            f"MKT_ENCRYPTION_KEYS entry {_index + 1} is not a Fernet key (32 url-safe "
            "base64-encoded bytes; make one with `python -c 'from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())'`)."
        ) from exc

# Keys signing the audit chains' anchors (docs/security.md#audit-trail), comma-separated, newest
# first: the first signs, all verify (rotation: put a new key first, keep the old ones after it).
MKT_AUDIT_KEYS = [
    key.strip()
    for key in env_secret(
        "MKT_AUDIT_KEYS", debug=DEBUG, demo_file=DATA_DIR / "audit_key", generate=random_secret_key
    ).split(",")
    if key.strip()
]
for _index, _key in enumerate(MKT_AUDIT_KEYS):
    if len(_key) < 32:
        raise ImproperlyConfigured(
            f"MKT_AUDIT_KEYS entry {_index + 1} is too short: use at least 32 random characters "
            "(make one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
        )

_local_hosts = ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", _local_hosts if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set. It is required when DEBUG is off "
        "(comma-separated host names this service answers to)."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from here (no CDN)
    "csp",
    "guardian",
    "django_celery_beat",
    "auditlog",
    "social_django",
    "mktintegration",
    "exports.backbone",
    "exports",
    "integrations",
    "integrations.operations",
    "integrations.webhooks",
    "integrations.events_out",
    "audit",
]

MIDDLEWARE = [
    # the request and trace ids of every log line (mktintegration/logcontext.py)
    "mktintegration.logcontext.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # auditlog: the actor and client address of configuration changes (audit/middleware.py)
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # signs out an admin session idle for MKT_SESSION_IDLE_MINUTES (after messages: it says so)
    "mktintegration.session_idle.IdleSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mktintegration.urls"
WSGI_APPLICATION = "mktintegration.wsgi.application"
AUTH_USER_MODEL = "mktintegration.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
LOGIN_URL = "admin:login"

# --- Staff sign-in: SSO (OpenID Connect) and failed-login throttling (docs/security.md) --------
# SSO is on when the endpoint (the issuer URL, without /.well-known/openid-configuration), the
# client id and the client secret are set. IdP groups map to roles: "idp-group=Role,...".
MKT_OIDC_ENDPOINT = (env_str("MKT_OIDC_ENDPOINT") or "").rstrip("/")
MKT_OIDC_CLIENT_ID = env_str("MKT_OIDC_CLIENT_ID") or ""
MKT_OIDC_CLIENT_SECRET = env_str("MKT_OIDC_CLIENT_SECRET") or ""
MKT_OIDC_GROUPS_CLAIM = env_str("MKT_OIDC_GROUPS_CLAIM") or "groups"
MKT_OIDC_SCOPES = env_list("MKT_OIDC_SCOPES")  # beyond openid, profile, email
try:
    MKT_OIDC_ROLE_MAP = role_map_parse(env_str("MKT_OIDC_ROLE_MAP") or "")
except ValueError as _exc:
    raise ImproperlyConfigured(str(_exc)) from _exc
_oidc_required = {
    "MKT_OIDC_ENDPOINT": MKT_OIDC_ENDPOINT,
    "MKT_OIDC_CLIENT_ID": MKT_OIDC_CLIENT_ID,
    "MKT_OIDC_CLIENT_SECRET": MKT_OIDC_CLIENT_SECRET,
}
MKT_OIDC_ENABLED = all(_oidc_required.values())
if any(_oidc_required.values()) and not MKT_OIDC_ENABLED:
    raise ImproperlyConfigured(
        "SSO is half configured: set "
        + ", ".join(name for name, value in _oidc_required.items() if not value)
        + " too (or none of the MKT_OIDC_* variables)."
    )
if MKT_OIDC_ENABLED:
    AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, SSO_BACKEND]
    MIDDLEWARE = [*MIDDLEWARE, "social_django.middleware.SocialAuthExceptionMiddleware"]
SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = MKT_OIDC_ENDPOINT
SOCIAL_AUTH_OIDC_KEY = MKT_OIDC_CLIENT_ID
SOCIAL_AUTH_OIDC_SECRET = MKT_OIDC_CLIENT_SECRET
SOCIAL_AUTH_OIDC_SCOPE = MKT_OIDC_SCOPES
SOCIAL_AUTH_OIDC_USE_PKCE = True
SOCIAL_AUTH_OIDC_GROUPS_KEY = MKT_OIDC_GROUPS_CLAIM
SOCIAL_AUTH_OIDC_GROUPS_MISSING_AS_EMPTY = True  # no groups claim: no role, refused
SOCIAL_AUTH_OIDC_PIPELINE = SSO_PIPELINE
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/admin/"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/admin/login/"
# Password sign-in: progressive delays per account (docs/security.md, docs/adr/0005). Each
# failure beyond the free ones makes the next attempt wait, from 1 s doubling up to the cap;
# failures are forgotten after the window. An address the account signed in from
# within the known-address days waits only for its own failures on that account. The cache
# holds the counts: use Redis (REDIS_URL) with several web processes.
MKT_LOGIN_FREE_FAILURES = env_int(
    "MKT_LOGIN_FREE_FAILURES",
    env_int("MKT_LOGIN_MAX_FAILURES", 5),  # the old name still works
)
MKT_LOGIN_ADDRESS_FREE_FAILURES = env_int("MKT_LOGIN_ADDRESS_FREE_FAILURES", 50)
MKT_LOGIN_MAX_DELAY_MINUTES = env_int("MKT_LOGIN_MAX_DELAY_MINUTES", 15)
MKT_LOGIN_FAILURE_WINDOW_MINUTES = env_int("MKT_LOGIN_FAILURE_WINDOW_MINUTES", 60)
MKT_LOGIN_KNOWN_ADDRESS_DAYS = env_int("MKT_LOGIN_KNOWN_ADDRESS_DAYS", 30)
if min(MKT_LOGIN_FREE_FAILURES, MKT_LOGIN_ADDRESS_FREE_FAILURES, MKT_LOGIN_MAX_DELAY_MINUTES) < 1:
    raise ImproperlyConfigured(
        "MKT_LOGIN_FREE_FAILURES, MKT_LOGIN_ADDRESS_FREE_FAILURES and MKT_LOGIN_MAX_DELAY_MINUTES "
        "must be at least 1."
    )
if MKT_LOGIN_FAILURE_WINDOW_MINUTES < MKT_LOGIN_MAX_DELAY_MINUTES:
    raise ImproperlyConfigured(
        "MKT_LOGIN_FAILURE_WINDOW_MINUTES must be at least MKT_LOGIN_MAX_DELAY_MINUTES "
        "(failures forgotten before the longest delay ends would undo the delay)."
    )
if MKT_LOGIN_KNOWN_ADDRESS_DAYS < 0:
    raise ImproperlyConfigured("MKT_LOGIN_KNOWN_ADDRESS_DAYS must be 0 (off) or more.")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Databases -----------------------------------------------------------------------------
# SQLite (embedded default): WAL so readers never block the writer, a generous busy timeout,
# and BEGIN IMMEDIATE so a transaction that will write takes the lock up front instead of
# failing half-way with "database is locked".
_SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
        "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536; PRAGMA mmap_size=268435456;"
    ),
}


def _database(url: str) -> dict:
    config = dj_database_url.parse(
        url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**_SQLITE_OPTIONS, **config.get("OPTIONS", {})}
        config["CONN_MAX_AGE"] = 0
        name = config.get("NAME") or ""
        if name and name != ":memory:":
            Path(name).parent.mkdir(parents=True, exist_ok=True)
    return config


DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'mktintegration.sqlite3'}"
DATABASES = {"default": _database(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so a real Celery worker process can share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-mktintegration.sqlite3")}

# The backbone (the company's own data) sits behind its own alias. Without
# BACKBONE_DATABASE_URL it is the default database, and the router sends backbone models to
# the default connection so one transaction sees both (see docs/adr/0002-backbone-alias.md).
BACKBONE_DATABASE_URL = env_str("BACKBONE_DATABASE_URL")
if BACKBONE_DATABASE_URL:
    DATABASES["backbone"] = _database(BACKBONE_DATABASE_URL)
    BACKBONE_DB_ALIAS = "backbone"
else:
    DATABASES["backbone"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}
    BACKBONE_DB_ALIAS = "default"
DATABASE_ROUTERS = ["exports.backbone.router.BackboneRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Redis, Celery ------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "mkt",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.2,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task a worker took and did not acknowledge (it died) is delivered again after this.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
    }
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE") or "mktintegration"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # every run and attempt is a row in our own tables
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Email ---------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "mktintegration <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
MKT_BASE_URL = (env_str("MKT_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")

# --- Security ------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
# Admin sessions end SESSION_COOKIE_AGE seconds after sign-in however active (absolute), and
# after MKT_SESSION_IDLE_MINUTES without a request (mktintegration/session_idle.py).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
MKT_SESSION_IDLE_MINUTES = env_int("MKT_SESSION_IDLE_MINUTES", 30)
if MKT_SESSION_IDLE_MINUTES < 1:
    raise ImproperlyConfigured("MKT_SESSION_IDLE_MINUTES must be at least 1.")
X_FRAME_OPTIONS = "DENY"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Content-Security-Policy on every response (django-csp): our own origin only, no inline
# script or style anywhere (templates use static files; docs/security.md). Swagger UI's CSS
# draws its icons from data: URIs. Forms may post to the SSO provider (its login redirect).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *([_origin(MKT_OIDC_ENDPOINT)] if MKT_OIDC_ENABLED else [])],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mktintegration.api_auth.ApiTokenAuthentication",
        "mktintegration.api_auth.ClientCertificateAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies with their nesting bounded (mktintegration/bounds.py).
    "DEFAULT_PARSER_CLASSES": [
        "mktintegration.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {"export": env_str("MKT_EXPORT_RATE") or "120/min"},
    # Body errors (not JSON, too large) answer JSON like any other (mktintegration/api_errors.py)
    "EXCEPTION_HANDLER": "mktintegration.api_errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mktintegration API",
    "DESCRIPTION": "Exports of client data and metrics, integration status and configuration. "
    "Services behind mutual TLS may authenticate by client certificate instead of a token "
    "(docs/mtls.md; OpenAPI 3.0 has no scheme for it).",
    "VERSION": "1",
    "AUTHENTICATION_WHITELIST": [
        "mktintegration.api_auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema lists every endpoint and parameter: for signed-in users and tokens only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # /api/docs/ from the drf-spectacular-sidecar package: works offline, same origin only.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Host names outbound HTTP and SFTP may reach even though they resolve to internal addresses
# (tests, the demo's vendor emulators). Empty in production. The guard: mktintegration/netguard.py.
MKT_HTTP_ALLOW_PRIVATE_HOSTS = env_list(
    "MKT_HTTP_ALLOW_PRIVATE_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else []
)

# Syncs: how long a worker may wait for the rate budget before it reschedules the batch,
# attempts per batch on transient errors, and runs a failing record gets before it is
# dead-lettered.
MKT_RATE_MAX_WAIT_SECONDS = float(env_str("MKT_RATE_MAX_WAIT_SECONDS") or 20)
MKT_SYNC_BATCH_ATTEMPTS = env_int("MKT_SYNC_BATCH_ATTEMPTS", 5)
MKT_SYNC_RETRY_BASE_SECONDS = float(env_str("MKT_SYNC_RETRY_BASE_SECONDS") or 5)
MKT_SYNC_RECORD_ATTEMPTS = env_int("MKT_SYNC_RECORD_ATTEMPTS", 5)
MKT_RUN_STALE_SECONDS = env_int("MKT_RUN_STALE_SECONDS", 300)
# A batch in a vendor job (Salesforce Bulk API 2.0) asks the vendor this often whether it ended.
MKT_SYNC_JOB_POLL_SECONDS = float(env_str("MKT_SYNC_JOB_POLL_SECONDS") or 5)
# Real-time syncs (docs/realtime.md): a changed record waits this long for more changes
# before its run starts (changes meanwhile go in the same run), and one run takes at most this
# many records (more wait for the next run: a burst becomes batches, never losses).
MKT_REALTIME_WINDOW_SECONDS = env_float("MKT_REALTIME_WINDOW_SECONDS", 1.0, low=0, high=3600)
MKT_REALTIME_RUN_RECORDS = env_int("MKT_REALTIME_RUN_RECORDS", 5000)
if not 1 <= MKT_REALTIME_RUN_RECORDS <= 100_000:  # 0 would start runs of nothing, forever
    raise ImproperlyConfigured(
        f"MKT_REALTIME_RUN_RECORDS={MKT_REALTIME_RUN_RECORDS} is out of range: 1 to 100000."
    )

# --- Connecting vendor accounts by OAuth (docs/security.md#oauth-tokens) ----------------------
# This installation's OAuth app at each vendor (its redirect URI: MKT_BASE_URL +
# /admin/integrations/connection/oauth/<vendor>/callback/). A vendor whose id and secret are
# not both set offers no Connect.
MKT_OAUTH_CLIENTS = {
    "hubspot": {
        "client_id": env_str("MKT_HUBSPOT_CLIENT_ID") or "",
        "client_secret": env_str("MKT_HUBSPOT_CLIENT_SECRET") or "",
    },
    "mailchimp": {
        "client_id": env_str("MKT_MAILCHIMP_CLIENT_ID") or "",
        "client_secret": env_str("MKT_MAILCHIMP_CLIENT_SECRET") or "",
    },
    # Constant Contact's app (PKCE and rotating refresh tokens; the portal's API key is the id).
    "constantcontact": {
        "client_id": env_str("MKT_CONSTANTCONTACT_CLIENT_ID") or "",
        "client_secret": env_str("MKT_CONSTANTCONTACT_CLIENT_SECRET") or "",
    },
    # One External Client App for Salesforce and Account Engagement (Pardot) connections.
    "salesforce": {
        "client_id": env_str("MKT_SALESFORCE_CLIENT_ID") or "",
        "client_secret": env_str("MKT_SALESFORCE_CLIENT_SECRET") or "",
    },
}
for _vendor, _client in MKT_OAUTH_CLIENTS.items():
    if any(_client.values()) and not all(_client.values()):
        raise ImproperlyConfigured(
            f"MKT_{_vendor.upper()}_CLIENT_ID and MKT_{_vendor.upper()}_CLIENT_SECRET are set "
            "together or not at all."
        )
# A Connect must come back from the vendor's consent page within this many minutes.
MKT_OAUTH_STATE_MINUTES = env_int("MKT_OAUTH_STATE_MINUTES", 10)
# An access token this close to its expiry is renewed before it is sent.
MKT_OAUTH_REFRESH_MARGIN_SECONDS = env_int("MKT_OAUTH_REFRESH_MARGIN_SECONDS", 300)
if MKT_OAUTH_STATE_MINUTES < 1 or MKT_OAUTH_REFRESH_MARGIN_SECONDS < 0:
    raise ImproperlyConfigured(
        "MKT_OAUTH_STATE_MINUTES must be at least 1 and MKT_OAUTH_REFRESH_MARGIN_SECONDS 0 or more."
    )

# --- Salesforce (docs/connectors/salesforce.md) -------------------------------------------------
# A run with more records than this to send goes through Bulk API 2.0, in jobs of at most
# MKT_SALESFORCE_BULK_JOB_RECORDS records (sObject Collections of 200 otherwise).
MKT_SALESFORCE_BULK_THRESHOLD = env_int("MKT_SALESFORCE_BULK_THRESHOLD", 2000)
MKT_SALESFORCE_BULK_JOB_RECORDS = env_int("MKT_SALESFORCE_BULK_JOB_RECORDS", 10_000)
# Syncs use at most this share of the org's daily API requests (the rest is the org's other
# users'); at it, or when Salesforce refuses for its limit, requests wait this many seconds.
MKT_SALESFORCE_DAILY_API_SHARE = float(env_str("MKT_SALESFORCE_DAILY_API_SHARE") or 0.9)
MKT_SALESFORCE_LIMIT_WAIT_SECONDS = env_int("MKT_SALESFORCE_LIMIT_WAIT_SECONDS", 900)
if not (
    MKT_SALESFORCE_BULK_THRESHOLD >= 0
    and 1 <= MKT_SALESFORCE_BULK_JOB_RECORDS <= 1_000_000
    and 0 < MKT_SALESFORCE_DAILY_API_SHARE <= 1
    and MKT_SALESFORCE_LIMIT_WAIT_SECONDS >= 1
):
    raise ImproperlyConfigured(
        "MKT_SALESFORCE_BULK_THRESHOLD must be 0 or more, MKT_SALESFORCE_BULK_JOB_RECORDS "
        "1 to 1000000, MKT_SALESFORCE_DAILY_API_SHARE above 0 and at most 1, and "
        "MKT_SALESFORCE_LIMIT_WAIT_SECONDS at least 1."
    )

# The CA bundle outbound HTTPS verifies against (PEM file); None: the system's default bundle.
MKT_HTTP_CA_BUNDLE = env_str("MKT_HTTP_CA_BUNDLE") or None

# --- Consent (docs/consent.md) ----------------------------------------------------------------
# Empty: the backbone's consent table. A URL: the company's consent service (JSON contract in
# docs/consent-service.openapi.yaml), asked in batches with a short timeout; when it cannot
# answer, nothing is sent (deferred, planned again next run).
MKT_CONSENT_URL = (env_str("MKT_CONSENT_URL") or "").rstrip("/")
MKT_CONSENT_TOKEN = env_str("MKT_CONSENT_TOKEN") or ""
MKT_CONSENT_TIMEOUT_SECONDS = env_float("MKT_CONSENT_TIMEOUT_SECONDS", 2.0)
MKT_CONSENT_BATCH_SIZE = env_int("MKT_CONSENT_BATCH_SIZE", 500)
MKT_CONSENT_CACHE_SECONDS = env_int("MKT_CONSENT_CACHE_SECONDS", 30)
if MKT_CONSENT_URL and not MKT_CONSENT_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured("MKT_CONSENT_URL must be an https:// URL.")
if MKT_CONSENT_URL and not MKT_CONSENT_TOKEN:
    raise ImproperlyConfigured(
        "MKT_CONSENT_URL is set but MKT_CONSENT_TOKEN is not: the consent service is called "
        "with a bearer token (set MKT_CONSENT_TOKEN or MKT_CONSENT_TOKEN_FILE)."
    )
for _name, _value, _low, _high in (
    ("MKT_CONSENT_TIMEOUT_SECONDS", MKT_CONSENT_TIMEOUT_SECONDS, 0.1, 10),
    ("MKT_CONSENT_BATCH_SIZE", MKT_CONSENT_BATCH_SIZE, 1, 1000),
    ("MKT_CONSENT_CACHE_SECONDS", MKT_CONSENT_CACHE_SECONDS, 0, 300),
):
    if not _low <= _value <= _high:
        raise ImproperlyConfigured(f"{_name}={_value:g} is out of range: {_low:g} to {_high:g}.")

# --- Scheduled file exports (docs/exports.md) ------------------------------------------------
# Local-folder destinations write under this directory (each into its own subdirectory).
MKT_EXPORT_DIR = Path(env_str("MKT_EXPORT_DIR") or DATA_DIR / "exports").resolve()
# No schedule may run more often than this (per schedule; Integration Admins may lower it).
MKT_EXPORT_MIN_INTERVAL_MINUTES = env_int("MKT_EXPORT_MIN_INTERVAL_MINUTES", 15)
# A run whose file grows past this fails instead of filling the disk.
MKT_EXPORT_MAX_FILE_BYTES = env_int("MKT_EXPORT_MAX_FILE_BYTES", 2 * 1024**3)
# Transient delivery failures retry after about base * 2^(attempt-1) seconds (with jitter).
MKT_EXPORT_RETRY_BASE_SECONDS = env_int("MKT_EXPORT_RETRY_BASE_SECONDS", 30)
MKT_EXPORT_MAX_ATTEMPTS = env_int("MKT_EXPORT_MAX_ATTEMPTS", 5)
# (Export runs share MKT_RUN_STALE_SECONDS with sync runs: the reaper's heartbeat timeout.)
for _name in (
    "MKT_EXPORT_MIN_INTERVAL_MINUTES",
    "MKT_EXPORT_MAX_FILE_BYTES",
    "MKT_EXPORT_RETRY_BASE_SECONDS",
    "MKT_EXPORT_MAX_ATTEMPTS",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")

# --- Operations: status, alerts, uptime, metrics (docs/operations.md) -------------------------
# Each connection's credentials are tested this often (beat looks every minute for due ones).
MKT_CONNECTION_CHECK_MINUTES = env_int("MKT_CONNECTION_CHECK_MINUTES", 15)
# A connection whose checks succeeded less than this share (percent) of the last 24 h is degraded.
MKT_STATUS_UPTIME_TARGET = float(env_str("MKT_STATUS_UPTIME_TARGET") or 99.0)
# Alerts: the groups whose users get every alert (besides each object's own list), the open
# dead letters of one sync that raise an alert, how late a scheduled run may start before it
# counts as missed, how often the same alert may be sent, and how soon expiring credentials warn.
MKT_ALERT_ROLES = env_list("MKT_ALERT_ROLES", ["Integration Admin"])
MKT_ALERT_DEAD_LETTER_THRESHOLD = env_int("MKT_ALERT_DEAD_LETTER_THRESHOLD", 100)
MKT_ALERT_MISSED_GRACE_MINUTES = env_int("MKT_ALERT_MISSED_GRACE_MINUTES", 10)
MKT_ALERT_REPEAT_MINUTES = env_int("MKT_ALERT_REPEAT_MINUTES", 60)
MKT_ALERT_EXPIRY_WARNING_DAYS = env_int("MKT_ALERT_EXPIRY_WARNING_DAYS", 7)
# A vendor account that has used this share of its daily quota raises an alert (docs/syncs.md).
MKT_ALERT_QUOTA_SHARE = env_float("MKT_ALERT_QUOTA_SHARE", 0.8, low=0, high=1)
# The real-time objective: p95 of source change -> confirmed at the destination, seconds.
MKT_SLO_P95_SECONDS = env_int("MKT_SLO_P95_SECONDS", 60)
# /metrics answers a bearer token (if set) or, without one, these networks (direct requests,
# not ones relayed by a proxy); anything else gets 403. Empty: no network is trusted.
MKT_METRICS_TOKEN = env_str("MKT_METRICS_TOKEN") or ""
MKT_METRICS_ALLOWED_NETWORKS = env_list("MKT_METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
# Scrapes within this many seconds share one reading of the database (cache, all processes).
MKT_METRICS_CACHE_SECONDS = env_int("MKT_METRICS_CACHE_SECONDS", 10)

# --- Feedback from vendors: webhook receivers and polls (docs/webhooks.md) --------------------
# The client secret of the HubSpot app whose webhook subscriptions point here: it signs every
# HubSpot webhook (X-HubSpot-Signature-v3). Unset: HubSpot webhooks are refused (503).
MKT_HUBSPOT_WEBHOOK_SECRET = env_str("MKT_HUBSPOT_WEBHOOK_SECRET") or ""
# A webhook request's body is at most this many bytes (413 beyond), and one connection's
# receiver takes at most this many events a minute (429 beyond, with Retry-After).
MKT_WEBHOOK_MAX_BYTES = env_int("MKT_WEBHOOK_MAX_BYTES", 256 * 1024)
MKT_WEBHOOK_EVENTS_PER_MINUTE = env_int("MKT_WEBHOOK_EVENTS_PER_MINUTE", 120_000)
# Received events (with their payloads: personal data) are kept this many days.
MKT_WEBHOOK_RETENTION_DAYS = env_int("MKT_WEBHOOK_RETENTION_DAYS", 180)
# A sent campaign's report (opens, clicks) is read every this many minutes for this many days.
MKT_FEEDBACK_POLL_MINUTES = env_int("MKT_FEEDBACK_POLL_MINUTES", 15)
MKT_FEEDBACK_POLL_DAYS = env_int("MKT_FEEDBACK_POLL_DAYS", 7)

# --- Events out to the analytics pipeline (docs/events-out.md) --------------------------------
# Deliveries and vendor feedback as CloudEvents, POSTed in batches to this URL and signed with
# the secret (X-Mkt-Signature: sha256=<hex HMAC of the body>). Unset: no events are kept.
MKT_EVENTS_SINK_URL = env_str("MKT_EVENTS_SINK_URL") or ""
MKT_EVENTS_SINK_SECRET = env_str("MKT_EVENTS_SINK_SECRET") or ""
if MKT_EVENTS_SINK_URL and not MKT_EVENTS_SINK_SECRET:
    raise ImproperlyConfigured(
        "MKT_EVENTS_SINK_URL is set without MKT_EVENTS_SINK_SECRET: events are only sent signed."
    )
# Events per request; first back-off after a failed delivery (doubling, at most 15 minutes);
# delivered events are kept this many days; 1 adds e-mail addresses to the events' data.
MKT_EVENTS_BATCH = env_int("MKT_EVENTS_BATCH", 100)
MKT_EVENTS_RETRY_BASE_SECONDS = env_int("MKT_EVENTS_RETRY_BASE_SECONDS", 5)
MKT_EVENTS_RETENTION_DAYS = env_int("MKT_EVENTS_RETENTION_DAYS", 7)
MKT_EVENTS_PERSONAL_DATA = env_bool("MKT_EVENTS_PERSONAL_DATA", False)
for _name in (
    "MKT_WEBHOOK_MAX_BYTES",
    "MKT_WEBHOOK_EVENTS_PER_MINUTE",
    "MKT_WEBHOOK_RETENTION_DAYS",
    "MKT_FEEDBACK_POLL_MINUTES",
    "MKT_FEEDBACK_POLL_DAYS",
    "MKT_EVENTS_BATCH",
    "MKT_EVENTS_RETRY_BASE_SECONDS",
    "MKT_EVENTS_RETENTION_DAYS",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")

# Optional key for hashing API token secrets (the secrets are 256-bit random already).
MKT_TOKEN_PEPPER = env_str("MKT_TOKEN_PEPPER") or ""

GUARDIAN_ANONYMOUS_USER_NAME = None  # no anonymous user row; anonymous callers get nothing
ANONYMOUS_USER_NAME = None

# --- i18n, static --------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or DATA_DIR / "static")

# --- Logging -------------------------------------------------------------------------------
# Log lines carry the request, trace, run and sync ids they are about; MKT_LOG_FORMAT=json
# writes one JSON object per line (docs/observability.md).
MKT_LOG_FORMAT = env_str("MKT_LOG_FORMAT") or "plain"
if MKT_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"MKT_LOG_FORMAT is plain or json, not {MKT_LOG_FORMAT[:20]!r}.")
# Traces: OpenTelemetry, off unless OTEL_TRACES_EXPORTER names an exporter; the standard
# OTEL_* variables configure it (mktintegration/tracing.py, docs/observability.md). Checked
# here so that a web process or worker does not start on a value it would ignore.
try:
    OTEL_TRACES_EXPORTERS = tracing_exporters_from()
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "mktintegration.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {"()": "mktintegration.logcontext.PlainFormatter"},
        "json": {"()": "mktintegration.logcontext.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": MKT_LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}
