"""Load against an arena on this machine, for the load benchmark and the flood test (127.0.0.1
only: any other address is refused, so no one aims it at a live arena by mistake).

``store_ready_battles`` writes battles whose answers are already there (state ``ready``), as the
battle engine leaves them, so votes can be measured without waiting for answers. ``vote_clients``
runs closed-loop voters (each votes, reads the answer, votes again) and records every latency.
The voters speak HTTP/1.1 over keep-alive connections themselves (a few lines of asyncio
streams): a general client such as httpx spends more CPU per request than the server under test,
and on a 2-core machine that would measure the client.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from arena.battles.types import Battle, Turn
from arena.keys import battle_key
from arena.trust.identity import new_session_id


def loopback_address(url: str) -> tuple[str, int]:
    """(host, port) of ``url``, which must be on this machine."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"load is only ever sent to this machine (127.0.0.1), not {host!r}")
    return host, parts.port or 80


def store_ready_battles(redis_client, models: list[str], count: int, *, prefix: str = "arena",
                        ttl: int = 3600) -> list[tuple[str, str]]:
    """``count`` two-way battles of ``models`` (cycling through the pairs), answered and ready
    to vote; returns (battle id, session) pairs. ``redis_client`` is a synchronous client."""
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    stored = []
    pipe = redis_client.pipeline(transaction=False)
    now = time.time()
    for n in range(count):
        model_a, model_b = pairs[n % len(pairs)]
        session = new_session_id()
        battle = Battle(battle_id=uuid.uuid4().hex, session_id=session, mode="anonymous", models=[model_a, model_b],
                        selection_probability=1 / len(pairs), strategy="uniform", created_at=now, served_at=now,
                        turns=[Turn(prompt="Name a prime number.", answers=["Seven.", "Two, the only even one."],
                                    failed=[False, False], started_at=now, finished_at=now)])
        key = battle_key(prefix, battle.battle_id)
        pipe.hset(key, mapping={"battle": battle.model_dump_json(), "state": "ready"})
        pipe.expire(key, ttl)
        stored.append((battle.battle_id, session))
        if len(pipe) >= 2000:
            pipe.execute()
    pipe.execute()
    return stored


class Connection:
    """One keep-alive HTTP/1.1 connection: ``request`` sends one request and reads the whole reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = loopback_address(url)
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, host)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        if body:
            lines.append("Content-Type: application/json")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        reply_headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                reply_headers[name.strip().lower()] = value.strip()
        length = int(reply_headers.get("content-length", "0"))
        content = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), reply_headers, content

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


@dataclass
class VoteRun:
    """Latencies (seconds) of accepted votes, counts of other answers, and the wall time."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    vote_ids: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


VOTE_BODY = json.dumps({"outcome": "model_a"}).encode()


async def vote_clients(url: str, battles: list[tuple[str, str]] | Iterator[tuple[str, str]], clients: int, *,
                       duration: float | None = None, addresses: list[str] | None = None,
                       rotate_addresses: list[str] | None = None, pause: float = 0.0,
                       keep_ids: bool = False, stop: asyncio.Event | None = None) -> VoteRun:
    """``clients`` concurrent voters, each on its own connection, each voting on the next unused
    battle until the battles run out, ``duration`` seconds pass or ``stop`` is set. With
    ``addresses``, voter i sends ``X-Forwarded-For: addresses[i % len]`` (counted only if the arena
    trusts 127.0.0.1 as a proxy); with ``rotate_addresses``, vote n is sent from the n-th of them
    instead (a fresh voter per vote). ``pause``: seconds between one voter's votes (0: closed loop)."""
    loopback_address(url)
    run = VoteRun()
    queue = iter(battles)
    started = time.perf_counter()
    deadline = started + duration if duration else None
    sent = iter(range(1 << 62))

    async def voter(index: int) -> None:
        connection = await Connection.open(url)
        extra = {"X-Forwarded-For": addresses[index % len(addresses)]} if addresses else {}
        try:
            for battle_id, session in queue:
                if (deadline and time.perf_counter() > deadline) or (stop and stop.is_set()):
                    return
                if rotate_addresses:
                    extra = {"X-Forwarded-For": rotate_addresses[next(sent) % len(rotate_addresses)]}
                begin = time.perf_counter()
                try:
                    status, _, content = await connection.request(
                        "POST", f"/api/battles/{battle_id}/vote", VOTE_BODY, {**extra, "X-Arena-Session": session})
                except (OSError, asyncio.IncompleteReadError):
                    run.errors += 1
                    await connection.close()
                    connection = await Connection.open(url)
                    continue
                if status == 200:
                    run.latencies.append(time.perf_counter() - begin)
                    if keep_ids:
                        run.vote_ids.append(json.loads(content)["vote_id"])
                else:
                    run.statuses[status] = run.statuses.get(status, 0) + 1
                if pause:
                    await asyncio.sleep(pause)
        finally:
            await connection.close()

    await asyncio.gather(*(voter(index) for index in range(clients)))
    run.seconds = time.perf_counter() - started
    return run


FLOOD_OVERSIZE = b'{"prompt": "' + b"x" * 100_000 + b'"}'


async def flood(url: str, connections: int, *, switch: str | None = None, stop: str | None = None,
                seconds: float = 60.0, address: str = "192.0.2.1") -> dict[int, int]:
    """A bounded flood of requests the arena must refuse cheaply: ``connections`` connections, each
    sending as fast as it is answered, cycling through battles past the rate limit (429), bodies
    over the cap (413), votes on unknown battles (404) and duplicate-key JSON (422), all from one
    ``address`` (through a trusted proxy). With ``switch`` (a file path) it floods only while that
    file exists. Stops after ``seconds`` or once the file ``stop`` exists; returns the count of
    each status."""
    loopback_address(url)
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    requests = [
        ("POST", "/api/battles", b'{"prompt": "flood"}'),
        ("POST", "/api/battles", FLOOD_OVERSIZE),
        ("POST", f"/api/battles/{uuid.uuid4().hex}/vote", b'{"outcome": "model_a"}'),
        ("POST", "/api/battles", b'{"prompt": "a", "prompt": "b"}'),
    ]

    def on() -> bool:
        return switch is None or os.path.exists(switch)

    async def flooder(index: int) -> None:
        connection = await Connection.open(url)
        turn = index
        try:
            while time.perf_counter() < deadline and not (stop and os.path.exists(stop)):
                if not on():
                    await asyncio.sleep(0.01)
                    continue
                method, path, body = requests[turn % len(requests)]
                turn += 1
                try:
                    status, headers, _ = await connection.request(method, path, body, {"X-Forwarded-For": address})
                except (OSError, asyncio.IncompleteReadError):
                    status, headers = -1, {"connection": "close"}
                statuses[status] = statuses.get(status, 0) + 1
                if headers.get("connection") == "close":
                    await connection.close()
                    connection = await Connection.open(url)
        finally:
            await connection.close()

    await asyncio.gather(*(flooder(index) for index in range(connections)))
    return statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arena.sim.load_test",
                                     description="flood an arena on 127.0.0.1 with requests it must refuse")
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--switch", help="flood only while this file exists")
    parser.add_argument("--stop", help="stop once this file exists")
    options = parser.parse_args(argv)
    statuses = asyncio.run(flood(options.url, options.connections, switch=options.switch, stop=options.stop,
                                 seconds=options.seconds))
    print(json.dumps({str(status): count for status, count in sorted(statuses.items())}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
