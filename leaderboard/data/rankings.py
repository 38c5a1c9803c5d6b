"""Rankings: one vote's order of models, and the pairwise comparisons read from it.

A ranking is a list of groups, best first; a group of several models is a tie (the shape of
``VoteEvent.ranking``). Models are names or indices: nothing here looks inside them beyond
equality and hashing. A pairwise vote is a two-model ranking (``outcome_to_ranking``).

Rating methods with no K-wise form (online Elo, the matchmaker's Kalman step) break a ranking
into pairs. There are two rules, and they say different things:

- ``all_pairs`` (full rank-breaking): every model against every model below it. Each pair is
  treated as its own comparison, so a K-way vote counts as K(K-1)/2 pairwise votes.
- ``adjacent_pairs`` (adjacent rank-breaking): ties within a group, and every model against
  every model of the next group only. A K-way vote then moves each model about as much as
  one pairwise vote per neighbour, instead of as many independent votes as there are pairs.

Partial rankings. A voter may rank only the best (or the best few) of the K answers: the models
left out were shown but not ranked. They end the ranking as one ``Unranked`` entry: below every
placed group, in no order among themselves. Rank-breaking pairs every placed model with every
unranked one (``all_pairs``; ``adjacent_pairs``: the last placed group only) and never pairs two
unranked models with each other; the Plackett-Luce likelihood stops after the placed groups
(leaderboard.models.plackett_luce_design). A ranking without an ``Unranked`` entry is complete.

Both return (ahead, behind, outcome) triples, ``outcome`` an LMArena string seen from
``ahead`` (``model_a``: ahead won; ``tie``: the two share a group), so a pair feeds any
function that takes one pairwise vote. The order of the triples is part of the contract:
sequential updates (Elo, Kalman) give different numbers in a different order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from typing import TypeVar

from leaderboard.data.outcomes import MODEL_A, MODEL_B, TIE, check_outcome

Model = TypeVar("Model", bound=Hashable)


class RankingError(ValueError):
    """A ranking that cannot be used; the message names the ranking and the fix."""


class Unranked(tuple):
    """The last entry of a partial ranking: the models shown but not ranked (below every placed
    group, in no order among themselves). A tuple, so it compares and hashes like one."""

    def __repr__(self) -> str:
        return f"Unranked({list(self)!r})"


def with_unranked(groups: Sequence[Sequence[Model]], unranked: Sequence[Model] = ()) -> list:
    """The ranking of a vote that placed ``groups`` (best first) and left ``unranked`` out:
    ``groups`` as lists, then ``Unranked(unranked)`` when any model was left out."""
    ranking: list = [list(group) for group in groups]
    if unranked:
        ranking.append(Unranked(unranked))
    return ranking


def split_unranked(ranking: Sequence[Sequence[Model]]) -> tuple[list[Sequence[Model]], tuple[Model, ...]]:
    """(placed groups, unranked models) of a ranking; no unranked models for a complete one."""
    groups = list(ranking)
    if groups and isinstance(groups[-1], Unranked):
        return groups[:-1], tuple(groups[-1])
    return groups, ()


def outcome_to_ranking(models: Sequence[Model], outcome: str) -> list[list[Model]]:
    """A pairwise vote as a ranking: ``models`` are (model A, model B) in display order,
    ``outcome`` one of the four LMArena strings. Both kinds of tie are one group (A first)."""
    if len(models) != 2:
        raise RankingError(f"a pairwise outcome needs two models (A, B), got {list(models)!r}")
    model_a, model_b = models
    check_outcome(outcome)
    if outcome == MODEL_A:
        return [[model_a], [model_b]]
    if outcome == MODEL_B:
        return [[model_b], [model_a]]
    return [[model_a, model_b]]


def order_to_ranking(order: Sequence[Model]) -> list[list[Model]]:
    """A strict order (best first, no ties) as a ranking of one-model groups."""
    return [[model] for model in order]


def check_ranking(ranking: Sequence[Sequence[Model]], models: Sequence[Model]) -> Sequence[Sequence[Model]]:
    """Return ``ranking`` if it places each of ``models`` exactly once in non-empty groups (an
    ``Unranked`` last entry counts as placing its models), else raise RankingError naming what is wrong."""
    if len(models) < 2:
        raise RankingError(f"a ranking needs at least two models, got {list(models)!r}")
    if any(isinstance(group, Unranked) for group in list(ranking)[:-1]):
        raise RankingError(f"ranking {ranking!r}: the unranked models come last, after every placed group")
    placed_groups, unranked = split_unranked(ranking)
    if unranked and not placed_groups:
        raise RankingError(f"ranking {ranking!r} leaves every model unranked: place at least the best one")
    for position, group in enumerate(ranking):
        if isinstance(group, (str, bytes)):
            raise RankingError(f"group {position + 1} of the ranking {ranking!r} is the bare name {group!r}: "
                               f"each group must be a list of models, e.g. [[{group!r}], ...]")
        if not group:
            raise RankingError(f"a ranking group is empty: group {position + 1} of {ranking!r}; remove it")
    placed = Counter(model for group in ranking for model in group)
    expected = Counter(models)
    if placed != expected or any(count > 1 for count in placed.values()):
        problems = [f"{model!r} is missing" for model in expected if model not in placed]
        problems += [f"{model!r} is not one of them" for model in placed if model not in expected]
        problems += [f"{model!r} is placed {count} times" for model, count in placed.items() if count > 1]
        raise RankingError(f"ranking {ranking!r} must place each of {', '.join(map(str, models))} exactly once: "
                           + ", ".join(problems or [f"the models {list(models)!r} repeat"]))
    return ranking


def all_pairs(ranking: Sequence[Sequence[Model]]) -> list[tuple[Model, Model, str]]:
    """Full rank-breaking: (ahead, behind, outcome) for every pair of models in ``ranking``.

    Models in rank order; each is paired with its later group-mates (``tie``), then with every
    model of every later group (``model_a``); unranked models (a partial ranking's ``Unranked``
    entry) only with the placed models, which all rank ahead of them."""
    groups, unranked = split_unranked(ranking)
    pairs = []
    for position, group in enumerate(groups):
        below = [model for later in groups[position + 1 :] for model in later] + list(unranked)
        for index, ahead in enumerate(group):
            pairs.extend((ahead, mate, TIE) for mate in group[index + 1 :])
            pairs.extend((ahead, behind, MODEL_A) for behind in below)
    return pairs


def adjacent_pairs(ranking: Sequence[Sequence[Model]]) -> list[tuple[Model, Model, str]]:
    """Adjacent rank-breaking: (ahead, behind, outcome) for models of one group (``tie``) and for
    every model of a group against every model of the next group (``model_a``); a model is not
    paired with groups further down.

    Every tie of every group first (groups in order), then the consecutive groups in order; the
    unranked models of a partial ranking follow the last placed group and are not tied together."""
    groups, unranked = split_unranked(ranking)
    pairs = [(ahead, mate, TIE) for group in groups for index, ahead in enumerate(group) for mate in group[index + 1 :]]
    if unranked:
        groups = groups + [list(unranked)]
    for better, worse in zip(groups, groups[1:]):
        pairs.extend((ahead, behind, MODEL_A) for ahead in better for behind in worse)
    return pairs
