"""Reading the published board: the one place that knows which key holds which document, parses and
validates it (:mod:`leaderboard.views.snapshot`, :mod:`leaderboard.views.published`), and falls back
as the contract says (the overall view is also at ``snapshot_key``, the only key a worker older than
the views writes).

Three ways in, one per kind of caller:

- ``parse_snapshot`` / ``parse_view_index`` / ``parse_view_stats`` / ``parse_rating_history``: raw
  bytes (None or empty: not published) -> the document, for a caller that fetches the key in its own
  pipeline beside other keys;
- :func:`latest_snapshot`: one GET on a sync redis client (the matchmaker, the operator's CLI);
- :class:`BoardReader`: an asyncio redis client (the web process: the JSON API and the page), which
  parses each document once and hands the same parsed object to every request until it changes.

Nothing here writes or fits: the worker publishes (leaderboard.worker.publish).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from leaderboard.store.redis_keys import snapshot_key
from leaderboard.views.published import (
    OVERALL,
    CategoryInfo,
    RatingPoint,
    ViewIndex,
    ViewStats,
    rating_history_key,
    view_id,
    view_index_key,
    view_snapshot_key,
    view_stats_key,
)
from leaderboard.views.snapshot import Snapshot

# The most rating-history points one read fetches (the newest ones): enough for a readable line.
HISTORY_POINTS = 500


def parse_snapshot(raw: bytes | str | None) -> Snapshot | None:
    return Snapshot.model_validate_json(raw) if raw else None


def parse_view_index(raw: bytes | str | None) -> ViewIndex | None:
    return ViewIndex.model_validate_json(raw) if raw else None


def parse_view_stats(raw: bytes | str | None) -> ViewStats | None:
    return ViewStats.model_validate_json(raw) if raw else None


def parse_rating_history(raws: Iterable[bytes | str]) -> list[RatingPoint]:
    """The points of a rating-history list, oldest first."""
    return [RatingPoint.model_validate_json(raw) for raw in raws]


def latest_snapshot(client, prefix: str) -> Snapshot | None:
    """The latest overall snapshot (the one with ``theta`` and ``covariance``), or None before the
    first publish. ``client``: a sync redis client."""
    return parse_snapshot(client.get(snapshot_key(prefix)))


@dataclass(frozen=True)
class BoardView:
    """One view as published: everything the leaderboard tab draws for a category and style setting."""

    category: str
    style_control: bool
    index: ViewIndex | None  # None: the worker publishes only the overall snapshot (no views yet)
    snapshot: Snapshot | None
    counterpart: Snapshot | None  # the same category with style control flipped, when published
    stats: ViewStats | None
    history: list[RatingPoint] = field(default_factory=list)

    @property
    def view(self) -> str:
        return view_id(self.category, self.style_control)

    @property
    def cycle(self) -> float | None:
        """Changes whenever the worker publishes again (what a polling page compares to skip redraws)."""
        return self.index.generated_at if self.index else (self.snapshot.generated_at if self.snapshot else None)

    @property
    def categories(self) -> list[CategoryInfo]:
        if self.index is not None:
            return list(self.index.categories)
        votes = self.snapshot.total_votes if self.snapshot else 0
        return [CategoryInfo(name=OVERALL, label="Overall", kind="overall", votes=votes)]

    @property
    def style_available(self) -> bool:
        return self.index is not None and self.index.style_control


def _digest(raws: Iterable[bytes | str]) -> bytes:
    digest = hashlib.sha1(usedforsecurity=False)  # a cache key, not a signature; SHA-1 is the fastest here
    for raw in raws:
        digest.update(raw if isinstance(raw, bytes) else raw.encode())
        digest.update(b"\0")
    return digest.digest()


class BoardReader:
    """The published board through an asyncio redis client, each document parsed once.

    A view's ViewStats of 200 models is three 200 x 200 matrices (a third of a MB of JSON) and every
    open page polls, so documents are kept parsed, keyed by the digest of their bytes: hashing them
    costs a twentieth of parsing them, and a document is parsed again exactly when the worker rewrote
    it (a view with no new votes is not rewritten). One reader serves the whole web process (the API
    and the page share it); it keeps the last ``cache_size`` documents. The parsed documents are
    shared between callers: read them, never change them.
    """

    def __init__(self, redis, prefix: str, *, cache_size: int = 64):
        self.redis = redis
        self.prefix = prefix
        self.cache_size = cache_size
        self._parsed: OrderedDict[tuple[str, bytes], object] = OrderedDict()

    async def index(self) -> ViewIndex | None:
        """The ViewIndex of the worker's last cycle, or None (no views published yet)."""
        return self._cached("index", parse_view_index, await self.redis.get(view_index_key(self.prefix)))

    async def latest_snapshot(self) -> Snapshot | None:
        """The latest overall snapshot (with ``theta`` and ``covariance``), or None before the first."""
        return self._cached("snapshot", parse_snapshot, await self.redis.get(snapshot_key(self.prefix)))

    async def snapshot(self, view: str) -> Snapshot | None:
        """The view's Snapshot; for ``overall`` the latest snapshot when no view was written (a worker
        older than the views)."""
        raw = await self.redis.get(view_snapshot_key(self.prefix, view))
        if raw is None and view == OVERALL:
            raw = await self.redis.get(snapshot_key(self.prefix))
        return self._cached("snapshot", parse_snapshot, raw)

    async def stats(self, view: str) -> ViewStats | None:
        return self._cached("stats", parse_view_stats, await self.redis.get(view_stats_key(self.prefix, view)))

    async def view(self, category: str = OVERALL, style_control: bool = False, *,
                   index: ViewIndex | None | bool = True) -> BoardView:
        """The view for ``category`` (overall when it is not published) and style setting, in one round
        trip; ``index`` is the ViewIndex the caller already read (None: none is published), True to read
        it here. Without a ViewIndex it is the latest overall snapshot alone."""
        if index is True:
            index = await self.index()
        if index is None:
            return BoardView(OVERALL, False, None, await self.latest_snapshot(), None, None, [])
        if category not in {info.name for info in index.categories}:
            category = OVERALL
        style_control = style_control and index.style_control
        view = view_id(category, style_control)
        other = view_id(category, not style_control) if index.style_control else None
        pipe = self.redis.pipeline(transaction=False)
        pipe.mget([view_snapshot_key(self.prefix, view), view_stats_key(self.prefix, view),
                   view_snapshot_key(self.prefix, other or view)])
        pipe.lrange(rating_history_key(self.prefix, view), -HISTORY_POINTS, -1)
        (raw_snapshot, raw_stats, raw_other), raw_history = await pipe.execute()
        return BoardView(
            category, style_control, index,
            self._cached("snapshot", parse_snapshot, raw_snapshot),
            self._cached("snapshot", parse_snapshot, raw_other if other else None),
            self._cached("stats", parse_view_stats, raw_stats),
            self._cached_history(raw_history),
        )

    async def category_snapshots(self, index: ViewIndex, style_control: bool) -> dict[str, Snapshot]:
        """Every published category's snapshot (same style setting), for a model's per-category ratings."""
        style_control = style_control and index.style_control
        names = [info.name for info in index.categories]
        keys = [view_snapshot_key(self.prefix, view_id(name, style_control)) for name in names]
        raws = await self.redis.mget(keys) if keys else []
        parsed = {name: self._cached("snapshot", parse_snapshot, raw) for name, raw in zip(names, raws)}
        return {name: snapshot for name, snapshot in parsed.items() if snapshot is not None}

    def _cached(self, kind: str, parse, raw):
        if not raw:
            return None
        return self._remembered((kind, _digest([raw])), lambda: parse(raw))

    def _cached_history(self, raws: list) -> list[RatingPoint]:
        return self._remembered(("history", _digest(raws)), lambda: parse_rating_history(raws))

    def _remembered(self, key: tuple[str, bytes], parse):
        if key in self._parsed:
            self._parsed.move_to_end(key)
            return self._parsed[key]
        value = parse()
        self._parsed[key] = value
        while len(self._parsed) > self.cache_size:
            self._parsed.popitem(last=False)
        return value
