"""Production start-up: refusals that name the variable, and a clean `check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _production_env(tmp_path, **overrides):
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "mktintegration.settings",
        "MKT_DATA_DIR": str(tmp_path),
        "DEBUG": "0",
        "SECRET_KEY": "p" * 20 + "roduction-secret-key-with-enough-entropy-1234567890!",
        "MKT_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "MKT_AUDIT_KEYS": "audit-" + "k" * 40,
        "ALLOWED_HOSTS": "mkt.example.com",
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "MKT_ENCRYPTION_KEYS", "MKT_AUDIT_KEYS", "ALLOWED_HOSTS"]
)
def test_production_start_without_a_required_variable_is_refused_naming_it(tmp_path, missing):
    result = _manage(_production_env(tmp_path, **{missing: None}), "check")

    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
    assert not (tmp_path / "secret_key").exists()  # no silent fallback to a generated key


def test_an_events_sink_without_its_secret_is_refused_naming_both(tmp_path):
    env = _production_env(tmp_path, MKT_EVENTS_SINK_URL="https://collector.example.com/mkt")

    result = _manage(env, "check")

    assert result.returncode != 0
    assert "MKT_EVENTS_SINK_URL is set without MKT_EVENTS_SINK_SECRET" in result.stderr


def test_an_oauth_app_with_an_id_and_no_secret_is_refused_naming_both(tmp_path):
    result = _manage(_production_env(tmp_path, MKT_HUBSPOT_CLIENT_ID="app-123"), "check")

    assert result.returncode != 0
    assert "MKT_HUBSPOT_CLIENT_ID and MKT_HUBSPOT_CLIENT_SECRET are set together" in result.stderr


def test_malformed_encryption_key_is_refused_naming_the_variable(tmp_path):
    result = _manage(_production_env(tmp_path, MKT_ENCRYPTION_KEYS="not-a-key"), "check")

    assert result.returncode != 0
    assert "MKT_ENCRYPTION_KEYS entry 1 is not a Fernet key" in result.stderr


@pytest.mark.parametrize("share", ["80%", "0", "1.5"])
def test_a_quota_alert_share_outside_0_to_1_is_refused_naming_the_range(tmp_path, share):
    result = _manage(_production_env(tmp_path, MKT_ALERT_QUOTA_SHARE=share), "check")

    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert (
        f"MKT_ALERT_QUOTA_SHARE={share!r} must be a number more than 0 and at most 1"
        in result.stderr
    )


def test_an_unknown_log_format_is_refused_naming_the_choices(tmp_path):
    result = _manage(_production_env(tmp_path, MKT_LOG_FORMAT="xml"), "check")

    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "MKT_LOG_FORMAT is plain or json, not 'xml'." in result.stderr


def test_short_audit_key_is_refused_naming_the_variable(tmp_path):
    env = _production_env(tmp_path, MKT_AUDIT_KEYS="audit-" + "k" * 40 + ",short")
    result = _manage(env, "check")

    assert result.returncode != 0
    assert "MKT_AUDIT_KEYS entry 2 is too short" in result.stderr


def test_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "key"
    secret_file.write_text("f" * 60 + "\n")
    env = _production_env(tmp_path, SECRET_KEY=None, SECRET_KEY_FILE=str(secret_file))

    assert _manage(env, "check").returncode == 0


def test_check_deploy_reports_no_warnings_with_production_settings(tmp_path):
    result = _manage(_production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_demo_mode_refuses_to_run_with_debug_off(tmp_path):
    result = _manage(_production_env(tmp_path, MKT_DEMO="1"), "check")

    assert result.returncode != 0
    assert "MKT_DEMO=1" in result.stderr


def test_embedded_default_needs_only_debug(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "1",
        "MKT_DATA_DIR": str(tmp_path),
    }
    result = _manage(env, "check")

    assert result.returncode == 0, result.stderr
    # Demo secrets are generated once, private to the owner, and reused.
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "encryption_key").exists()
    assert (tmp_path / "audit_key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("command", ["create_api_token", "verify_audit"])
def test_a_missing_setting_is_one_readable_line_not_a_traceback(tmp_path, command):
    env = _production_env(tmp_path, DEBUG=None, SECRET_KEY=None)

    result = _manage(env, command)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "manage.py: SECRET_KEY is not set. It is required when DEBUG is off (set SECRET_KEY or "
        "SECRET_KEY_FILE; see .env.example)."
    ]


def test_after_make_run_the_readme_commands_use_the_demo_settings(tmp_path):
    """`make run` leaves data/demo.env; manage.py then needs no variable, as the README shows."""
    (tmp_path / "demo.env").write_text("# Written by make run\nDEBUG=1\n")
    env = {"PATH": os.environ["PATH"], "MKT_DATA_DIR": str(tmp_path)}

    migrated = _manage(env, "migrate", "--noinput")
    verified = _manage(env, "verify_audit")

    assert migrated.returncode == 0, migrated.stderr
    assert verified.returncode == 0, verified.stderr
    assert "Audit logs verified" in verified.stdout
    # The environment still wins: production settings stay production settings.
    refused = _manage({**env, "DEBUG": "0"}, "verify_audit")
    assert refused.returncode != 0 and "SECRET_KEY is not set" in refused.stderr


def _variables_read_by_settings() -> set[str]:
    """Every NAME passed to an env_* helper in settings.py (the one place configuration is read)."""
    import ast

    tree = ast.parse((ROOT / "mktintegration" / "settings.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id.startswith("env_")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(node.args[0].value)
    return names


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_variable_the_settings_read_is_documented(document):
    variables = _variables_read_by_settings()
    assert {"SECRET_KEY", "DATABASE_URL", "MKT_SYNC_RECORD_ATTEMPTS"} <= variables
    text = (ROOT / document).read_text()
    undocumented = sorted(name for name in variables if name not in text)
    assert not undocumented, f"{document} does not mention {', '.join(undocumented)}"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MKT_CONSENT_URL": "https://consent.example.com"}, "MKT_CONSENT_TOKEN is not"),
        ({"MKT_CONSENT_URL": "ftp://consent.example.com", "MKT_CONSENT_TOKEN": "t"}, "https://"),
        (
            {"MKT_CONSENT_BATCH_SIZE": "5000"},
            "MKT_CONSENT_BATCH_SIZE=5000 is out of range: 1 to 1000",
        ),
        ({"MKT_CONSENT_CACHE_SECONDS": "3600"}, "MKT_CONSENT_CACHE_SECONDS=3600 is out of range"),
        ({"MKT_REALTIME_RUN_RECORDS": "0"}, "MKT_REALTIME_RUN_RECORDS=0 is out of range"),
        ({"MKT_REALTIME_WINDOW_SECONDS": "0"}, "MKT_REALTIME_WINDOW_SECONDS='0' must be a number"),
        (
            {"MKT_CONSENT_TIMEOUT_SECONDS": "soon"},
            "MKT_CONSENT_TIMEOUT_SECONDS='soon' is not a number",
        ),
    ],
)
def test_a_consent_setting_out_of_bounds_is_refused_naming_it(tmp_path, overrides, message):
    result = _manage(_production_env(tmp_path, **overrides), "check")

    assert result.returncode != 0
    assert message in result.stderr
