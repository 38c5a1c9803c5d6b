"""What the worker keeps of the rated votes: per-pair counts, K-wise rankings, online Elo.

No Redis and no files here: a tally is built from vote events (the archive at start-up, then
each new batch) and read by the snapshot policy.
"""

from __future__ import annotations

from collections.abc import Iterable

from leaderboard.counts import I_WINS, J_WINS, TIE_CLASS, PairCounts
from leaderboard.elo import OnlineElo
from leaderboard.events import MODEL_A, MODEL_B, TIE, VoteEvent
from leaderboard.rankings import all_pairs, outcome_to_ranking

# Each outcome class of the pair counts as the outcome it counts (seen from the pair's first model).
_OUTCOME_OF_CLASS = ((MODEL_A, I_WINS), (MODEL_B, J_WINS), (TIE, TIE_CLASS))


class VoteTally:
    """Running statistics of the rated votes: per-pair counts, K-wise rankings, online Elo."""

    def __init__(self) -> None:
        self.pairs = PairCounts.empty()
        self.rankings: list[list[list[str]]] = []  # K-wise votes, groups best first
        self.elo = OnlineElo()
        self.named = 0  # archived but not rated: the voter saw the model names

    @classmethod
    def from_events(cls, events: Iterable[VoteEvent]) -> "VoteTally":
        tally = cls()
        for event in events:
            tally.add(event)
        return tally

    def add(self, event: VoteEvent) -> None:
        if event.mode == "named":
            self.named += 1
        elif event.mode == "kwise":
            self.rankings.append([list(group) for group in event.ranking])
            # Elo sees a K-wise vote as its pairwise comparisons (it has no K-wise form).
            for ahead, behind, outcome in all_pairs(event.ranking):
                self.elo.update(ahead, behind, outcome)
        else:
            model_a, model_b = event.models
            self.pairs.add(model_a, model_b, event.outcome)
            self.elo.update(model_a, model_b, event.outcome)

    @property
    def rated(self) -> int:
        return self.pairs.n_votes + len(self.rankings)

    @property
    def archived(self) -> int:
        """Every archived vote, rated or not."""
        return self.rated + self.named

    def votes_per_model(self) -> dict[str, int]:
        votes = self.pairs.votes_per_model()
        for ranking in self.rankings:
            for group in ranking:
                for name in group:
                    votes[name] = votes.get(name, 0) + 1
        return votes

    def all_rankings(self) -> tuple[list[list[list[str]]], list[int]]:
        """Every rated vote as a ranking, with how many votes each stands for: pairwise votes as
        two-item rankings (a tie as one group), one per (pair, outcome) with its count -- so the
        Plackett-Luce fit costs O(pairs + K-wise votes), not O(votes); K-wise votes one each."""
        arrays = self.pairs.arrays()
        models = self.pairs.models
        rankings: list[list[list[str]]] = []
        multiplicity: list[int] = []
        for i, j, count in zip(arrays.pair_i.tolist(), arrays.pair_j.tolist(), arrays.count.tolist()):
            a, b = models[i], models[j]
            for outcome, outcome_class in _OUTCOME_OF_CLASS:
                if count[outcome_class]:
                    rankings.append(outcome_to_ranking((a, b), outcome))
                    multiplicity.append(count[outcome_class])
        return rankings + self.rankings, multiplicity + [1] * len(self.rankings)
