"""The matchmaker: which models meet in the next battle.

``build_matchmaker(strategy, redis_client, prefix=..., **options)`` returns an object with
``choose(available, k, rng=None) -> Selection`` (``Selection.probability`` is the probability of
the unordered set, for inverse-propensity weighting) and ``record_vote(models, ranking)`` /
``record_outcome(model_a, model_b, outcome)`` / ``record_event(vote_event)`` to feed accepted
votes into the online belief. Strategies: ``uniform``, ``ci-reduction``, ``active`` (default),
``top-k``, ``ucb``. See live.py for what is kept in Redis.

May import: arena.models, arena.keys, leaderboard.data, leaderboard.models, leaderboard.store, leaderboard.views.
"""

from __future__ import annotations

from arena.matchmaker.fairness import FairnessPolicy
from arena.matchmaker.live import LiveMatchmaker
from arena.matchmaker.policy import DEFAULT_STRATEGY, STRATEGIES, StrategyOptions, selection_distribution
from arena.matchmaker.selection import Matchmaker, Selection
from arena.matchmaker.state import RatingState
from leaderboard.store.redis_keys import DEFAULT_PREFIX

_FAIRNESS_OPTIONS = ("floor", "boost_share", "new_model_votes", "new_model_ci", "max_pair_share", "pins")
_STRATEGY_OPTIONS = ("criterion", "top", "closeness", "bonus")
_LIVE_OPTIONS = ("excluded", "snapshot_ttl", "pair_counts_ttl")


def build_matchmaker(strategy: str = DEFAULT_STRATEGY, redis_client=None, *, prefix: str = DEFAULT_PREFIX,
                     **options) -> LiveMatchmaker:
    """The configured matchmaker.

    Options: fairness ``floor`` (each model's minimum share of battles, as a fraction of an equal
    share; default 0.1), ``boost_share`` (0.5), ``new_model_votes`` (300), ``new_model_ci`` (40
    rating points), ``max_pair_share`` (0.2), ``pins`` (((model, ...), share), ...); strategy ``criterion`` ('kg'),
    ``top`` (5), ``closeness``, ``bonus``; live ``excluded`` (model names), ``snapshot_ttl``
    (seconds, 30), ``pair_counts_ttl`` (5). Without ``redis_client`` the belief lives in this
    process (single process, scripts, tests).
    """
    unknown = set(options) - set(_FAIRNESS_OPTIONS + _STRATEGY_OPTIONS + _LIVE_OPTIONS)
    if unknown:
        allowed = ", ".join(_FAIRNESS_OPTIONS + _STRATEGY_OPTIONS + _LIVE_OPTIONS)
        raise ValueError(f"unknown matchmaker option(s) {sorted(unknown)}: expected some of {allowed}")
    fairness_kwargs = {key: options[key] for key in _FAIRNESS_OPTIONS if key in options}
    if "pins" in fairness_kwargs:
        fairness_kwargs["pins"] = tuple((tuple(members), float(share)) for members, share in fairness_kwargs["pins"])
    strategy_options = StrategyOptions(
        fairness=FairnessPolicy(**fairness_kwargs),
        **{key: options[key] for key in _STRATEGY_OPTIONS if key in options},
    )
    live = {key: options[key] for key in _LIVE_OPTIONS if key in options}
    return LiveMatchmaker(strategy, redis_client, prefix=prefix, options=strategy_options, **live)


__all__ = [
    "DEFAULT_STRATEGY", "FairnessPolicy", "LiveMatchmaker", "Matchmaker", "RatingState", "STRATEGIES", "Selection",
    "StrategyOptions", "build_matchmaker", "selection_distribution",
]
