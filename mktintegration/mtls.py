"""Mutual TLS in gunicorn itself (docs/mtls.md): the worker class hands the application the
client certificate that the TLS handshake verified.

gunicorn verifies client certificates (``cert_reqs``, ``ca_certs``; see
``mktintegration/gunicorn_mtls.py``) but does not tell the application which certificate a
request came with. ``MTLSWorker`` is gunicorn's sync worker plus that: each request's WSGI
environ gets the verified certificate's subject and fingerprint under keys no HTTP header
can produce (headers arrive as ``HTTP_*``), and nothing at all when there was no verified
certificate. ``api_auth.ClientCertificateAuthentication`` reads them. (No Django here: the
gunicorn master imports this module before Django is set up.)
"""

from __future__ import annotations

import hashlib
import ssl

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from gunicorn.workers.sync import SyncWorker

SUBJECT = "mkt.tls_client_subject"
FINGERPRINT = "mkt.tls_client_fingerprint"


def certificate_identity(der: bytes) -> tuple[str, str]:
    """(subject as RFC 4514 writes it, SHA-256 fingerprint in hex) of a DER certificate."""
    certificate = x509.load_der_x509_certificate(der)
    return certificate.subject.rfc4514_string(), hashlib.sha256(der).hexdigest()


def pem_identity(pem: bytes) -> tuple[str, str]:
    """The same, of the first certificate in a PEM file (what an administrator has at hand)."""
    certificate = x509.load_pem_x509_certificate(pem)
    return certificate_identity(certificate.public_bytes(Encoding.DER))


def peer_identity(client) -> tuple[str, str] | None:
    """(subject, fingerprint) of the peer's verified certificate, or None."""
    if not isinstance(client, ssl.SSLSocket):
        return None
    if not client.getpeercert():  # None: no certificate; {}: one that was not verified
        return None
    der = client.getpeercert(binary_form=True)
    return certificate_identity(der) if der else None


class MTLSWorker(SyncWorker):
    """``--worker-class mktintegration.mtls.MTLSWorker``."""

    def handle_request(self, listener, req, client, addr):
        app = self.wsgi
        identity = peer_identity(client)

        def with_peer(environ, start_response):
            if identity is not None:
                environ[SUBJECT], environ[FINGERPRINT] = identity
            return app(environ, start_response)

        self.wsgi = with_peer
        try:
            return super().handle_request(listener, req, client, addr)
        finally:
            self.wsgi = app
