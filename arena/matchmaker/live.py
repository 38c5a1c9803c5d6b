"""The matchmaker the web app runs: belief from the Redis snapshot plus online votes.

State that matters is in Redis, so any number of web processes choose from the same belief:

- the latest leaderboard snapshot (``leaderboard.store.redis_keys.snapshot_key``): means and
  covariance of the last full fit; each process caches it and re-reads it when
  ``snapshot_channel`` announces a new one (polled without blocking on every choice) or after
  ``snapshot_ttl`` seconds;
- the online belief since that snapshot (``keys.online_belief_key`` of ``Snapshot.id``):
  per-model mean, variance and battle count, moved by every recorded vote in one Lua script
  (atomic, so concurrent votes from several processes are all applied). A new snapshot starts a
  new key: its fit already contains the votes, and the old key expires;
- the operator's paused models (``arena.models.availability``), pins, and per-pair battle counts
  (ci-reduction).

``choose`` reads the small per-model hashes in one pipelined round trip and builds the
selection distribution (arena.matchmaker.policy, the same code the simulator measures).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from arena.matchmaker.active import active_pair_weights
from arena.matchmaker.keys import PAIR_SEPARATOR, online_belief_key, pair_battles_key, pair_field, pins_key
from arena.matchmaker.policy import StrategyOptions, check_strategy, selection_distribution
from arena.matchmaker.selection import Selection, check_available, shuffled_display_order
from arena.matchmaker.state import (
    MIN_VARIANCE,
    ONLINE_PAIR_UPDATE_LUA,
    PRIOR_SD_NATS,
    RatingState,
    online_ranking_update,
    ranking_pair_steps,
    rescaled_covariance,
)
from arena.models import availability
from leaderboard.data.events import VoteEvent
from leaderboard.data.rankings import check_ranking, outcome_to_ranking
from leaderboard.models.plackett_luce_design import indexed_group
from leaderboard.models.sandwich import centred
from leaderboard.store.redis_keys import DEFAULT_PREFIX, snapshot_channel
from leaderboard.store.stream import text
from leaderboard.views.reader import latest_snapshot
from leaderboard.views.snapshot import Snapshot

ONLINE_STATE_TTL = 7 * 24 * 3600

# The Kalman step of state.online_pair_update (its Lua twin, state.ONLINE_PAIR_UPDATE_LUA, is
# prepended) applied atomically inside Redis, plus the per-pair battle counts, in one round trip.
# The online belief is one JSON string
# {"v": votes applied, "m": {model: [mean, variance, battles]}} so a choice reads it with one GET
# and one json.loads (a hash of 3 fields per model took milliseconds to parse in Python).
# KEYS: online belief, pair battles. ARGV: ttl, m, min_variance, then m x (name, prior mean,
# prior variance), then (winner, loser, winner score) triples (1-based positions into the names),
# then the pair-battle fields.
_ONLINE_UPDATE = ONLINE_PAIR_UPDATE_LUA + """
local ttl = tonumber(ARGV[1])
local m = tonumber(ARGV[2])
local min_var = tonumber(ARGV[3])
local raw = redis.call('GET', KEYS[1])
local belief = raw and cjson.decode(raw) or {v = 0, m = {}}
if type(belief.m) ~= 'table' or next(belief.m) == nil then belief.m = {} end
local names, mu, var = {}, {}, {}
for i = 1, m do
  local base = 3 + 3 * (i - 1)
  local name = ARGV[base + 1]
  names[i] = name
  local stored = belief.m[name]
  if stored then
    mu[i], var[i] = stored[1], stored[2]
  else
    mu[i], var[i] = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  end
end
local p = 4 + 3 * m
local n_steps = tonumber(ARGV[p])
p = p + 1
for step = 1, n_steps do
  online_pair_update(mu, var, tonumber(ARGV[p]), tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), min_var)
  p = p + 3
end
for i = 1, m do
  local stored = belief.m[names[i]]
  local battles = stored and stored[3] or 0
  belief.m[names[i]] = {mu[i], var[i], battles + 1}
end
belief.v = belief.v + 1
cjson.encode_number_precision(14)
redis.call('SET', KEYS[1], cjson.encode(belief), 'EX', ttl)
while p <= #ARGV do
  redis.call('HINCRBY', KEYS[2], ARGV[p], 1)
  p = p + 1
end
return belief.v
"""


def _parse_pins(raw: dict) -> dict[tuple[str, ...], float]:
    """The pins hash as set -> share."""
    return {tuple(text(k).split(PAIR_SEPARATOR)): float(v) for k, v in raw.items()}




class LiveMatchmaker:
    """``choose`` / ``record_vote`` over a belief kept in Redis (or, without Redis, in this
    process: for a single process, scripts and tests)."""

    def __init__(self, strategy: str, redis_client=None, *, prefix: str = DEFAULT_PREFIX,
                 options: StrategyOptions | None = None, excluded: Iterable[str] = (),
                 snapshot_ttl: float = 30.0, pair_counts_ttl: float = 5.0):
        self.strategy = check_strategy(strategy)
        self.redis = redis_client
        self.prefix = prefix
        self.options = options or StrategyOptions()
        self.excluded = frozenset(excluded)
        self.snapshot_ttl = snapshot_ttl
        self.pair_counts_ttl = pair_counts_ttl
        self._lock = threading.Lock()
        self._snapshot_state: RatingState | None = None
        self._snapshot_id = "none"
        self._snapshot_loaded_at = -math.inf
        self._pair_counts: dict[tuple[str, str], float] = {}
        self._pair_counts_loaded_at = -math.inf
        self._memory_online: dict[str, list[float]] = {}  # only without Redis: model -> [mean, var, battles]
        self._weights_cache = None  # (snapshot id + names, mean, variance, active weights)
        self._restricted_cache = None  # (snapshot id + names, snapshot belief over them)
        self._pair_matrix_cache = None  # (names, battles per pair)
        self._pubsub = None
        if redis_client is not None:
            self._update_script = redis_client.register_script(_ONLINE_UPDATE)
            try:
                self._pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(snapshot_channel(prefix))
            except Exception:  # no pub/sub (e.g. a proxy without it): the TTL alone refreshes
                self._pubsub = None

    # -- belief ---------------------------------------------------------------------------

    def set_snapshot(self, snapshot: Snapshot) -> None:
        """Use this snapshot (what a Redis re-read does; also for use without Redis)."""
        with self._lock:
            self._install(snapshot)

    def _install(self, snapshot: Snapshot | None) -> None:
        self._snapshot_loaded_at = time.monotonic()
        if snapshot is None or not snapshot.models:
            self._snapshot_state, self._snapshot_id = None, "none"
            return
        n = len(snapshot.models)
        votes = {row.model: row.votes for row in snapshot.rows}
        covariance = np.asarray(snapshot.covariance, dtype=float)
        if covariance.shape != (n, n):
            covariance = np.eye(n) * PRIOR_SD_NATS**2
        self._snapshot_state = RatingState(
            list(snapshot.models), np.asarray(snapshot.theta, dtype=float), centred(covariance),
            np.array([votes.get(m, 0) for m in snapshot.models], dtype=float), np.zeros((n, n)),
        )
        if self._snapshot_id != snapshot.id:
            self._memory_online.clear()
        self._snapshot_id = snapshot.id

    def _refresh_snapshot(self) -> None:
        if self.redis is None:
            return
        announced = False
        if self._pubsub is not None:
            try:
                while self._pubsub.get_message(timeout=0) is not None:
                    announced = True
            except Exception:
                self._pubsub = None
        if announced or time.monotonic() - self._snapshot_loaded_at > self.snapshot_ttl:
            self._install(latest_snapshot(self.redis, self.prefix))

    def _read_shared(self) -> tuple[dict[str, list[float]], frozenset[str], dict[tuple[str, ...], float]]:
        """Online belief, paused models and pins: one round trip."""
        if self.redis is None:
            return dict(self._memory_online), frozenset(), {}
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(online_belief_key(self.prefix, self._snapshot_id))
        availability.queue_paused(pipe, self.prefix)
        pipe.hgetall(pins_key(self.prefix))
        online_raw, paused_raw, pins_raw = pipe.execute()
        online = json.loads(online_raw)["m"] if online_raw else {}
        if not isinstance(online, dict):  # cjson writes an empty object as []
            online = {}
        return online, availability.paused_from(paused_raw), _parse_pins(pins_raw)

    def _pair_battles(self, names: Sequence[str]) -> np.ndarray:
        """Battles per pair of ``names`` (ci-reduction), re-read after ``pair_counts_ttl``."""
        now = time.monotonic()
        if self.redis is not None and now - self._pair_counts_loaded_at > self.pair_counts_ttl:
            raw = self.redis.hgetall(pair_battles_key(self.prefix))
            self._pair_counts = {tuple(text(k).split(PAIR_SEPARATOR)): float(v) for k, v in raw.items()}
            self._pair_counts_loaded_at = now
            self._pair_matrix_cache = None
        key = tuple(names)
        if self.redis is None or self._pair_matrix_cache is None or self._pair_matrix_cache[0] != key:
            index = {name: i for i, name in enumerate(names)}
            matrix = np.zeros((len(names), len(names)))
            for (a, b), count in self._pair_counts.items():
                if a in index and b in index:
                    matrix[index[a], index[b]] = matrix[index[b], index[a]] = count
            self._pair_matrix_cache = (key, matrix)
        return self._pair_matrix_cache[1]

    def belief(self, names: Sequence[str]) -> RatingState:
        """The current belief over ``names``: snapshot, then the online updates since it."""
        with self._lock:
            self._refresh_snapshot()
            online, _, _ = self._read_shared()
            return self._belief(names, online)

    def _snapshot_belief(self, names: Sequence[str]) -> RatingState:
        """The snapshot's belief over ``names`` (cached: it changes only with the snapshot)."""
        key = (self._snapshot_id, tuple(names))
        if self._restricted_cache is None or self._restricted_cache[0] != key:
            base = self._snapshot_state or RatingState.prior([])
            self._restricted_cache = (key, base.restricted(names))
        cached = self._restricted_cache[1]
        return RatingState(cached.models, cached.mean.copy(), cached.covariance, cached.votes.copy(),
                           cached.pair_votes)

    def _belief(self, names: Sequence[str], online: dict[str, list[float]]) -> RatingState:
        state = self._snapshot_belief(names)
        variance = state.variance
        for i, name in enumerate(names):
            stored = online.get(name)
            if stored is not None:
                state.mean[i], variance[i] = stored[0], stored[1]
                state.votes[i] += stored[2]
        state.covariance = rescaled_covariance(state.covariance, variance)
        if self.strategy == "ci-reduction":
            state.pair_votes = self._pair_battles(names)
        return state

    # -- choosing -------------------------------------------------------------------------

    def choose(self, available: Sequence[str], k: int = 2, rng: np.random.Generator | None = None) -> Selection:
        rng = rng if rng is not None else np.random.default_rng()
        with self._lock:
            self._refresh_snapshot()
            online, paused, shared_pins = self._read_shared()
            names = check_available([m for m in available if m not in self.excluded and m not in paused], k)
            options = self.options
            if shared_pins:
                pins = tuple(options.fairness.pins) + tuple(shared_pins.items())
                options = replace(options, fairness=replace(options.fairness, pins=pins))
            state = self._belief(names, online)
            active_weights = self._active_weights(state) if self.strategy in ("active", "top-k") else None
        distribution = selection_distribution(self.strategy, state, k, options, active_weights)
        members = distribution.sample(rng)
        probability = distribution.probability(members)
        models = shuffled_display_order([names[i] for i in members], rng)
        return Selection(models, probability, self.strategy)

    def _active_weights(self, state: RatingState) -> np.ndarray:
        """The active criterion's pair weights, recomputed only for models whose belief moved
        since the last choice (a vote moves two; a new snapshot or model list moves all)."""
        key = (self._snapshot_id, tuple(state.models))
        mean, variance = state.mean.copy(), np.diag(state.covariance).copy()
        cached = self._weights_cache
        if cached is not None and cached[0] == key:
            changed = np.flatnonzero((cached[1] != mean) | (cached[2] != variance))
            if len(changed) == 0:
                return cached[3]
            if len(changed) <= len(mean) // 4:
                weights = active_pair_weights(state, self.options.criterion, rows=changed, previous=cached[3])
                self._weights_cache = (key, mean, variance, weights)
                return weights
        weights = active_pair_weights(state, self.options.criterion)
        self._weights_cache = (key, mean, variance, weights)
        return weights

    # -- votes and operations -------------------------------------------------------------

    def record_vote(self, models: Sequence[str], ranking: Sequence[Sequence[str]]) -> None:
        """Apply one accepted vote to the online belief: ``ranking`` is groups of model names,
        best first (a group of several is a tie), covering ``models`` (a partial ranking ends with
        its unranked models, leaderboard.data.rankings.Unranked)."""
        check_ranking(ranking, models)
        flat = [m for group in ranking for m in group]
        with self._lock:
            self._refresh_snapshot()
            base = self._snapshot_state or RatingState.prior([])
            prior = base.restricted(flat)
            snapshot_id = self._snapshot_id
            if self.redis is None:
                self._record_in_memory(flat, ranking, prior)
                return
        position = {name: i for i, name in enumerate(flat)}
        steps = ranking_pair_steps([indexed_group(group, position) for group in ranking])
        args: list = [ONLINE_STATE_TTL, len(flat), MIN_VARIANCE]
        for i, m in enumerate(flat):
            args += [m, repr(float(prior.mean[i])), repr(float(prior.covariance[i, i]))]
        args.append(len(steps))
        for winner, loser, score in steps:
            args += [winner + 1, loser + 1, score]
        args += [pair_field((m, other)) for i, m in enumerate(flat) for other in flat[i + 1 :]]
        self._update_script(keys=[online_belief_key(self.prefix, snapshot_id), pair_battles_key(self.prefix)],
                            args=args)

    def _record_in_memory(self, flat: list[str], ranking, prior: RatingState) -> None:
        position = {name: i for i, name in enumerate(flat)}
        stored = [self._memory_online.get(m) for m in flat]
        mean = np.array([s[0] if s else prior.mean[i] for i, s in enumerate(stored)])
        variance = np.array([s[1] if s else prior.covariance[i, i] for i, s in enumerate(stored)])
        online_ranking_update(mean, variance, [indexed_group(group, position) for group in ranking])
        for i, m in enumerate(flat):
            battles = stored[i][2] if stored[i] else 0.0
            self._memory_online[m] = [float(mean[i]), float(variance[i]), battles + 1]
            for other in flat[i + 1 :]:
                pair = tuple(sorted((m, other)))
                self._pair_counts[pair] = self._pair_counts.get(pair, 0.0) + 1

    def record_outcome(self, model_a: str, model_b: str, outcome: str) -> None:
        """A pairwise vote with an LMArena outcome string."""
        self.record_vote([model_a, model_b], outcome_to_ranking((model_a, model_b), outcome))

    def record_event(self, event: VoteEvent) -> None:
        if event.is_ranking:
            self.record_vote(event.models, event.full_ranking())
        else:
            self.record_outcome(event.models[0], event.models[1], event.outcome)

    def pin(self, models: Sequence[str], share: float) -> None:
        """Give the set ``models`` at least ``share`` of battles (seats beyond it filled uniformly).

        Checked with every other pin (stored and configured) and the floor through
        FairnessPolicy's own validation, so a pin that would leave no valid mixture (and make
        every choice fail) is refused here rather than stored."""
        client = self._require_redis()
        pin_field = pair_field(models)
        key = pins_key(self.prefix)

        def check_and_store(pipe) -> None:
            # WATCHed read, then MULTI/EXEC: a pin stored by another process in between makes
            # EXEC fail and redis-py re-runs this, so two pins can never together overfill.
            stored = _parse_pins(pipe.hgetall(key))
            stored.pop(tuple(sorted(models)), None)  # re-pinning the same set replaces its share
            pins = tuple(self.options.fairness.pins) + tuple(stored.items()) + ((tuple(models), float(share)),)
            try:  # FairnessPolicy.__post_init__ checks each pin and that pins plus floor fit
                replace(self.options.fairness, pins=pins)
            except ValueError as error:
                raise ValueError(f"pin {list(models)!r} share {share} refused: {error}; "
                                 "unpin or lower a share") from error
            pipe.multi()
            pipe.hset(key, pin_field, repr(float(share)))

        client.transaction(check_and_store, key)

    def pins(self) -> dict[tuple[str, ...], float]:
        """Pins stored in Redis (shared by every process), set -> share."""
        return _parse_pins(self._require_redis().hgetall(pins_key(self.prefix)))

    def unpin(self, models: Sequence[str]) -> None:
        self._require_redis().hdel(pins_key(self.prefix), pair_field(models))

    def _require_redis(self):
        if self.redis is None:
            raise RuntimeError("exclusions and pins shared across processes need Redis; "
                               "pass excluded=/pins= options instead")
        return self.redis
