"""SFTP with a pinned host key: upload to a temporary name, rename, check the size.

The host goes through the outbound address guard (``mktintegration/netguard.py``) when the
destination is saved and again when connecting: the socket is connected to a checked address
and handed to paramiko, so an internal address is never reached (nor probed).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import io
import posixpath
import re
import socket
from dataclasses import dataclass
from typing import Any

import paramiko

from exports.destinations.base import DestinationType, ExportFile, raise_if, register
from mktintegration import netguard
from mktintegration.errors import ConnectorError, ErrorKind

CONNECT_TIMEOUT = 15.0
IO_TIMEOUT = 60.0
_FINGERPRINT = re.compile(r"SHA256:([A-Za-z0-9+/]{43})=?")
# SFTP answers that retrying will not fix (paramiko raises them as OSError with an errno).
_PERMANENT_ERRNOS = {
    errno.ENOENT: "does not exist",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


@dataclass(frozen=True)
class SftpConfig:
    host: str
    port: int
    username: str
    remote_dir: str
    host_key_fingerprint: str

    @classmethod
    def of(cls, destination) -> SftpConfig:
        return cls(
            destination.host,
            destination.port,
            destination.username,
            destination.remote_dir,
            destination.host_key_fingerprint,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def fingerprint_sha256(key: paramiko.PKey) -> str:
    """OpenSSH's fingerprint: 'SHA256:' + unpadded base64 of the SHA-256 of the key blob."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def load_private_key(text: str) -> paramiko.PKey:
    """A private key from its OpenSSH or PEM text; ValueError (without the key) otherwise."""
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text.strip() + "\n"))
        except paramiko.PasswordRequiredException:
            raise ValueError(
                "the private key is protected by a passphrase; give an unencrypted key"
            ) from None
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            continue
    raise ValueError(
        "not a private key that can be read (OpenSSH or PEM format; Ed25519, ECDSA or RSA)"
    )


@register
class Sftp(DestinationType):
    kind = "sftp"
    secret_fields = ("password", "private_key")

    def clean(self, destination) -> None:
        errors = {}
        destination.host = (destination.host or "").strip()
        destination.username = (destination.username or "").strip()
        destination.remote_dir = (destination.remote_dir or "").strip()
        if not destination.host:
            errors["host"] = "an SFTP destination needs a host"
        elif not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]+", destination.host):
            errors["host"] = "give a host name or IP address (no scheme, user or path)"
        else:
            try:
                netguard.resolve_checked(destination.host, destination.port or 22)
            except netguard.AddressRefused as exc:
                errors["host"] = exc.message
            except socket.gaierror:
                pass  # not resolvable from here (yet): the guard checks it again on connect
        if not destination.username:
            errors["username"] = "an SFTP destination needs a user name"
        if any(ord(ch) < 32 for ch in destination.remote_dir):
            errors["remote_dir"] = "the folder name holds control characters"
        match = _FINGERPRINT.search(destination.host_key_fingerprint or "")
        if match:
            destination.host_key_fingerprint = f"SHA256:{match.group(1)}"
        else:
            errors["host_key_fingerprint"] = (
                "give the server's SHA256 host key fingerprint, e.g. 'SHA256:' followed by 43 "
                "characters; get it with `ssh-keyscan -t ed25519 HOST | ssh-keygen -lf -`"
            )
        raise_if(errors)

    def describe(self, destination) -> str:
        return (
            f"sftp://{destination.username}@{destination.host}:{destination.port}/"
            f"{destination.remote_dir.lstrip('/')}"
        )

    def deliver(self, destination, file: ExportFile, secrets: dict[str, str]) -> dict[str, Any]:
        config = SftpConfig.of(destination)
        transport = _connect(config, secrets)
        try:
            sftp = paramiko.SFTPClient.from_transport(transport)
            sftp.get_channel().settimeout(IO_TIMEOUT)
            return _upload(sftp, config, file)
        except ConnectorError:
            raise
        except OSError as exc:
            reason = _PERMANENT_ERRNOS.get(exc.errno)
            if reason:
                raise ConnectorError(
                    f"sftp: {config.remote_dir or 'the home folder'} on {config.where}: {reason}",
                    kind=ErrorKind.CONFIG,
                ) from None
            raise ConnectorError(
                f"sftp: upload to {config.where} failed: {_reason(exc)}", kind=ErrorKind.TRANSIENT
            ) from None
        except (paramiko.SSHException, EOFError) as exc:
            raise ConnectorError(
                f"sftp: upload to {config.where} failed: {_reason(exc)}", kind=ErrorKind.TRANSIENT
            ) from None
        finally:
            transport.close()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or "connection lost"
    return f"{type(exc).__name__}: {text}"[:300]


def _connect(config: SftpConfig, secrets: dict[str, str]) -> paramiko.Transport:
    """An authenticated transport, after the server proved it holds the pinned host key."""
    try:
        sock = netguard.connect_checked(config.host, config.port, timeout=CONNECT_TIMEOUT)
    except netguard.AddressRefused as exc:
        raise ConnectorError(
            f"sftp: {exc.message}; nothing was sent to {config.where}", kind=ErrorKind.CONFIG
        ) from None
    except OSError as exc:  # socket.gaierror (the name does not resolve) included
        raise ConnectorError(
            f"sftp: cannot connect to {config.where}: {_reason(exc)}", kind=ErrorKind.TRANSIENT
        ) from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = transport.handshake_timeout = CONNECT_TIMEOUT
    transport.auth_timeout = CONNECT_TIMEOUT
    try:
        try:
            transport.start_client(timeout=CONNECT_TIMEOUT)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectorError(
                f"sftp: SSH handshake with {config.where} failed: {_reason(exc)}",
                kind=ErrorKind.TRANSIENT,
            ) from None
        _check_host_key(transport, config)
        _authenticate(transport, config, secrets)
    except BaseException:
        transport.close()
        raise
    return transport


def _check_host_key(transport: paramiko.Transport, config: SftpConfig) -> None:
    key = transport.get_remote_server_key()
    offered = fingerprint_sha256(key)
    expected = config.host_key_fingerprint
    if not hmac.compare_digest(offered.encode(), expected.encode()):
        raise ConnectorError(
            f"host key mismatch: expected {expected}, server offered {offered} "
            f"({key.get_name()}); nothing was sent. If the server's key really changed, "
            "check the new fingerprint with its administrator and update the destination.",
            kind=ErrorKind.CONFIG,
        )


def _authenticate(transport: paramiko.Transport, config: SftpConfig, secrets) -> None:
    try:
        if secrets.get("private_key"):
            transport.auth_publickey(config.username, load_private_key(secrets["private_key"]))
        else:
            transport.auth_password(config.username, secrets.get("password", ""))
    except ValueError as exc:  # the stored key cannot be read
        raise ConnectorError(f"sftp: {exc}", kind=ErrorKind.CONFIG) from None
    except paramiko.AuthenticationException:
        method = "private key" if secrets.get("private_key") else "password"
        raise ConnectorError(
            f"sftp: {config.where} refused user {config.username!r} with the stored {method}",
            kind=ErrorKind.AUTH,
        ) from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ConnectorError(
            f"sftp: authentication with {config.where} failed: {_reason(exc)}",
            kind=ErrorKind.TRANSIENT,
        ) from None


def _upload(sftp: paramiko.SFTPClient, config: SftpConfig, file: ExportFile) -> dict[str, Any]:
    folder = config.remote_dir or "."
    part = posixpath.join(folder, f".{file.name}.part")
    final = posixpath.join(folder, file.name)
    try:
        with file.path.open("rb") as source:
            sftp.putfo(source, part, file_size=file.size, confirm=False)
        stored = sftp.stat(part).st_size
        if stored != file.size:
            raise ConnectorError(
                f"sftp: the upload of {file.name} to {config.where} is incomplete: the server "
                f"holds {stored} of {file.size} bytes",
                kind=ErrorKind.TRANSIENT,
            )
        sftp.posix_rename(part, final)
    except BaseException:
        _remove_quietly(sftp, part)
        raise
    stored = sftp.stat(final).st_size
    if stored != file.size:
        _remove_quietly(sftp, final)
        raise ConnectorError(
            f"sftp: {final} on {config.where} holds {stored} of {file.size} bytes after the "
            "rename; removed",
            kind=ErrorKind.TRANSIENT,
        )
    return {"host": config.host, "port": config.port, "remote_path": final, "size": stored}


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    with contextlib.suppress(Exception):
        sftp.remove(path)
