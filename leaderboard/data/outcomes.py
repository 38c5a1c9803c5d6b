"""The outcome of a pairwise vote: the four LMArena strings, and the check that an outcome is one of them.

The bottom of the vote vocabulary: the vote event (``leaderboard.data.events``) carries an outcome,
a ranking (``leaderboard.data.rankings``) is read from one, and the per-pair counts classify them.
"""

from __future__ import annotations

# The same strings as the public LMArena data sets, so their files load unchanged.
MODEL_A = "model_a"
MODEL_B = "model_b"
TIE = "tie"
TIE_BOTHBAD = "tie (bothbad)"
PAIRWISE_OUTCOMES = (MODEL_A, MODEL_B, TIE, TIE_BOTHBAD)


class UnknownOutcomeError(ValueError):
    """An outcome string outside the LMArena vocabulary."""


def check_outcome(outcome: str) -> str:
    """Return ``outcome`` if it is one of the four LMArena strings, else raise a clear error."""
    if outcome not in PAIRWISE_OUTCOMES:
        allowed = ", ".join(repr(o) for o in PAIRWISE_OUTCOMES)
        raise UnknownOutcomeError(f"unknown outcome {outcome!r}: expected one of {allowed}")
    return outcome
