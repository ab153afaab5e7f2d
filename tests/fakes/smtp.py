"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every message it receives.

Usage::

    with FakeSMTP() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.host, smtp.port
        ...  # code under test sends mail
        message = smtp.messages[0]        # email.message.EmailMessage
        assert smtp.recipients == [...]   # RCPT TO of every message, in order

``refuse(n)`` makes the next n transactions fail with a 451 (a temporary server error).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Self

from aiosmtpd.controller import Controller


@dataclass
class Received:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage


class _Handler:
    def __init__(self, owner: FakeSMTP):
        self.owner = owner

    async def handle_DATA(self, server, session, envelope):
        with self.owner._lock:
            if self.owner._refusals:
                self.owner._refusals -= 1
                return "451 Requested action aborted: try again later"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.owner._received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message)
            )
        return "250 Message accepted for delivery"


class FakeSMTP:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.port = _free_port(host)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._refusals = 0
        self._controller = Controller(_Handler(self), hostname=host, port=self.port)

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def refuse(self, count: int = 1) -> None:
        with self._lock:
            self._refusals = count

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.received]

    @property
    def recipients(self) -> list[str]:
        return [address for r in self.received for address in r.recipients]

    def clear(self) -> None:
        with self._lock:
            self._received.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
