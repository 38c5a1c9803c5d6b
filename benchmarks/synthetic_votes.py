"""Seeded synthetic arena votes with known true strengths, for benchmarks.

Model popularity is Zipf-like (a few models take most battles, the tail gets tens of votes), pairs
are drawn proportional to the product of popularities, outcomes follow Bradley-Terry with a fixed
share of ties (half of them "tie (bothbad)").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OUTCOMES = np.array(["model_a", "model_b", "tie", "tie (bothbad)"], dtype=object)


def synthetic_votes(n_votes: int, n_models: int, *, seed: int = 0, zipf_exponent: float = 1.9,
                    tie_share: float = 0.25, strength_sd: float = 0.6,
                    with_style: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """(votes frame with model_a, model_b, winner [, style columns], true theta in nats)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, strength_sd, n_models)
    theta -= theta.mean()
    popularity = 1.0 / np.arange(1, n_models + 1) ** zipf_exponent
    popularity = rng.permutation(popularity / popularity.sum())
    a = rng.choice(n_models, size=n_votes, p=popularity)
    b = rng.choice(n_models, size=n_votes, p=popularity)
    clash = a == b
    while clash.any():  # redraw self-pairs
        b[clash] = rng.choice(n_models, size=int(clash.sum()), p=popularity)
        clash = a == b
    p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    u = rng.random(n_votes)
    tie = u < tie_share
    a_wins = ~tie & (rng.random(n_votes) < p_a)
    outcome = np.where(tie, np.where(rng.random(n_votes) < 0.5, 2, 3), np.where(a_wins, 0, 1))
    names = np.array([f"model-{k:04d}" for k in range(n_models)], dtype=object)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": OUTCOMES[outcome]})
    if with_style:
        frame["tokens_a"] = rng.poisson(400, n_votes)
        frame["tokens_b"] = rng.poisson(400, n_votes)
        for feature in ("headers", "lists", "bold"):
            frame[f"{feature}_a"] = rng.poisson(2, n_votes)
            frame[f"{feature}_b"] = rng.poisson(2, n_votes)
    return frame, theta


def dense_votes(n_votes: int, n_models: int, *, seed: int = 0, zipf_exponent: float = 0.8,
                min_votes_per_pair: int = 5, tie_share: float = 0.25,
                strength_sd: float = 0.6) -> tuple[pd.DataFrame, np.ndarray]:
    """Votes shaped like LMArena's public data: every one of the M(M-1)/2 pairs is played.

    Each pair gets ``min_votes_per_pair`` votes, and the rest are spread over pairs in proportion
    to the product of the two models' (Zipf-like) popularities, so pair frequencies are skewed
    (the busiest pairs get hundreds of times more votes than the rarest). Outcomes as in
    ``synthetic_votes``; rows are shuffled. Returns (votes frame, true theta in nats)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, strength_sd, n_models)
    theta -= theta.mean()
    popularity = rng.permutation(1.0 / np.arange(1, n_models + 1) ** zipf_exponent)
    first, second = np.triu_indices(n_models, k=1)
    n_pairs = first.size
    if n_votes < min_votes_per_pair * n_pairs:
        raise ValueError(f"{n_votes} votes cannot give each of {n_pairs} pairs {min_votes_per_pair} votes")
    pair_share = popularity[first] * popularity[second]
    per_pair = min_votes_per_pair + rng.multinomial(n_votes - min_votes_per_pair * n_pairs,
                                                    pair_share / pair_share.sum())
    order = rng.permutation(n_votes)
    pair_of_vote = np.repeat(np.arange(n_pairs), per_pair)[order]
    flip = rng.random(n_votes) < 0.5  # which side is model_a
    a = np.where(flip, second[pair_of_vote], first[pair_of_vote])
    b = np.where(flip, first[pair_of_vote], second[pair_of_vote])
    p_a = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
    tie = rng.random(n_votes) < tie_share
    a_wins = ~tie & (rng.random(n_votes) < p_a)
    outcome = np.where(tie, np.where(rng.random(n_votes) < 0.5, 2, 3), np.where(a_wins, 0, 1))
    names = np.array([f"model-{k:04d}" for k in range(n_models)], dtype=object)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": OUTCOMES[outcome]})
    return frame, theta
