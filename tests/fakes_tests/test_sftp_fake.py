"""FakeSFTPServer: a real paramiko client against the fake server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from paramiko.hostkeys import HostKeyEntry

from tests.fakes.sftp import FakeSFTPServer, generate_ed25519_key

PAYLOAD = b"id,email\n" + b"".join(b"%d,user%d@example.com\n" % (i, i) for i in range(4000))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FakeSFTPServer]:
    with FakeSFTPServer(tmp_path / "root") as server:
        yield server


def connect(
    server: FakeSFTPServer,
    *,
    pinned: paramiko.PKey | None = None,
    pin: bool = True,
    **auth: Any,
) -> paramiko.SSHClient:
    """An SSHClient that only accepts the pinned host key (the server's by default).

    ``pin=False`` pins nothing, so the (RejectPolicy) client knows no key for the server.
    """
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if pin and pinned is None:
        entry = HostKeyEntry.from_line(server.host_key_line)
        assert entry is not None
        client.get_host_keys().add(entry.hostnames[0], entry.key.get_name(), entry.key)
    elif pin and pinned is not None:
        client.get_host_keys().add(f"[{server.host}]:{server.port}", pinned.get_name(), pinned)
    if "pkey" not in auth:
        auth.setdefault("password", "s3cret-pass")
    auth.setdefault("username", "exporter")
    try:
        client.connect(
            server.host,
            server.port,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
            banner_timeout=10,
            auth_timeout=10,
            **auth,
        )
    except BaseException:
        client.close()
        raise
    return client


@pytest.fixture
def sftp(server: FakeSFTPServer) -> Iterator[paramiko.SFTPClient]:
    client = connect(server)
    try:
        with client.open_sftp() as sftp:
            yield sftp
    finally:
        client.close()


def public_only(key: paramiko.PKey) -> paramiko.PKey:
    return paramiko.PKey.from_type_string(key.get_name(), key.asbytes())


# -- host key --------------------------------------------------------------------------


def test_host_key_is_ed25519_with_openssh_fingerprint_and_known_hosts_line(server):
    key = server.host_key
    assert key.get_name() == "ssh-ed25519"
    expected = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    assert server.fingerprint_sha256 == "SHA256:" + expected
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", server.fingerprint_sha256)
    assert server.fingerprint_sha256 == key.fingerprint  # paramiko agrees
    assert server.host_key_line == f"[127.0.0.1]:{server.port} ssh-ed25519 {key.get_base64()}"


def test_given_host_key_is_used(tmp_path):
    host_key = generate_ed25519_key()
    with FakeSFTPServer(tmp_path, host_key=host_key) as server:
        client = connect(server, pinned=public_only(host_key))
        try:
            remote = client.get_transport().get_remote_server_key()
            assert remote == host_key
        finally:
            client.close()


def test_upload_to_temp_name_then_posix_rename_with_pinned_host_key(server, sftp):
    sftp.mkdir("out")
    attrs = sftp.putfo(io.BytesIO(PAYLOAD), "/out/export.csv.part", confirm=True)
    assert attrs.st_size == len(PAYLOAD)
    sftp.posix_rename("/out/export.csv.part", "/out/export.csv")

    assert sftp.stat("/out/export.csv").st_size == len(PAYLOAD)
    assert sftp.listdir("/out") == ["export.csv"]
    assert server.files() == {"out/export.csv": PAYLOAD}
    events = server.events
    assert events.index(("open", "out/export.csv.part", "wb")) < events.index(
        ("posix_rename", "out/export.csv.part", "out/export.csv")
    )
    assert ("close", "out/export.csv.part", len(PAYLOAD)) in events


def test_client_pinned_to_another_key_is_refused(server):
    with pytest.raises(paramiko.BadHostKeyException):
        connect(server, pinned=public_only(generate_ed25519_key()))
    assert server.files() == {}


def test_client_without_the_key_pinned_is_refused(server):
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(server, pin=False)


# -- authentication --------------------------------------------------------------------


def test_password_auth(server):
    connect(server, password="s3cret-pass").close()
    with pytest.raises(paramiko.AuthenticationException):
        connect(server, password="wrong")
    with pytest.raises(paramiko.AuthenticationException):
        connect(server, username="someone-else", password="s3cret-pass")
    auths = [event for event in server.events if event[0] == "auth"]
    assert auths == [
        ("auth", "exporter", "password", True),
        ("auth", "exporter", "password", False),
        ("auth", "someone-else", "password", False),
    ]


def test_public_key_auth(tmp_path):
    client_key = generate_ed25519_key()
    with FakeSFTPServer(tmp_path, authorized_key=public_only(client_key)) as server:
        client = connect(server, pkey=client_key)
        try:
            with client.open_sftp() as sftp:
                sftp.putfo(io.BytesIO(b"x"), "a.txt")
        finally:
            client.close()
        assert server.files() == {"a.txt": b"x"}

        with pytest.raises(paramiko.AuthenticationException):
            connect(server, pkey=generate_ed25519_key())


def test_public_key_auth_is_not_offered_without_an_authorized_key(server):
    with pytest.raises(paramiko.BadAuthenticationType) as excinfo:
        connect(server, pkey=generate_ed25519_key())
    assert excinfo.value.allowed_types == ["password"]


# -- file operations -------------------------------------------------------------------


def test_read_stat_listdir_remove_and_plain_rename(server, sftp):
    sftp.mkdir("/in")
    with sftp.open("/in/a.ndjson", "wb") as remote:
        remote.write(b'{"a": 1}\n')
    with sftp.open("/in/a.ndjson", "rb") as remote:
        assert remote.read() == b'{"a": 1}\n'
    assert sftp.stat("/in/a.ndjson").st_size == 9
    assert sftp.lstat("in").st_size is not None
    assert sorted(sftp.listdir("/")) == ["in"]

    sftp.putfo(io.BytesIO(b"old"), "/in/b.json")
    # Plain SFTP rename refuses to overwrite, like OpenSSH's server; posix-rename replaces.
    with pytest.raises(OSError):
        sftp.rename("/in/a.ndjson", "/in/b.json")
    sftp.posix_rename("/in/a.ndjson", "/in/b.json")
    assert server.files() == {"in/b.json": b'{"a": 1}\n'}
    sftp.rename("/in/b.json", "/in/c.json")
    sftp.remove("/in/c.json")
    assert server.files() == {}
    with pytest.raises(FileNotFoundError):
        sftp.stat("/in/c.json")
    sftp.chmod("/in", 0o750)
    sftp.rmdir("/in")
    assert ("rename", "in/b.json", "in/c.json") in server.events


@pytest.mark.parametrize(
    "path", ["../outside.csv", "/../outside.csv", "out/../../outside.csv", "/a/b/../../../x"]
)
def test_paths_escaping_the_root_are_refused(tmp_path, path):
    root = tmp_path / "root"
    with FakeSFTPServer(root) as server:
        client = connect(server)
        try:
            with client.open_sftp() as sftp:
                with pytest.raises(PermissionError):
                    sftp.putfo(io.BytesIO(b"nope"), path)
                with pytest.raises(PermissionError):
                    sftp.stat(path)
                with pytest.raises(PermissionError):
                    sftp.listdir("..")
        finally:
            client.close()
        assert ("refused", "open", path) in server.events
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


def test_symlink_out_of_the_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with FakeSFTPServer(root) as server:
        client = connect(server)
        try:
            with client.open_sftp() as sftp:
                with pytest.raises(PermissionError):
                    sftp.open("/link/secret.txt", "rb")
                with pytest.raises(PermissionError):
                    sftp.putfo(io.BytesIO(b"x"), "/link/new.txt")
        finally:
            client.close()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


# -- fault injection -------------------------------------------------------------------


def test_fail_uploads(server, sftp):
    server.fail_uploads(2)
    for _ in range(2):
        with pytest.raises(PermissionError):
            sftp.putfo(io.BytesIO(PAYLOAD), "/export.csv.part")
    sftp.putfo(io.BytesIO(PAYLOAD), "/export.csv.part")
    assert server.files() == {"export.csv.part": PAYLOAD}
    opens = [event for event in server.events if event[0] in ("open", "open_denied")]
    assert opens == [
        ("open_denied", "export.csv.part", "wb"),
        ("open_denied", "export.csv.part", "wb"),
        ("open", "export.csv.part", "wb"),
    ]


def test_reads_are_not_affected_by_fail_uploads(server, sftp):
    sftp.putfo(io.BytesIO(b"data"), "/a.csv")
    server.fail_uploads(1)
    with sftp.open("/a.csv", "rb") as remote:
        assert remote.read() == b"data"
    with pytest.raises(PermissionError):
        sftp.putfo(io.BytesIO(b"data"), "/b.csv")


def test_disconnect_after_bytes(server):
    server.disconnect_after_bytes(1000)
    client = connect(server)
    try:
        sftp = client.open_sftp()
        # paramiko reports the drop as SSHException("Server connection dropped") or EOFError.
        with pytest.raises((OSError, EOFError, paramiko.SSHException)):
            sftp.putfo(io.BytesIO(PAYLOAD), "/export.csv.part")
        transport = client.get_transport()
        deadline = time.monotonic() + 5
        while transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not transport.is_active()
    finally:
        client.close()
    assert server.files() == {"export.csv.part": PAYLOAD[:1000]}
    assert ("disconnect", "export.csv.part", 1000) in server.events

    # One-shot: the next connection uploads normally.
    client = connect(server)
    try:
        with client.open_sftp() as sftp:
            sftp.putfo(io.BytesIO(PAYLOAD), "/export.csv.part", confirm=True)
    finally:
        client.close()
    assert server.files() == {"export.csv.part": PAYLOAD}


def test_truncate_writes_is_caught_by_a_size_check(server, sftp):
    server.truncate_writes(True)
    with pytest.raises(OSError, match="size mismatch"):
        sftp.putfo(io.BytesIO(PAYLOAD), "/export.csv.part", confirm=True)
    stored = server.files()["export.csv.part"]
    assert len(stored) == len(PAYLOAD) // 2
    assert PAYLOAD.startswith(stored)
    assert sftp.stat("/export.csv.part").st_size < len(PAYLOAD)
    assert ("truncated", "export.csv.part", len(PAYLOAD), len(PAYLOAD) // 2) in server.events

    server.truncate_writes(False)
    sftp.putfo(io.BytesIO(PAYLOAD), "/export.csv.part", confirm=True)
    assert server.files() == {"export.csv.part": PAYLOAD}


# -- concurrency and shutdown ----------------------------------------------------------


def test_concurrent_uploads(server):
    errors: list[BaseException] = []

    def upload(index: int) -> None:
        try:
            client = connect(server)
            try:
                with client.open_sftp() as sftp:
                    sftp.putfo(io.BytesIO(PAYLOAD + b"%d" % index), f"/f{index}.csv")
            finally:
                client.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert server.files() == {f"f{i}.csv": PAYLOAD + b"%d" % i for i in range(4)}


def _wait_for_threads(baseline: set[threading.Thread], timeout: float = 5.0) -> set:
    deadline = time.monotonic() + timeout
    while True:
        extra = {t for t in threading.enumerate() if t not in baseline and t.is_alive()}
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


def test_stop_ends_all_threads_even_with_a_client_still_connected(tmp_path):
    baseline = set(threading.enumerate())
    server = FakeSFTPServer(tmp_path).start()
    client = connect(server)
    sftp = client.open_sftp()
    sftp.putfo(io.BytesIO(b"x"), "/a")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    client.close()
    assert _wait_for_threads(baseline) == set()
    with pytest.raises(RuntimeError):
        _ = server.port
