"""Builders and waits shared by several test modules (fixtures live in conftest.py).

A test module imports from here, never from another test module: a test file can then be moved,
split or deleted without breaking the others.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np

from leaderboard.events import StyleFeatures, VoteEvent
from leaderboard.redis_keys import snapshot_channel, snapshot_key
from leaderboard.scale import nats_to_elo
from leaderboard.snapshot import Snapshot, SnapshotRow

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# A ceiling, not a delay: a wait returns as soon as its condition holds, so a generous ceiling
# costs nothing on a quiet machine and keeps a busy 2-core CI box (everything 5-10x slower) green.
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.02


# -- waiting on a condition ----------------------------------------------------------------------

def wait_until(condition: Callable[..., Any], *, what: str, observe: Callable[[], Any] | None = None,
               timeout: float = WAIT_SECONDS, interval: float = POLL_SECONDS,
               ignoring: tuple[type[BaseException], ...] = (),
               pause: Callable[[float], Any] = time.sleep) -> Any:
    """Poll until the condition holds; return what satisfied it.

    Without ``observe``: ``condition()`` is polled and its first truthy result is returned. With
    ``observe``: ``condition(observe())`` is polled and the observed value that satisfied it is
    returned, so the test asserts on exactly what it waited for. On a timeout the AssertionError
    names ``what`` and the last value seen. An exception of a type in ``ignoring`` (say, a server
    not listening yet) counts as "not yet"; any other propagates at once (a process that died
    while we waited fails the test now, not at the ceiling). ``pause`` is how to wait between
    polls: a Playwright page's ``wait_for_timeout`` keeps its events flowing, ``time.sleep``
    would not. From async code, run it in a thread (``asyncio.to_thread``) with a sync client.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            if observe is None:
                last = condition()
                if last:
                    return last
            else:
                last = observe()
                if condition(last):
                    return last
        except ignoring as error:
            last = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")
        pause(interval)


# -- votes, snapshots, settings ------------------------------------------------------------------

def make_vote(model_a="alpha", model_b="beta", outcome="model_a", *, vote_id=None, ranking=None,
              models=None, voted_at=1_700_000_000.0) -> VoteEvent:
    """A valid VoteEvent built with the pydantic model (pairwise unless ``ranking`` is given)."""
    if ranking is not None:
        names = models or [name for group in ranking for name in group]
        return VoteEvent(
            vote_id=vote_id or uuid.uuid4().hex, battle_id=uuid.uuid4().hex, mode="kwise",
            models=names, ranking=ranking, voter_id="voter-1", served_at=voted_at - 5.0,
            voted_at=voted_at, selection_probability=0.1,
            style=[StyleFeatures(tokens=100, headers=0, list_items=0, bold=0) for _ in names],
        )
    return VoteEvent(
        vote_id=vote_id or uuid.uuid4().hex, battle_id=uuid.uuid4().hex, mode="anonymous",
        models=[model_a, model_b], outcome=outcome, voter_id="voter-1", served_at=voted_at - 5.0,
        voted_at=voted_at, selection_probability=0.25,
        style=[StyleFeatures(tokens=120, headers=1, list_items=3, bold=2),
               StyleFeatures(tokens=80, headers=0, list_items=0, bold=1)],
        categories=["coding"],
    )


def make_snapshot(models, theta, covariance, votes, generated_at=None) -> Snapshot:
    """A Bradley-Terry Snapshot with the given theta (natural-log scale) and covariance."""
    theta = np.asarray(theta, dtype=float)
    rows = [
        SnapshotRow(model=m, rating=float(nats_to_elo(t)), lower=float(nats_to_elo(t)) - 10,
                    upper=float(nats_to_elo(t)) + 10, rank=i + 1, rank_lower=i + 1, votes=int(v))
        for i, (m, t, v) in enumerate(zip(models, theta, votes))
    ]
    return Snapshot(generated_at=generated_at or time.time(), total_votes=int(sum(votes)) // 2,
                    method="bradley-terry+sandwich", rows=rows, models=list(models), theta=theta.tolist(),
                    covariance=np.asarray(covariance).tolist())


def publish(redis_client, snapshot: Snapshot, prefix="arena") -> None:
    """Store and announce a snapshot the way the worker publishes one (announcing its id)."""
    redis_client.set(snapshot_key(prefix), snapshot.model_dump_json())
    redis_client.publish(snapshot_channel(prefix), snapshot.id)


def arena_settings(redis_url: str, data_dir, **overrides):
    """Settings for an arena under test: shared test Redis, fast demo answers, quick refits."""
    from arena.redis_server import free_port
    from arena.settings import Settings

    values = dict(port=free_port(), data_dir=data_dir, redis_url=redis_url, demo=True, demo_token_delay=0.001,
                  refit_interval=0.3, matchmaker="active", voter_secret="test-secret-0123456789",
                  battles_per_minute=0, battles_per_day=0, votes_per_minute=0, votes_per_day=0, pair_votes_per_day=0,
                  flood_refusals=0)
    values.update(overrides)
    return Settings(**values)
