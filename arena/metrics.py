"""Prometheus metrics of the live arena, with the official ``prometheus_client``.

``ArenaMetrics`` holds this process's counters and histograms (battles, votes, refusals, flagged
battles, each model endpoint's latency and errors) and renders them with the gauges read from
Redis at scrape time (``RedisGauges``: flagged voters, stream lag, archive lag, the last refit),
which describe the whole arena rather than one process.

Several web processes on one machine: set ``PROMETHEUS_MULTIPROC_DIR`` (e.g.
``<data-dir>/prometheus``, emptied before they start) in the environment of every one of them;
prometheus_client then keeps each process's values in files there and every scrape, whichever
process serves it, adds them all up (``MultiProcessCollector``). Without it the values live in
this instance's own registry (no module-level global: several arenas in one process, as in the
tests, keep their own).

May import: arena.errors, leaderboard.store.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from arena.errors import BattleConflict, BattleNotFound, InvalidVote, RateLimited, WrongSession
from leaderboard.store.redis_keys import (
    REFUSED_SIGNATURE_FIELD,
    flagged_voters_key,
    refit_stats_key,
    vote_consumer_group,
    vote_stream_key,
)
from leaderboard.store.stream import text

CONTENT_TYPE = CONTENT_TYPE_LATEST
ANSWER_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

_REJECTION_REASONS = ((BattleNotFound, "not_found"), (WrongSession, "wrong_session"), (InvalidVote, "invalid"),
                      (RateLimited, "rate_limited"), (BattleConflict, "conflict"))


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def rejection_reason(error: Exception) -> str:
    for kind, reason in _REJECTION_REASONS:
        if isinstance(error, kind):
            return reason
    return "other"


class NoMetrics:
    """What the battle engine reports, ignored (an engine built without metrics, e.g. in a benchmark)."""

    def battle_started(self, k: int) -> None: ...
    def battle_failed(self, k: int) -> None: ...
    def battle_flagged(self, flags: Iterable[str]) -> None: ...
    def vote_accepted(self, mode: str) -> None: ...
    def vote_rejected(self, error: Exception) -> None: ...
    def refused_by_limit(self, action: str) -> None: ...
    def first_token(self, model: str, seconds: float) -> None: ...
    def answer_finished(self, model: str, seconds: float) -> None: ...
    def answer_failed(self, model: str) -> None: ...


class ArenaMetrics(NoMetrics):
    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        # multiprocess: values go to the shared files, collected per scrape; else this registry
        self.registry = None if self.multiprocess else CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.battles_started = Counter("arena_battles_started", "battles created", ["k"], registry=registry)
        self.battles_failed = Counter("arena_battles_failed", "battle turns in which an answer failed", ["k"],
                                      registry=registry)
        self.votes_accepted = Counter("arena_votes_accepted", "votes accepted (written to the stream)", ["mode"],
                                      registry=registry)
        self.votes_rejected = Counter("arena_votes_rejected", "votes refused by the battle engine", ["reason"],
                                      registry=registry)
        self.rate_limited = Counter("arena_rate_limit_refusals", "requests refused by a rate limit", ["action"],
                                    registry=registry)
        self.battles_flagged = Counter("arena_flagged_battles", "battles in which a model may have revealed itself "
                                       "(arena.trust.self_identification)", ["flag"], registry=registry)
        self.answer_seconds = Histogram("arena_endpoint_answer_seconds", "seconds for a model's whole answer",
                                        ["model"], buckets=ANSWER_BUCKETS, registry=registry)
        self.first_token_seconds = Histogram("arena_endpoint_first_token_seconds",
                                             "seconds until a model's first token", ["model"],
                                             buckets=FIRST_TOKEN_BUCKETS, registry=registry)
        self.endpoint_errors = Counter("arena_endpoint_errors", "failed answers per model", ["model"],
                                       registry=registry)

    # -- what the battle engine reports --------------------------------------------------------

    def battle_started(self, k: int) -> None:
        self.battles_started.labels(k=str(k)).inc()

    def battle_failed(self, k: int) -> None:
        self.battles_failed.labels(k=str(k)).inc()

    def battle_flagged(self, flags: Iterable[str]) -> None:
        for flag in flags:
            self.battles_flagged.labels(flag=flag.split(":", 1)[0]).inc()

    def vote_accepted(self, mode: str) -> None:
        self.votes_accepted.labels(mode=mode).inc()

    def vote_rejected(self, error: Exception) -> None:
        self.votes_rejected.labels(reason=rejection_reason(error)).inc()

    def refused_by_limit(self, action: str) -> None:
        self.rate_limited.labels(action=action).inc()

    def first_token(self, model: str, seconds: float) -> None:
        self.first_token_seconds.labels(model=model).observe(seconds)

    def answer_finished(self, model: str, seconds: float) -> None:
        self.answer_seconds.labels(model=model).observe(seconds)

    def answer_failed(self, model: str) -> None:
        self.endpoint_errors.labels(model=model).inc()

    # -- the scrape ----------------------------------------------------------------------------

    def render(self, arena_wide: Sequence[GaugeMetricFamily] = ()) -> bytes:
        """The exposition text: this process's (or, multiprocess, every process's) metrics and
        the arena-wide gauges read for this scrape."""
        registry = self.registry
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        scrape = CollectorRegistry()
        scrape.register(_Fixed(arena_wide))
        return generate_latest(registry) + generate_latest(scrape)


class _Fixed:
    """A collector of metric families already read (the Redis gauges of one scrape)."""

    def __init__(self, families: Sequence[GaugeMetricFamily]):
        self.families = list(families)

    def collect(self):
        return iter(self.families)


def _gauge(name: str, documentation: str, value: float | None) -> GaugeMetricFamily | None:
    return None if value is None else GaugeMetricFamily(name, documentation, value=float(value))


def _entry_seconds(entry_id) -> float:
    return int(text(entry_id).split("-", 1)[0]) / 1000.0


async def redis_gauges(redis_client, prefix: str, *, now: float | None = None) -> list[GaugeMetricFamily]:
    """The arena-wide gauges, read from Redis for one scrape (one pipeline, then at most one XRANGE)."""
    now = time.time() if now is None else now
    stream, group = vote_stream_key(prefix), vote_consumer_group(prefix)
    pipe = redis_client.pipeline(transaction=False)
    pipe.hlen(flagged_voters_key(prefix))
    pipe.hgetall(refit_stats_key(prefix))
    pipe.xlen(stream)
    stored = await pipe.execute()
    flagged, refit, length = stored
    groups = []
    if length:
        try:
            groups = await redis_client.xinfo_groups(stream)
        except Exception:  # no stream or group yet: nothing is waiting for the worker
            groups = []
    info = next((g for g in groups if text(g.get("name")) == group), None)
    lag = pending = 0
    oldest = None
    if info is not None:
        pending = int(info.get("pending") or 0)
        lag = info.get("lag")
        lag = int(lag) if lag is not None else 0
        if pending:
            summary = await redis_client.xpending(stream, group)
            if summary and summary.get("min"):
                oldest = _entry_seconds(summary["min"])
        if oldest is None and lag:
            last = text(info.get("last-delivered-id") or "0-0")
            after = await redis_client.xrange(stream, min="(" + last, count=1)
            if after:
                oldest = _entry_seconds(after[0][0])
    elif length:  # the worker never created its group: every vote waits
        lag = int(length)
        first = await redis_client.xrange(stream, count=1)
        if first:
            oldest = _entry_seconds(first[0][0])
    refit = {text(k): float(v) for k, v in (refit or {}).items()}
    families = [
        _gauge("arena_flagged_voters", "voters flagged as anomalous (python -m arena voters flagged)", flagged),
        _gauge("arena_vote_stream_lag_entries", "accepted votes the worker has not read yet", lag),
        _gauge("arena_vote_stream_pending_entries", "votes the worker has read but not archived and acknowledged yet",
               pending),
        _gauge("arena_archive_lag_seconds", "age of the oldest accepted vote not archived yet (0: none waiting)",
               max(0.0, now - oldest) if oldest is not None else 0.0),
        _gauge("arena_refit_duration_seconds", "duration of the worker's last refit", refit.get("duration_seconds")),
        _gauge("arena_votes_refused_signature", "vote stream entries the worker dead-lettered, ever, for a missing or "
               "wrong signature (forged: written to Redis by something other than a web process)",
               refit.get(REFUSED_SIGNATURE_FIELD, 0.0)),
        _gauge("arena_snapshot_age_seconds", "seconds since the worker last published a leaderboard",
               max(0.0, now - refit["finished_at"]) if "finished_at" in refit else None),
        _gauge("arena_refit_votes", "rated votes in the last published leaderboard", refit.get("votes")),
    ]
    return [family for family in families if family is not None]
