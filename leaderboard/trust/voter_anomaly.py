"""Anomalous voters: a sequential test, per voter, of how surprising their votes are under the
current ratings.

The null hypothesis H0 for one voter: each of their votes follows the model the leaderboard fits
(Bradley-Terry / Plackett-Luce) at the current ratings theta. The alternatives H(m, delta): the
voter favours model ``m`` by ``delta`` nats beyond its rating (``delta`` < 0: works against it),
which is what a fingerprinting attacker who always votes for one model looks like.

For one vote that showed the set S and put a single model first (ties, and votes showing a model
without a rating, carry no evidence), and each model m in S, write p = P_H0(m first) =
exp(theta_m) / sum_S exp(theta_s) and q = P_delta(m first) = e^delta p / (e^delta p + 1 - p). The
likelihood ratio of "m first or not" is q/p if m was first, else (1-q)/(1-p); its expectation
under H0 is exactly 1. The ratings used are those of the last fit *before* the vote was read, so
the product of these ratios over a voter's votes is a nonnegative martingale under H0, and so is
the average over a grid of ``DELTAS`` (a mixture martingale, so no delta is chosen after looking).
By Ville's inequality an honest voter's ``E(m) = mean_delta prod LR`` ever reaching 1/a has
probability at most a, at any time, however long we watch (no correction for peeking). A voter is
flagged when max_m E(m) >= M / alpha, M the number of rated models (a union bound over m), so an
honest voter is flagged with probability at most ``alpha`` over their whole history.

This is the "p-values combined sequentially" idea of the Chatbot Arena paper (Chiang et al. 2024,
section on anomalous users) in its e-value form, which stays valid under optional stopping. It
is exact when theta is the truth; with estimated ratings it is approximate (a voter with a real,
idiosyncratic taste for one model is "surprising" too: flagging says "not like the crowd", and
what to do with it is the operator's call: down-weight, exclude, or unflag).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

# nats; both signs: favouring a model and working against it
DELTAS = np.array([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0])
# The test's level: the probability an honest voter is ever flagged (not a prior precision, as
# leaderboard.live.policy.DEFAULT_PRIOR_PRECISION is). The worker's --voter-flag-alpha sets it.
DEFAULT_FALSE_FLAG_RATE = 1e-3


def vote_log_ratios(shown: Sequence[str], first: Sequence[str], theta: Mapping[str, float]) -> dict[str, np.ndarray]:
    """log LR(m, delta) of one vote for each model m shown, one entry per delta (see the module).
    ``first`` is the vote's best group; empty result when the vote carries no evidence."""
    if len(first) != 1 or any(name not in theta for name in shown) or len(set(shown)) < 2:
        return {}
    ratings = np.array([theta[name] for name in shown], dtype=float)
    ratings -= ratings.max()
    p_first = np.exp(ratings) / np.exp(ratings).sum()
    ratios = {}
    for name, p in zip(shown, p_first):
        p = float(min(max(p, 1e-12), 1 - 1e-12))
        q = np.exp(DELTAS) * p / (np.exp(DELTAS) * p + 1 - p)
        ratios[name] = np.log(q / p) if name == first[0] else np.log((1 - q) / (1 - p))
    return ratios


def log_mixture(log_products: np.ndarray) -> float:
    """log of the mean over deltas of exp(log_products)."""
    top = float(np.max(log_products))
    return top + math.log(float(np.mean(np.exp(log_products - top))))


def flag_threshold(n_models: int, alpha: float = DEFAULT_FALSE_FLAG_RATE) -> float:
    """log(M / alpha): a voter whose evidence reaches it is flagged."""
    return math.log(max(n_models, 1) / alpha)


@dataclass
class VoterEvidence:
    """One voter's running log-products per model (one per delta) and how many votes carried evidence."""

    log_products: dict[str, np.ndarray] = field(default_factory=dict)
    votes: int = 0

    def add(self, ratios: Mapping[str, np.ndarray]) -> None:
        if not ratios:
            return
        self.votes += 1
        for name, log_ratio in ratios.items():
            self.log_products[name] = self.log_products.get(name, np.zeros(len(DELTAS))) + log_ratio

    def strongest(self) -> tuple[str | None, float, float]:
        """(model, log E, delta most supported) of the model with the largest evidence."""
        best = (None, -math.inf, 0.0)
        for name, log_products in self.log_products.items():
            score = log_mixture(log_products)
            if score > best[1]:
                best = (name, score, float(DELTAS[int(np.argmax(log_products))]))
        return best

    def to_fields(self) -> dict[str, str]:
        fields = {f"m:{name}": ",".join(f"{value:.6g}" for value in log_products)
                  for name, log_products in self.log_products.items()}
        fields["votes"] = str(self.votes)
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> VoterEvidence:
        evidence = cls(votes=int(fields.get("votes", 0)))
        for key, value in fields.items():
            if key.startswith("m:"):
                values = np.array([float(part) for part in value.split(",")])
                if values.shape == DELTAS.shape:
                    evidence.log_products[key[2:]] = values
        return evidence
