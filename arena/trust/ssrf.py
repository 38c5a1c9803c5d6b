"""The SSRF guard for endpoints registered by model owners.

A stranger's base URL must not make the server call into its own machine or the private network
behind it. The rule is one function (:func:`refusal`: which addresses are refused and why, in
words an owner can act on); it is applied twice:

- at registration (:meth:`EndpointGuard.check_url`): the scheme, then every address the host
  resolves to;
- at connection time, inside the HTTP clients (:class:`GuardedNetworkBackend`, plugged into the
  ``httpx2`` transport both ``openai`` and ``huggingface_hub`` use): the host is resolved again,
  every address is checked, and the socket is opened to the checked address itself. A DNS answer
  that changes after registration (rebinding), or a redirect to a refused address, therefore
  fails at the connection, before a byte is sent.

An IPv6 address that embeds an IPv4 address (``::ffff:a.b.c.d``, ``::a.b.c.d``, ``::ffff:0:a.b.c.d``,
NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo ``2001::/32``) is judged
by the IPv4 address it ends at, in both places.

Name resolution is injectable (``resolve``) and so is the final dial (``dial``), so tests can
point names and "public" addresses at servers on 127.0.0.1 without sending traffic elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

import httpcore2
import httpx2
from httpcore2._backends.auto import AutoBackend

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (text)
Resolver = Callable[[str, int], Awaitable[list[str]]]
# the checked address and port -> the address and port actually dialled (tests only)
Dialer = Callable[[str, int], tuple[str, int]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
ALLOW_HINT = "ask the operator to allow private endpoints"


class EndpointRefused(ValueError):
    """A base URL (or the address it resolved to) the guard refuses; the message names the rule."""


class RefusedConnection(httpcore2.ConnectError):
    """Raised inside the HTTP client when a connection would go to a refused address: the clients
    report it like any connection failure, and ``refusal`` keeps the rule's message."""

    def __init__(self, refusal: str):
        super().__init__(refusal)
        self.refusal = refusal


# IPv6 ranges that carry an IPv4 address inside them, and where (the byte offsets of its four
# octets): a connection to one of them ends at that IPv4 address (through a translator, a tunnel
# or the host's own dual stack), so it is judged by that address. The local-use NAT64 prefix may
# be any RFC 6052 length from /48 to /96, so each of its four positions is judged (in practice
# such an address is refused: the /48 position of a /96 spelling reads 0.0.0.0).
_EMBEDDED_IPV4 = [
    (ipaddress.ip_network("::ffff:0:0/96"), "an IPv4-mapped IPv6 address of {}", [(12, 13, 14, 15)]),
    (ipaddress.ip_network("::ffff:0:0:0/96"), "an IPv4-translated IPv6 address of {}", [(12, 13, 14, 15)]),
    (ipaddress.ip_network("::/96"), "an IPv4-compatible IPv6 address of {}", [(12, 13, 14, 15)]),
    (ipaddress.ip_network("64:ff9b::/96"), "a NAT64 address (64:ff9b::/96) of {}", [(12, 13, 14, 15)]),
    (ipaddress.ip_network("64:ff9b:1::/48"), "a local-use NAT64 address (64:ff9b:1::/48) of {}",
     [(12, 13, 14, 15), (9, 10, 11, 12), (7, 9, 10, 11), (6, 7, 9, 10)]),
    (ipaddress.ip_network("2002::/16"), "a 6to4 address of {}", [(2, 3, 4, 5)]),
]
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """(form, with a slot for the address; IPv4 address) for every IPv4 address ``address`` embeds;
    empty for a plain IPv6 address (and for ``::`` and ``::1``, which are themselves, not
    IPv4-compatible spellings)."""
    if address.is_unspecified or address.is_loopback:
        return []
    packed = address.packed
    for network, form, positions in _EMBEDDED_IPV4:
        if address in network:
            return [(form, ipaddress.IPv4Address(bytes(packed[i] for i in octets))) for octets in positions]
    if address in _TEREDO:  # the client's address is the last 32 bits, inverted (RFC 4380)
        return [("a Teredo address whose client is {}",
                 ipaddress.IPv4Address(int.from_bytes(packed[12:], "big") ^ 0xFFFFFFFF))]
    return []


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` may not be connected to (None if it is a public unicast address). An IPv6
    address that embeds an IPv4 address (mapped, compatible, translated, NAT64, 6to4, Teredo) is
    judged by the IPv4 address: refused if any embedding is, allowed if all are public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        refused = [(form, inner_address, refusal(inner_address)) for form, inner_address in embedded]
        refused = [judged for judged in refused if judged[2]]
        if refused:  # name a position that holds an address (0.0.0.0 is only the zeros of another spelling)
            form, inner_address, inner = next((j for j in refused if int(j[1])), refused[0])
            return f"{form.format(inner_address)}, which is {inner}"
        if embedded:
            return None
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address" + (" (the range of the cloud metadata service)"
                                        if isinstance(address, ipaddress.IPv4Address) else "")
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a carrier-grade NAT address (100.64.0.0/10)"
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
        return "a private (unique local) IPv6 address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved, non-public address"
    return None


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id


def check_address(host: str, address_text: str) -> None:
    """Raise EndpointRefused if ``address_text`` (what ``host`` resolved to) is refused."""
    address = _address(address_text)
    reason = refusal(address)
    if reason is None:
        return
    if host.strip("[]") == address_text:
        raise EndpointRefused(f"base_url host {address_text} is {reason}, a non-public address; {ALLOW_HINT}")
    raise EndpointRefused(f"base_url host {host!r} resolves to {reason} {address}, a non-public address; {ALLOW_HINT}")


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, through the system resolver (off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an endpoint URL; EndpointRefused for anything but http(s) with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise EndpointRefused(f"base_url must start with http:// or https://, got scheme {parts.scheme or 'none'!r}: "
                              "only HTTP endpoints can be registered")
    if not parts.hostname:
        raise EndpointRefused("base_url has no host name")
    if parts.username or parts.password:
        raise EndpointRefused("base_url must not contain a user name or password; send the key as api_key")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise EndpointRefused("base_url has an invalid port") from None
    return parts.scheme, parts.hostname, port


class EndpointGuard:
    """The guard's policy (``allow_private``: the operator's switch) and its resolver."""

    def __init__(self, allow_private: bool = False, resolve: Resolver | None = None, dial: Dialer | None = None):
        self.allow_private = allow_private
        self.resolve = resolve or system_resolve
        self.dial = dial

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for ``host`` (every one must pass, or none is used)."""
        literal = host.strip("[]")
        try:
            _address(literal)
            resolved = [literal]
        except ValueError:
            try:
                resolved = await self.resolve(host, port)
            except (OSError, UnicodeError) as exc:
                reason = getattr(exc, "strerror", None) or exc
                raise socket.gaierror(getattr(exc, "errno", socket.EAI_NONAME),
                                      f"endpoint host {host!r} does not resolve ({reason})") from None
            if not resolved:
                raise socket.gaierror(socket.EAI_NONAME, f"endpoint host {host!r} does not resolve")
        if not self.allow_private:
            for address in resolved:
                check_address(host, address)
        return resolved

    async def check_url(self, url: str) -> None:
        """Registration-time check: scheme and host, then every resolved address (unless allowed).
        Raises EndpointRefused naming the rule, or socket.gaierror when the name does not resolve."""
        scheme, host, port = split_url(url)
        if self.allow_private:
            return
        await self.addresses(host, port)

    def transport(self) -> httpx2.AsyncHTTPTransport:
        """An httpx2 transport whose every connection goes through this guard (no proxies)."""
        transport = httpx2.AsyncHTTPTransport(trust_env=False)
        # httpx2 has no public way to pass a network backend; its pool reads this attribute for
        # every new connection (tests/test_ssrf.py proves the guard is the one used).
        transport._pool._network_backend = GuardedNetworkBackend(self)
        return transport

    def http_client(self, **options) -> httpx2.AsyncClient:
        """An httpx2.AsyncClient on :meth:`transport` that ignores proxy environment variables."""
        return httpx2.AsyncClient(transport=self.transport(), trust_env=False, **options)


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's network backend with the guard in front of every TCP connection: the address
    connected to is one the guard checked in this very call (TLS still verifies the host name,
    which httpcore passes to start_tls separately)."""

    def __init__(self, guard: EndpointGuard, inner: httpcore2.AsyncNetworkBackend | None = None):
        self.guard = guard
        self.inner = inner or AutoBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable | None = None) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await self.guard.addresses(host, port)
        except EndpointRefused as refused:
            raise RefusedConnection(str(refused)) from None
        except socket.gaierror as exc:
            raise httpcore2.ConnectError(str(exc.strerror or exc)) from exc
        last_error: Exception | None = None
        for address in addresses:
            target, target_port = self.guard.dial(address, port) if self.guard.dial else (address, port)
            try:
                return await self.inner.connect_tcp(target, target_port, timeout=timeout,
                                                    local_address=local_address, socket_options=socket_options)
            except httpcore2.ConnectError as exc:  # try the next checked address, as a resolver would
                last_error = exc
        raise last_error

    async def connect_unix_socket(self, *args, **kwargs):
        raise RefusedConnection("unix sockets are not endpoints")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
