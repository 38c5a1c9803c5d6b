"""Connections capped and slow requests cut off, at the socket, before any request reaches the app.

uvicorn alone keeps a connection that never sends a request open for ever (its keep-alive timeout
is armed only after a response), and a request whose headers or body trickle in is never timed
out: 19,800 idle connections from one client exhausted the process's open files and ``/healthz``
failed. Its ``limit_concurrency`` answers 503 to *requests* past the limit, which an idle
connection never makes. So the HTTP protocol uvicorn runs (``GuardedProtocol``, httptools, as
uvicorn's ``auto`` picks) adds, per web process:

- at most ``per_client`` open connections per client address (IPv4 address, IPv6 /64; the peer
  address, so the operator's trusted proxies, which carry everyone's connections, are exempt) and at
  most ``total`` overall: a connection past either is answered ``503`` and closed at once, before it
  costs more than its socket for a moment;
- ``request_timeout`` seconds to send a whole request (headers and body) from the moment the
  connection opens or its last response ends; a client still sending then is disconnected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections import Counter

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from arena.trust.client_address import client_network


def _refusal(detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


TOO_MANY_FROM_CLIENT = _refusal("too many open connections from your address; close some (reuse one connection "
                                "for several requests) and try again")
TOO_MANY_OVERALL = _refusal("the server holds as many connections as it may; try again in a few seconds")


def guarded_protocol(*, total: int, per_client: int, request_timeout: float, trusted_proxies: str = ""):
    """The protocol class for ``uvicorn.Config(http=...)``: HttpToolsProtocol with these limits
    (``per_client`` 0: no per-client cap). Each class counts its own server's connections."""
    trusted = [ipaddress.ip_network(network) for network in trusted_proxies.split(",") if network]
    open_per_client: Counter[str] = Counter()

    def exempt(host: str | None) -> bool:
        try:
            address = ipaddress.ip_address(host or "")
        except ValueError:
            return False
        return any(address in network for network in trusted)

    class GuardedProtocol(HttpToolsProtocol):
        _network: str | None = None
        _request_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else None
            if len(self.connections) > total:
                return self._refuse(TOO_MANY_OVERALL)
            if per_client > 0 and not exempt(host):
                self._network = client_network(host)
                open_per_client[self._network] += 1
                if open_per_client[self._network] > per_client:
                    return self._refuse(TOO_MANY_FROM_CLIENT)
            self._arm_request_timer()

        def _refuse(self, response: bytes) -> None:
            self.transport.write(response)
            self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_request_timer()
            self._uncount()
            super().connection_lost(exc)

        def _uncount(self) -> None:
            if self._network is not None:
                open_per_client[self._network] -= 1
                if open_per_client[self._network] <= 0:
                    del open_per_client[self._network]
                self._network = None

        def handle_websocket_upgrade(self) -> None:
            # the connection now belongs to the WebSocket protocol, which this class never hears close
            self._cancel_request_timer()
            self._uncount()
            super().handle_websocket_upgrade()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._cancel_request_timer()  # the whole request is in: the answer may take as long as it takes

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_request_timer()  # the next request on this connection gets its own deadline

        def _arm_request_timer(self) -> None:
            self._cancel_request_timer()
            self._request_timer = self.loop.call_later(request_timeout, self._request_timed_out)

        def _cancel_request_timer(self) -> None:
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def _request_timed_out(self) -> None:
            self._request_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol
