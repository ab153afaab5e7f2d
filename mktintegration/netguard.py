"""The outbound address guard: one rule for every connection the product opens.

Outbound HTTP (``mktintegration/http.py``) and SFTP (``exports/destinations/sftp.py``) refuse
to reach private, loopback, link-local, multicast and other non-global addresses, unless the
host name is listed in ``MKT_HTTP_ALLOW_PRIVATE_HOSTS`` (tests and the demo's emulators on
127.0.0.1). The rule is applied twice: when a destination is saved (a form error naming the
host and its address) and when connecting. At connect time the name is resolved once, every
address is checked, and the socket is connected to a checked address literal (and its peer
checked again), so a name re-pointed at an internal address between the check and the
connect (DNS rebinding) gets nowhere; a refused host is never connected to at all, so the
answer is the same whether anything listens there or not.

This module imports no app of ours: integrations and exports both use it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from django.conf import settings


class AddressRefused(Exception):
    """The host resolves to an internal address and is not allow-listed."""

    def __init__(self, host: str, address: str):
        self.host = host
        self.address = address
        self.message = (
            f"{host} resolves to an internal address ({address}); connections to internal "
            "addresses are refused"
        )
        super().__init__(self.message)


def bare_host(host: str) -> str:
    """The host as the resolver takes it: lower case, no trailing dot, an IPv6 literal
    without its brackets."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def host_is_allow_listed(host: str) -> bool:
    """Whether ``host`` may resolve to an internal address (``MKT_HTTP_ALLOW_PRIVATE_HOSTS``)."""
    allowed = {bare_host(name) for name in settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS}
    return bare_host(host) in allowed


def address_is_internal(address: str) -> bool:
    """Whether an IP address is anything but a public unicast address (IPv4-mapped IPv6
    addresses are judged by their IPv4 address)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_address(host: str, address: str) -> None:
    """AddressRefused if ``address`` (what ``host`` resolved to) is internal and the host is
    not allow-listed."""
    if address_is_internal(address) and not host_is_allow_listed(host):
        raise AddressRefused(host, address)


def resolve_checked(host: str, port: int) -> list[tuple]:
    """``host``'s TCP addresses (getaddrinfo entries), each one checked.

    AddressRefused if any of them is internal (a name pointing partly inside is refused as a
    whole); ``socket.gaierror`` if the name does not resolve or is not a valid name.
    """
    try:
        infos = socket.getaddrinfo(bare_host(host), port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # a label too long for the IDNA codec
        raise socket.gaierror(f"not a valid host name ({exc})") from None
    for info in infos:
        check_address(host, str(info[4][0]))
    return infos


def connect_checked(
    host: str,
    port: int,
    *,
    timeout: float | None,
    socket_options: Iterable[tuple] = (),
) -> socket.socket:
    """A TCP socket connected to one of ``host``'s checked addresses.

    Nothing is connected unless every address passed the check. Each address is tried in
    turn with ``timeout`` (seconds; None blocks) for the connect and every later operation;
    the last OSError is raised if none answers.
    """
    error: OSError | None = None
    for family, kind, proto, _name, sockaddr in resolve_checked(host, port):
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options:
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            check_address(host, sock.getpeername()[0])
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error or OSError(f"{host} resolved to no address")
