"""What the worker keeps of the rated votes: per-pair counts, K-wise rankings, online Elo.

No Redis and no files here: a tally is built from vote events (the archive at start-up, then
each new batch) and read by the snapshot policy.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Collection, Iterable

from leaderboard.data.counts import I_WINS, J_WINS, TIE_CLASS, PairCounts
from leaderboard.data.events import MODEL_A, MODEL_B, TIE, VoteEvent
from leaderboard.data.rankings import all_pairs, outcome_to_ranking
from leaderboard.models.elo import OnlineElo

# Each outcome class of the pair counts as the outcome it counts (seen from the pair's first model).
_OUTCOME_OF_CLASS = ((MODEL_A, I_WINS), (MODEL_B, J_WINS), (TIE, TIE_CLASS))


class VoteTally:
    """Running statistics of the rated votes: per-pair counts, K-wise rankings, online Elo."""

    def __init__(self, *, rate_deanonymised: bool = False) -> None:
        self.rate_deanonymised = rate_deanonymised
        self.deanonymised = 0  # archived but not rated: a model may have revealed itself (identity_flags)
        self.pairs = PairCounts.empty()
        # K-wise votes, groups best first (a partial ranking ends with its Unranked models)
        self.rankings: list[list[list[str]]] = []
        self.elo = OnlineElo()
        self.named = 0  # archived but not rated: the voter saw the model names
        # who cast what, so a voter flagged later (leaderboard.worker.voters) can be taken out of the fit
        self.voter_pairs: dict[str, Counter] = {}  # voter -> Counter((model_a, model_b, outcome))
        self.ranking_voters: list[str] = []  # voter of each K-wise ranking, in order
        self.ranking_weights: list[float] | None = None  # None: every ranking counts once
        # the joint fit's compiled rankings (leaderboard.models.joint_fit); rankings only grow
        self.design_cache: dict = {}

    @classmethod
    def from_events(cls, events: Iterable[VoteEvent]) -> VoteTally:
        tally = cls()
        for event in events:
            tally.add(event)
        return tally

    def add(self, event: VoteEvent) -> None:
        if event.identity_flags and not self.rate_deanonymised and event.mode != "named":
            self.deanonymised += 1
        elif event.mode == "named":
            self.named += 1
        elif event.mode == "kwise":
            ranking = event.full_ranking()
            self.rankings.append(ranking)
            self.ranking_voters.append(event.voter_id)
            # Elo sees a K-wise vote as its pairwise comparisons (it has no K-wise form).
            for ahead, behind, outcome in all_pairs(ranking):
                self.elo.update(ahead, behind, outcome)
        else:
            model_a, model_b = event.models
            self.pairs.add(model_a, model_b, event.outcome)
            self.voter_pairs.setdefault(event.voter_id, Counter())[(model_a, model_b, event.outcome)] += 1
            self.elo.update(model_a, model_b, event.outcome)

    def without_voters(self, voters: Collection[str], weight: float = 0.0) -> tuple[VoteTally, int]:
        """A copy for fitting in which the votes of ``voters`` count ``weight`` each (0: left out),
        and how many votes that touched. The online Elo (the fallback for a handful of votes) is shared."""
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"a flagged voter's weight must be in [0, 1], got {weight}")
        view = copy.copy(self)
        view.design_cache = {}  # its rankings are not this tally's: nothing compiled for them
        touched = 0
        if weight >= 1.0:
            return view, 0
        view.pairs = self.pairs.copy()
        for voter in voters:
            for (model_a, model_b, outcome), times in self.voter_pairs.get(voter, {}).items():
                view.pairs.remove(model_a, model_b, outcome, times=times)
                touched += times
                for _ in range(times if weight > 0 else 0):
                    view.pairs.add(model_a, model_b, outcome, weight=weight)
        voters = set(voters)
        weights = [weight if voter in voters else 1.0 for voter in self.ranking_voters]
        touched += sum(1 for voter in self.ranking_voters if voter in voters)
        keep = [index for index, w in enumerate(weights) if w > 0]
        view.rankings = [self.rankings[index] for index in keep]
        view.ranking_voters = [self.ranking_voters[index] for index in keep]
        view.ranking_weights = [weights[index] for index in keep]
        return view, touched

    @property
    def rated(self) -> int:
        return self.pairs.n_votes + len(self.rankings)

    @property
    def archived(self) -> int:
        """Every archived vote, rated or not."""
        return self.rated + self.named + self.deanonymised

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
        # weights equal counts unless flagged voters were down-weighted (without_voters)
        for i, j, count in zip(arrays.pair_i.tolist(), arrays.pair_j.tolist(), arrays.weight.tolist()):
            a, b = models[i], models[j]
            for outcome, outcome_class in _OUTCOME_OF_CLASS:
                if count[outcome_class]:
                    rankings.append(outcome_to_ranking((a, b), outcome))
                    multiplicity.append(count[outcome_class])
        ranking_weights = self.ranking_weights if self.ranking_weights is not None else [1] * len(self.rankings)
        return rankings + self.rankings, multiplicity + list(ranking_weights)
