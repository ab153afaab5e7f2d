"""Settings for the test suite: the production settings module with test defaults.

Tests run with DEBUG off (as production does) and fixed, committed test-only secrets.
Anything set in the environment wins (CI points DATABASE_URL at PostgreSQL, and so on).
"""

import os
from pathlib import Path

_TEST_DEFAULTS = {
    "DEBUG": "0",
    "SECRET_KEY": "test-only-secret-key-not-for-production-0123456789abcdefghijklmnop",
    # A fixed test-only Fernet key, so encrypted fixtures stay readable between runs.
    "MKT_ENCRYPTION_KEYS": "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=",
    "MKT_AUDIT_KEYS": "test-only-audit-key-not-for-production-0123456789",
    "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    # One folder per test session (SQLite test database, file broker), so concurrent runs on
    # one machine do not share them; worker subprocesses inherit it through the environment.
    "MKT_DATA_DIR": str(
        Path(__file__).resolve().parent.parent / "data" / "test" / f"run-{os.getpid()}"
    ),
    "SECURE_SSL_REDIRECT": "0",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "SECURE_HSTS_SECONDS": "0",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    "LOG_LEVEL": "WARNING",
    # The vendor emulators and test servers listen on loopback.
    "MKT_HTTP_ALLOW_PRIVATE_HOSTS": "127.0.0.1,localhost",
}
for _name, _value in _TEST_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

from mktintegration import settings as _production  # noqa: E402

globals().update({name: value for name, value in vars(_production).items() if name.isupper()})
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F821 (copied above)
    # Concurrent sessions on one server get their own test database too.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F821
