"""Builders and waits shared by several test modules (fixtures live in conftest.py).

A test module imports from here, never from another test module: a test file can then be moved,
split or deleted without breaking the others.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from leaderboard.data.events import StyleFeatures, VoteEvent
from leaderboard.models.scale import nats_to_elo
from leaderboard.store.redis_keys import snapshot_channel, snapshot_key
from leaderboard.store.vote_signature import VoteSigner
from leaderboard.views.snapshot import Snapshot, SnapshotRow

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



async def wait_until_async(observe: Callable[[], Awaitable[Any]], condition: Callable[[Any], bool], *, what: str,
                           timeout: float = WAIT_SECONDS, interval: float = POLL_SECONDS) -> Any:
    """wait_until for async code: await ``observe()`` until ``condition`` holds on what it returned,
    and return that value; on a timeout the AssertionError names ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        last = await observe()
        if condition(last):
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(interval)

# -- votes, snapshots, settings ------------------------------------------------------------------

# The key the tests' workers check signatures with, and their XADDs sign with (leaderboard.store.vote_signature).
TEST_VOTE_KEY = "tests-vote-signing-key-0123456789"
TEST_SIGNER = VoteSigner(TEST_VOTE_KEY.encode(), "tests")


def signed_entry(event, text=None) -> dict:
    """A vote stream entry's fields for ``event`` (a VoteEvent or its JSON), signed as a web process would."""
    return TEST_SIGNER.fields(event if isinstance(event, str | bytes) else event.model_dump_json(), text)


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
    """Settings for an arena under test: shared test Redis, fast demo answers, quick refits. Port 0:
    the stack binds a free port itself (``stack.url``), so no other test or xdist worker can take the
    port between its choice and the bind, as one could with a port probed free beforehand."""
    from arena.ops.settings import Settings

    values = dict(port=0, data_dir=data_dir, redis_url=redis_url, demo=True, demo_token_delay=0.001,
                  refit_interval=0.3, matchmaker="active", voter_secret="test-secret-0123456789",
                  vote_key=TEST_VOTE_KEY,
                  battles_per_minute=0, battles_per_day=0, votes_per_minute=0, votes_per_day=0, pair_votes_per_day=0,
                  flood_refusals=0)
    values.update(overrides)
    return Settings(**values)


# -- leaderboard views (what the worker publishes per category and style setting) ---------------

@dataclass
class PublishedBoard:
    """Every document of one worker cycle: the ViewIndex and, per view id, its Snapshot, ViewStats
    and rating history (oldest first)."""

    index: Any
    snapshots: dict
    stats: dict
    history: dict


STYLE_COEFFICIENTS = {"tokens": 0.0015, "headers": 0.12, "list_items": 0.05, "bold": 0.08}


def make_view(view: str, ratings, *, battles_per_pair: int = 20, tie_share: float = 0.1, generated_at: float,
              days: int = 3):
    """(Snapshot, ViewStats) for one view whose fitted ratings are ``ratings`` (model -> rating points),
    with every pair played ``battles_per_pair`` times and wins as the ratings predict (deterministic).
    Intervals are asymmetric (+1.2 / -0.8 of a half-width shrinking with the votes)."""
    from leaderboard.models.scale import ELO_PER_NAT, elo_to_nats
    from leaderboard.views.published import STYLE_SUFFIX, ViewStats

    models = sorted(ratings, key=lambda m: -ratings[m])
    size = len(models)
    rating = np.array([ratings[m] for m in models], dtype=float)
    theta = elo_to_nats(rating)
    battles = np.full((size, size), battles_per_pair, dtype=int)
    np.fill_diagonal(battles, 0)
    ties = np.full((size, size), round(battles_per_pair * tie_share), dtype=int)
    np.fill_diagonal(ties, 0)
    decided = battles - ties
    win_probability = 1.0 / (1.0 + np.exp(theta[None, :] - theta[:, None]))
    upper_wins = np.rint(decided * win_probability).astype(int)
    wins = np.triu(upper_wins, 1)
    wins = wins + np.tril((decided - wins.T), -1)
    votes = battles.sum(axis=1)
    half = 1.96 * ELO_PER_NAT * np.sqrt(4.0 / np.maximum(votes, 1))
    lower, upper = rating - 0.8 * half, rating + 1.2 * half
    rows = []
    for i, model in enumerate(models):
        rows.append(SnapshotRow(model=model, rating=float(rating[i]), lower=float(lower[i]), upper=float(upper[i]),
                                rank=1 + int((lower > upper[i]).sum()),
                                rank_lower=int((upper > lower[i]).sum()), votes=int(votes[i])))
    covariance = np.diag((half / 1.96 / ELO_PER_NAT) ** 2)
    snapshot = Snapshot(generated_at=generated_at, total_votes=int(battles.sum()) // 2,
                        method="style-control+sandwich" if view.endswith(STYLE_SUFFIX) else "bradley-terry+sandwich",
                        rows=rows, models=models, theta=theta.tolist(), covariance=covariance.tolist())
    day_names = [time.strftime("%Y-%m-%d", time.gmtime(generated_at - 86400 * (days - 1 - d))) for d in range(days)]
    by_day = [[int(v) // days + (1 if d < int(v) % days else 0) for d in range(days)] for v in votes]
    style = view.endswith(STYLE_SUFFIX)
    stats = ViewStats(
        view=view, generated_at=generated_at, models=models, battles=battles.tolist(), wins=wins.tolist(),
        ties=ties.tolist(), days=day_names, votes_by_day=by_day,
        style_coefficients=dict(STYLE_COEFFICIENTS) if style else {},
        style_means={m: {"tokens": 100.0 + 10 * i, "headers": i % 3, "list_items": float(i % 5), "bold": 1.0}
                     for i, m in enumerate(models)} if style else {},
    )
    return snapshot, stats


def make_board(ratings_by_view, *, generated_at: float | None = None, labels=None, history_points: int = 4,
               battles_per_pair: int = 20, next_refit_in: float = 30.0, min_category_votes: int = 20) -> PublishedBoard:
    """A whole cycle of views from ``ratings_by_view`` (view id -> model -> rating points), e.g.
    ``{"overall": {...}, "overall+style": {...}, "coding": {...}}``; categories in the order given."""
    from leaderboard.views.published import STYLE_SUFFIX, CategoryInfo, RatingPoint, ViewIndex

    generated_at = generated_at or time.time()
    labels = labels or {}
    snapshots, stats, history = {}, {}, {}
    for view, ratings in ratings_by_view.items():
        snapshots[view], stats[view] = make_view(view, ratings, battles_per_pair=battles_per_pair,
                                                 generated_at=generated_at)
        history[view] = [RatingPoint(generated_at=generated_at - 60.0 * (history_points - 1 - k),
                                     total_votes=snapshots[view].total_votes * (k + 1) // history_points,
                                     ratings={m: r + 8.0 * (history_points - 1 - k) * (1 if i % 2 else -1)
                                              for i, (m, r) in enumerate(ratings.items())})
                         for k in range(history_points)]
    categories = []
    for view in ratings_by_view:
        if view.endswith(STYLE_SUFFIX):
            continue
        kind = "overall" if view == "overall" else "derived"
        categories.append(CategoryInfo(name=view, label=labels.get(view, view.replace("_", " ").capitalize()),
                                       kind=kind, votes=snapshots[view].total_votes))
    index = ViewIndex(generated_at=generated_at, categories=categories,
                      style_control=any(view.endswith(STYLE_SUFFIX) for view in ratings_by_view),
                      min_category_votes=min_category_votes, next_refit_at=generated_at + next_refit_in)
    return PublishedBoard(index=index, snapshots=snapshots, stats=stats, history=history)


def publish_board(redis_client, board: PublishedBoard, prefix="arena") -> None:
    """Write a cycle's documents the way the worker does: views first, the index last, and the
    overall snapshot also at snapshot_key (what the matchmaker and older readers use)."""
    from leaderboard.views.published import rating_history_key, view_index_key, view_snapshot_key, view_stats_key

    pipe = redis_client.pipeline()
    for view, snapshot in board.snapshots.items():
        pipe.set(view_snapshot_key(prefix, view), snapshot.model_dump_json())
        pipe.set(view_stats_key(prefix, view), board.stats[view].model_dump_json())
        pipe.delete(rating_history_key(prefix, view))
        if board.history[view]:
            pipe.rpush(rating_history_key(prefix, view), *[point.model_dump_json() for point in board.history[view]])
    if "overall" in board.snapshots:
        pipe.set(snapshot_key(prefix), board.snapshots["overall"].model_dump_json())
    pipe.set(view_index_key(prefix), board.index.model_dump_json())
    pipe.execute()
