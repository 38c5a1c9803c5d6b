"""The vote event: the contract between vote intake (arena) and the rating engine (leaderboard).

One accepted vote is one ``VoteEvent``. It travels as JSON in the ``event`` field of a
Redis stream entry, and is stored unchanged, one JSON object per line, in the durable archive.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The outcome vocabulary is part of this contract: arena and the statistics import it from here.
from leaderboard.data.outcomes import (
    MODEL_A,
    MODEL_B,
    PAIRWISE_OUTCOMES,
    TIE,
    TIE_BOTHBAD,
    UnknownOutcomeError,
    check_outcome,
)
from leaderboard.data.rankings import check_ranking, with_unranked

__all__ = [
    "MAX_FEEDBACK_CHARS", "MODEL_A", "MODEL_B", "PAIRWISE_OUTCOMES", "STYLE_COLUMNS", "TIE", "TIE_BOTHBAD",
    "StyleFeatures", "UnknownOutcomeError", "VoteEvent", "VoteMode", "check_outcome",
]

VoteMode = Literal["anonymous", "named", "kwise"]

# Longest free-text reason a voter may give with a vote.
MAX_FEEDBACK_CHARS = 1000


class StyleFeatures(BaseModel):
    """Per-answer style features used by style control (counted over the whole conversation)."""

    model_config = ConfigDict(extra="forbid")

    tokens: int = Field(ge=0, description="answer length in tokens")
    headers: int = Field(ge=0, description="markdown headers")
    list_items: int = Field(ge=0, description="markdown list items")
    bold: int = Field(ge=0, description="bold spans")


# The style covariates as vote tables name them (one column per answer side: ``tokens_a``, ...).
STYLE_COLUMNS = ("tokens", "headers", "lists", "bold")


class VoteEvent(BaseModel):
    """One accepted vote.

    Pairwise votes (mode ``anonymous``, or ``named`` with two models) carry ``outcome`` and exactly
    two ``models``; K-wise votes (mode ``kwise``, or ``named`` with more than two models) carry
    ``ranking``: groups of model names, best first (a group of several names is a tie), covering
    every model in ``models`` except those in ``unranked`` (a partial ranking: the voter picked
    the best only, the rest were shown but not ranked).
    """

    model_config = ConfigDict(extra="forbid")

    vote_id: str = Field(min_length=8, description="unique id; the archive is idempotent on it")
    battle_id: str = Field(min_length=8)
    mode: VoteMode
    models: list[str] = Field(min_length=2, description="model names in display order (A, B, ...)")
    outcome: str | None = None
    ranking: list[list[str]] | None = None
    unranked: list[str] = Field(default_factory=list, description=(
        "a partial ranking's models shown but not ranked (below every placed group, in no order); "
        "empty for a complete ranking and for pairwise votes"))
    voter_id: str = Field(min_length=1, description="pseudonymous voter id, never a raw IP")
    served_at: float = Field(description="unix time the answers were first shown")
    voted_at: float = Field(description="unix time of the vote")
    selection_probability: float = Field(gt=0.0, le=1.0, description="P(matchmaker chose this pair/set)")
    style: list[StyleFeatures] = Field(description="one entry per model, display order")
    categories: list[str] = Field(default_factory=list)
    turns: int = Field(default=1, ge=1)
    identity_flags: list[str] = Field(
        default_factory=list,
        description="optional: why the battle may have revealed a model's identity before the vote "
                    "('prompt-asks-identity', 'names-itself:<label>'); such votes are archived but left out "
                    "of the anonymous ratings unless the worker is told to rate them")
    feedback: str | None = Field(default=None, max_length=MAX_FEEDBACK_CHARS,
                                 description="the voter's optional reason for the vote, in their words")
    language: str | None = Field(default=None, description=(
        "ISO 639-1 code of the prompt's language, detected at vote time (arena.battles.prompt_profile); "
        "None when the prompt was too short to tell, or for votes recorded before the field existed"))
    regenerations: list[int] = Field(default_factory=list, description=(
        "optional: how many times each model's answers were regenerated before the vote, one count per model "
        "in display order; empty when none was (and for votes recorded before the field existed)"))
    truncated: list[bool] = Field(default_factory=list, description=(
        "optional: per model in display order, whether one of its answers was cut by the arena's answer limits "
        "(size or time) before the vote; empty when none was (and for votes recorded before the field existed)"))

    @model_validator(mode="after")
    def _consistent(self) -> VoteEvent:
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models must be distinct, got {self.models}")
        if len(self.style) != len(self.models):
            raise ValueError(f"style has {len(self.style)} entries for {len(self.models)} models")
        if self.regenerations and len(self.regenerations) != len(self.models):
            raise ValueError(f"regenerations has {len(self.regenerations)} counts for {len(self.models)} models")
        if self.truncated and len(self.truncated) != len(self.models):
            raise ValueError(f"truncated has {len(self.truncated)} entries for {len(self.models)} models")
        if any(count < 0 for count in self.regenerations):
            raise ValueError(f"regenerations must be counts of 0 or more, got {self.regenerations}")
        if self.is_ranking:
            if self.ranking is None or self.outcome is not None:
                raise ValueError(f"a {self.mode} vote on {len(self.models)} models carries 'ranking' and no 'outcome'")
            check_ranking(self.full_ranking(), self.models)
        else:
            if len(self.models) != 2 or self.outcome is None or self.ranking is not None or self.unranked:
                raise ValueError("a pairwise vote carries two models, an 'outcome' and no 'ranking'")
            check_outcome(self.outcome)
        return self

    @property
    def is_ranking(self) -> bool:
        """A K-wise vote (a ranking), anonymous or named; else a pairwise vote (an outcome)."""
        return self.mode == "kwise" or (self.mode == "named" and len(self.models) > 2)

    def full_ranking(self) -> list:
        """The ranking with its unranked models as a last ``Unranked`` entry (leaderboard.data.rankings),
        the form rank-breaking and the Plackett-Luce fit read; None for a pairwise vote."""
        return None if self.ranking is None else with_unranked(self.ranking, self.unranked)
