"""A flood of refused requests from one client must not slow everyone else down.

A client network (IPv4 address, IPv6 /64) that collects ``refusals`` refused answers (400, 404,
413, 422, 429) within ``window`` seconds is held for ``penalty`` seconds: each of its requests is
then answered 429 by this middleware without reaching the app, after a short delay (a tarpit: a
client that floods with N connections and waits for each answer then sends about N requests per
``delay`` instead of thousands a second). The delay costs a sleeping coroutine, and at most
``max_delayed`` wait at once (past that the 429 is immediate). Counted per web process, in memory
(each process shields itself); at most ``max_clients`` networks are remembered (oldest dropped).
No honest page or API user collects dozens of refusals in seconds: the page shows its errors in
200 replies, and a refused API call says what to fix.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arena.trust.client_address import client_network

REFUSED_STATUSES = frozenset({400, 404, 413, 422, 429})


class _Record:
    __slots__ = ("window_start", "refusals", "held_until")

    def __init__(self, now: float):
        self.window_start = now
        self.refusals = 0
        self.held_until = 0.0


class FloodGuardMiddleware:
    def __init__(self, app: ASGIApp, *, refusals: int = 30, window: float = 10.0, penalty: float = 10.0,
                 delay: float = 1.0, max_delayed: int = 256, max_clients: int = 10_000):
        self.app = app
        self.refusals = refusals
        self.window = window
        self.penalty = penalty
        self.delay = delay
        self.max_delayed = max_delayed
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Record] = OrderedDict()
        self._delayed = 0

    def _record(self, network: str, now: float) -> _Record:
        record = self._clients.get(network)
        if record is None:
            record = self._clients[network] = _Record(now)
            if len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(network)
        return record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.refusals <= 0:
            return await self.app(scope, receive, send)
        client = scope.get("client")
        network = client_network(client[0] if client else None)
        now = time.monotonic()
        record = self._clients.get(network)
        if record is not None and record.held_until > now:
            return await self._refuse(record.held_until - now, send)

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in REFUSED_STATUSES:
                self._count_refusal(network)
            await send(message)

        await self.app(scope, receive, watched_send)

    def _count_refusal(self, network: str) -> None:
        now = time.monotonic()
        record = self._record(network, now)
        if now - record.window_start > self.window:
            record.window_start, record.refusals = now, 0
        record.refusals += 1
        if record.refusals >= self.refusals:
            record.held_until = now + self.penalty

    async def _refuse(self, remaining: float, send: Send) -> None:
        if self._delayed < self.max_delayed:
            self._delayed += 1
            try:
                await asyncio.sleep(self.delay)
            finally:
                self._delayed -= 1
        retry = max(1, int(remaining + 0.999))
        detail = (f"too many refused requests from your address: every request is refused "
                  f"for {retry} s more; fix the requests (each refusal said what was wrong)")
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"retry-after", str(retry).encode())]})
        await send({"type": "http.response.body", "body": body})
