"""The page's Gradio queue, kept running under a flood of joins and event streams.

Why it needs guarding (Gradio 6, ``gradio/queueing.py``): the queue keeps the messages of each
session in an LRU of 2,000 sessions, in the order sessions first joined. A session that joins and
never opens its event stream stays there; past 2,000 sessions the oldest is evicted even while one
of its events still waits, and the next estimate sent to it raises a KeyError inside the loop that
starts events: the loop ends with ``stopped = True``, and every join is ``503 Queue is stopped``
until a restart. Its ``max_size`` counts only waiting events, not these sessions; and the
undelivered messages of abandoned sessions stay in memory.

So, in front of ``POST .../queue/join`` and ``GET .../queue/data`` (and of Gradio's simple API,
``POST .../call/{api_name}`` and ``GET .../call/{api_name}/{event_id}``, which use the same queue):

- per client (address, IPv6 /64), counted in Redis so every web process shares the budget: at most
  ``joins`` a minute (429) and at most ``streams`` event streams open at once (429);
- per process: at most ``max_sessions`` sessions with events not yet delivered (503 with
  Retry-After past it: the queue is full, not stopped), well under Gradio's 2,000;
- a session that joined and opened no stream within ``abandoned_seconds`` (30) is dropped from the queue
  (its events cancelled, its messages freed), and a session whose stream ended with nothing pending
  is dropped too, so the LRU holds only live sessions and never evicts one; each join moves its
  session to the LRU's young end.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arena.errors import RateLimited
from arena.keys import rate_limit_key
from arena.trust.client_address import client_network
from arena.trust.rate_limit import MINUTE, Limit, Rate, RateLimiter, subject

JOIN_SUFFIX = "/gradio_api/queue/join"
DATA_SUFFIX = "/gradio_api/queue/data"
# Gradio's "simple" API joins the same queue (POST .../call/{api_name}) and streams its answer
# (GET .../call/{api_name}/{event_id}); a caller who names no session gets its event id as one.
CALL_MARK = "/gradio_api/call/"

# A page opens its event stream right after its join answers; one that has not in this long never will.
ABANDONED_SECONDS = 30.0
# An open stream's place in the per-client count lasts at most this long (a process killed with
# streams open must not hold its clients' places for ever); a page reopens a stream per event.
STREAM_LEASE_SECONDS = 600
RETRY_SECONDS = 5

# KEYS[1]: a sorted set, stream id -> when its place lapses (Redis time, ms). ARGV: id, cap, lease ms.
# 1 and the stream holds a place, or 0 (the client already holds ``cap``).
_OPEN_STREAM = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


async def _respond(send: Send, status: int, detail: str, retry_after: int) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"retry-after", str(retry_after).encode())]})
    await send({"type": "http.response.body", "body": body})


class QueueGuard:
    """ASGI middleware; ``gradio_queue`` returns the page's ``gradio.queueing.Queue``."""

    def __init__(self, app: ASGIApp, *, gradio_queue: Callable[[], object], redis_client: aioredis.Redis, prefix: str,
                 joins_per_minute: int, streams_per_client: int, max_sessions: int,
                 abandoned_seconds: float = ABANDONED_SECONDS):
        self.app = app
        self.gradio_queue = gradio_queue
        self.redis = redis_client
        self.prefix = prefix
        self.joins = Rate(joins_per_minute, MINUTE)
        self.streams_per_client = streams_per_client
        self.max_sessions = max_sessions
        self.abandoned_seconds = abandoned_seconds
        self.limiter = RateLimiter(redis_client, prefix, "page requests")
        self._open_stream = redis_client.register_script(_OPEN_STREAM)
        self._joined: OrderedDict[str, float] = OrderedDict()  # session -> when it joined, until its stream opens
        self._streaming: dict[str, int] = {}  # session -> streams open in this process

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if scope["method"] == "POST" and (path.endswith(JOIN_SUFFIX) or CALL_MARK in path):
                return await self._join(scope, receive, send)
            if scope["method"] == "GET" and (path.endswith(DATA_SUFFIX) or CALL_MARK in path):
                return await self._stream(scope, receive, send)
        await self.app(scope, receive, send)

    @staticmethod
    def _network(scope: Scope) -> str:
        client = scope.get("client")
        return client_network(client[0] if client else None)

    # -- joins ---------------------------------------------------------------------------------

    async def _join(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.joins.active:
            limit = Limit(self.joins, subject("client", self._network(scope)), "from your address")
            try:
                await self.limiter.acquire([limit])
            except RateLimited as refusal:
                return await _respond(send, 429, f"{refusal} (the page's queue)", refusal.retry_after or RETRY_SECONDS)
        queue = self.gradio_queue()
        self._drop_abandoned(queue)
        pending = queue.pending_event_ids_session
        if len(pending) >= self.max_sessions:
            return await _respond(send, 503, f"the arena is busy: {len(pending)} sessions are waiting for answers "
                                             f"on this server; try again in {RETRY_SECONDS} s", RETRY_SECONDS)
        # the body names the session: read it (the body limit outside has capped it), then replay it
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        session = _session_of(body)
        if session is not None:
            self._admitted(queue, session)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        answer = []

        async def watched_send(message: Message) -> None:
            if session is None and message["type"] == "http.response.body" and len(answer) < 4:
                answer.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay, watched_send)
        if session is None:  # no session named: Gradio made the event id the session
            event_id = _field(b"".join(answer), "event_id")
            if event_id is not None:
                self._admitted(queue, event_id)

    def _admitted(self, queue, session: str) -> None:
        self._joined.setdefault(session, time.monotonic())
        sessions = queue.pending_messages_per_session
        if session in sessions:
            sessions.move_to_end(session)  # Gradio's LRU evicts by first join; keep an active session young

    def _drop_abandoned(self, queue) -> None:
        """Forget sessions that joined more than ``abandoned_seconds`` ago and never opened a stream."""
        horizon = time.monotonic() - self.abandoned_seconds
        while self._joined:
            session, joined_at = next(iter(self._joined.items()))
            if joined_at > horizon:
                break
            del self._joined[session]
            if not self._streaming.get(session):
                _forget_session(queue, session)

    # -- event streams -------------------------------------------------------------------------

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash") or [None])[0]
        if session is None and CALL_MARK in scope["path"]:
            session = scope["path"].rstrip("/").rsplit("/", 1)[-1]  # the event id, the session of a simple call
        key = member = None
        if self.streams_per_client > 0:
            key = rate_limit_key(self.prefix, "page streams", subject("client", self._network(scope)))
            member = uuid.uuid4().hex
            if not await self._open_stream(keys=[key], args=[member, self.streams_per_client,
                                                              STREAM_LEASE_SECONDS * 1000]):
                return await _respond(send, 429, f"too many open event streams from your address: the limit is "
                                                 f"{self.streams_per_client} at once; close a tab or try again "
                                                 f"in {RETRY_SECONDS} s", RETRY_SECONDS)
        if session is not None:
            self._joined.pop(session, None)
            self._streaming[session] = self._streaming.get(session, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            if key is not None:
                await self.redis.zrem(key, member)
            if session is not None:
                left = self._streaming.pop(session, 1) - 1
                if left > 0:
                    self._streaming[session] = left
                else:
                    queue = self.gradio_queue()
                    if session in queue.pending_event_ids_session:
                        # the client left with events undelivered (Gradio keeps them for ever): a page
                        # reopens its stream at once, so one that does not is dropped as abandoned
                        self._joined.pop(session, None)
                        self._joined[session] = time.monotonic()
                    else:
                        # nothing left to deliver: free its place in Gradio's LRU (a new join recreates it)
                        queue.pending_messages_per_session.pop(session, None)


def _field(body: bytes, name: str) -> str | None:
    """A JSON body's string field ``name``, or None."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    value = document.get(name) if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def _session_of(body: bytes) -> str | None:
    return _field(body, "session_hash")


def _forget_session(queue, session: str) -> None:
    """Drop a session from Gradio's queue: its waiting events, its undelivered messages; a running
    event of it sends nothing more (as Gradio's own clean-up on a disconnect marks it)."""
    for job in (job for jobs in queue.active_jobs if jobs for job in jobs):
        if job.session_hash == session:
            job.alive = False
    for event_queue in queue.event_queue_per_concurrency_id.values():
        for event in [event for event in event_queue.queue if event.session_hash == session]:
            event_queue.queue.remove(event)
            queue.event_ids_to_events.pop(event._id, None)
    queue.pending_event_ids_session.pop(session, None)
    queue.pending_messages_per_session.pop(session, None)
