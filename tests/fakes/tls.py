"""Throw-away TLS material for test servers on 127.0.0.1.

``create_tls_files(directory)`` makes a fresh certificate authority and a server certificate
signed by it, valid for ``127.0.0.1`` (IP subjectAltName) and ``localhost`` (DNS
subjectAltName), and writes them as PEM files:

* ``ca.pem`` - the CA certificate; give it to clients as their trust bundle
  (``requests.post(..., verify=ca_path)``);
* ``server.pem`` - the server certificate;
* ``server.key`` - the server's private key (unencrypted PKCS#8);
* ``ca.key`` - the CA's private key, with which ``create_client_certificate`` signs client
  certificates (mutual TLS) for the same CA.

Nothing is cached: every call creates new keys, so no two test runs trust each other's
certificates. Keys are ECDSA P-256, which is fast to generate.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TLSFiles", "create_client_certificate", "create_tls_files"]

CA_FILENAME = "ca.pem"
CA_KEY_FILENAME = "ca.key"
CERT_FILENAME = "server.pem"
KEY_FILENAME = "server.key"


class TLSFiles(NamedTuple):
    """Paths of the PEM files written by :func:`create_tls_files`."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mktintegration tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def create_tls_files(directory: Path, *, valid_days: int = 7) -> TLSFiles:
    """Create a new CA and a server certificate for 127.0.0.1/localhost in ``directory``.

    The directory is created if needed. Returns the paths of ``ca.pem``, ``server.pem``
    and ``server.key``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=valid_days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("mktintegration test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = TLSFiles(
        ca_path=directory / CA_FILENAME,
        cert_path=directory / CERT_FILENAME,
        key_path=directory / KEY_FILENAME,
    )
    files.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key_path, server_key)
    _write_key(directory / CA_KEY_FILENAME, ca_key)
    return files


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def create_client_certificate(
    files: TLSFiles, name: str, *, organization: str = "mktintegration tests", valid_days: int = 7
) -> tuple[Path, Path]:
    """A client certificate (``clientAuth``) for ``CN=name,O=organization``, signed by the CA
    of ``files``; written next to it as ``<name>.pem`` and ``<name>.key``."""
    ca_cert = x509.load_pem_x509_certificate(files.ca_path.read_bytes())
    ca_key = serialization.load_pem_private_key(
        (files.ca_path.parent / CA_KEY_FILENAME).read_bytes(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path = files.ca_path.parent / f"{name}.pem"
    key_path = files.ca_path.parent / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return cert_path, key_path
