"""What the matchmaker knows: a Gaussian belief over model strengths (natural-log units).

The mean and covariance come from the latest full Bradley-Terry fit (the published snapshot);
between fits each vote moves the per-model mean and variance by a one-step Bayesian update
(an extended Kalman / Laplace step for the logistic likelihood, the same family of update as
Glicko, TrueSkill and openskill), so new votes steer the next choices at once. The correlations of
the last fit are kept and rescaled to the updated variances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from leaderboard.data.rankings import adjacent_pairs
from leaderboard.models.elo import SCORE_A

# Prior for a model the last fit has not seen: centred on the field, with a standard deviation of
# one natural-log unit (about 174 rating points, the spread of a public leaderboard).
PRIOR_SD_NATS = 1.0
# Variances are never updated below this (nats^2): a floor against overconfidence from the
# diagonal approximation, which ignores that two models' errors are correlated.
MIN_VARIANCE = 1e-4


@dataclass
class RatingState:
    """Belief about ``models``: ``mean`` (n,), ``covariance`` (n, n) in nats; ``votes`` (n,)
    battles each model has had; ``pair_votes`` (n, n) battles per pair (for ci-reduction)."""

    models: list[str]
    mean: np.ndarray
    covariance: np.ndarray
    votes: np.ndarray
    pair_votes: np.ndarray
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self):
        n = len(self.models)
        self.mean = np.asarray(self.mean, dtype=float)
        self.covariance = np.asarray(self.covariance, dtype=float)
        self.votes = np.asarray(self.votes, dtype=float)
        self.pair_votes = np.asarray(self.pair_votes, dtype=float)
        if self.mean.shape != (n,) or self.covariance.shape != (n, n) or self.votes.shape != (n,):
            raise ValueError(
                f"state shapes disagree with {n} models: mean {self.mean.shape}, "
                f"covariance {self.covariance.shape}, votes {self.votes.shape}"
            )
        if self.pair_votes.shape != (n, n):
            raise ValueError(f"pair_votes must be {n}x{n}, got {self.pair_votes.shape}")
        self.index = {name: i for i, name in enumerate(self.models)}

    @classmethod
    def prior(cls, models: Sequence[str], prior_sd: float = PRIOR_SD_NATS) -> RatingState:
        n = len(models)
        return cls(list(models), np.zeros(n), np.eye(n) * prior_sd**2, np.zeros(n), np.zeros((n, n)))

    @property
    def variance(self) -> np.ndarray:
        return np.diag(self.covariance).copy()

    def restricted(self, names: Sequence[str], prior_sd: float = PRIOR_SD_NATS) -> RatingState:
        """The belief over ``names`` (in that order); unknown names get the prior, centred on
        the mean of the whole belief (not of ``names``), so a new model starts at the same place
        whichever models it is first seen with (the live choose and record_vote restrict to
        different lists and must agree)."""
        known = [self.index.get(name, -1) for name in names]
        idx = np.array(known)
        seen = idx >= 0
        n = len(names)
        centre = float(self.mean.mean()) if len(self.mean) else 0.0
        mean = np.full(n, centre)
        cov = np.eye(n) * prior_sd**2
        votes = np.zeros(n)
        pair_votes = np.zeros((n, n))
        where = np.flatnonzero(seen)
        src = idx[seen]
        mean[where] = self.mean[src]
        cov[np.ix_(where, where)] = self.covariance[np.ix_(src, src)]
        votes[where] = self.votes[src]
        pair_votes[np.ix_(where, where)] = self.pair_votes[np.ix_(src, src)]
        return RatingState(list(names), mean, cov, votes, pair_votes)


# online_pair_update in Lua, line for line: the live matchmaker applies it inside Redis (the
# script in live.py), atomically, so votes recorded by several web processes are all applied.
# ``mu`` and ``var`` are Lua arrays (1-based), changed in place; ``min_var`` is MIN_VARIANCE.
# Change the two together: tests/test_matchmaker_live.py::test_lua_pair_update_equals_the_python_one
# and ::test_online_update_in_redis_matches_the_python_update hold them equal.
ONLINE_PAIR_UPDATE_LUA = """
local function online_pair_update(mu, var, w, l, score, min_var)
  local var_w, var_l = var[w], var[l]
  local spread = var_w + var_l
  local gap = (mu[w] - mu[l]) / math.sqrt(1.0 + math.pi * spread / 8.0)
  local expected = 1.0 / (1.0 + math.exp(-gap))
  local information = expected * (1.0 - expected)
  local denominator = 1.0 + information * spread
  local surprise = (score - expected) / denominator
  mu[w] = mu[w] + var_w * surprise
  mu[l] = mu[l] - var_l * surprise
  var[w] = math.max(var_w - var_w * var_w * information / denominator, min_var)
  var[l] = math.max(var_l - var_l * var_l * information / denominator, min_var)
end
"""


def online_pair_update(
    mean: np.ndarray, variance: np.ndarray, winner: int, loser: int, score: float = 1.0
) -> None:
    """One Bayesian step for one pairwise outcome, in place on ``mean`` and ``variance``.

    ``score`` is the winner's score (1 win, 0.5 tie). The predicted probability uses the
    probit-corrected logistic (MacKay), so an uncertain pair moves less confidently; the update
    is the Kalman step for the linearised likelihood on the difference theta_w - theta_l.

    Its twin in Lua, ``ONLINE_PAIR_UPDATE_LUA`` (just above), is what the live matchmaker runs
    inside Redis; test_lua_pair_update_equals_the_python_one and
    test_online_update_in_redis_matches_the_python_update (tests/test_matchmaker_live.py) hold
    the two equal.
    """
    var_w, var_l = variance[winner], variance[loser]
    spread = var_w + var_l
    gap = (mean[winner] - mean[loser]) / math.sqrt(1.0 + math.pi * spread / 8.0)
    expected = 1.0 / (1.0 + math.exp(-gap))
    information = expected * (1.0 - expected)
    denominator = 1.0 + information * spread
    surprise = (score - expected) / denominator
    mean[winner] += var_w * surprise
    mean[loser] -= var_l * surprise
    variance[winner] = max(var_w - var_w * var_w * information / denominator, MIN_VARIANCE)
    variance[loser] = max(var_l - var_l * var_l * information / denominator, MIN_VARIANCE)


def ranking_pair_steps(ranking: Sequence[Sequence[int]]) -> list[tuple[int, int, float]]:
    """A K-wise ranking (groups of indices, best first) as pairwise steps (winner, loser, score):
    members of one group tie (0.5), every member of a group beats every member of the next group.
    Adjacent groups only (adjacent rank-breaking), so a K-wise vote is not counted as K(K-1)/2
    independent votes."""
    return [(ahead, behind, SCORE_A[outcome]) for ahead, behind, outcome in adjacent_pairs(ranking)]


def online_ranking_update(mean: np.ndarray, variance: np.ndarray, ranking: Sequence[Sequence[int]]) -> None:
    """Apply a K-wise ranking (or a pairwise outcome as a ranking) to ``mean`` and ``variance``."""
    for winner, loser, score in ranking_pair_steps(ranking):
        online_pair_update(mean, variance, winner, loser, score)


def rescaled_covariance(covariance: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """``covariance`` with its diagonal replaced by ``variance`` and its correlations kept."""
    old = np.sqrt(np.maximum(np.diag(covariance), MIN_VARIANCE))
    scale = np.sqrt(np.maximum(variance, MIN_VARIANCE)) / old
    out = covariance * scale[:, None] * scale[None, :]
    np.fill_diagonal(out, variance)
    return out
