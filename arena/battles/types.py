"""What a battle is: its stored shape (``Battle``, ``Turn``), what the browser may see of a
turn in progress, the receipt of a vote, and the errors the battle engine refuses requests with.
Shared by the engine (:mod:`arena.battles.engine` and its parts), vote intake
(:mod:`arena.battles.votes`) and the web layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from arena.errors import BattleConflict, BattleError, BattleNotFound

# "regenerating": one answer of the latest turn is being asked for again (arena.battles.regeneration)
BattleState = Literal["open", "streaming", "ready", "regenerating", "failed", "voted"]


def position_labels(k: int) -> list[str]:
    """The anonymous names of a battle's answers, in display order: A, B, C, ..."""
    return [chr(ord("A") + index) for index in range(k)]


class Turn(BaseModel):
    prompt: str
    answers: list[str]
    failed: list[bool]
    started_at: float
    finished_at: float | None = None
    truncated: list[bool] = Field(default_factory=list, description=(
        "per position: the answer was cut by the size cap or the time limit (arena.models.answer_checks); "
        "empty in turns stored before the field existed"))


class Battle(BaseModel):
    battle_id: str
    session_id: str
    mode: Literal["anonymous", "named", "kwise"]
    models: list[str] = Field(description="display order: A, B, ...")
    selection_probability: float
    strategy: str
    created_at: float
    served_at: float | None = None
    turns: list[Turn] = Field(default_factory=list)
    identity_flags: list[str] = Field(default_factory=list,
                                      description="signs a model gave itself away (arena.trust.self_identification)")
    voter_id: str | None = Field(default=None, description="pseudonymous; the circuit breaker counts distinct voters")
    regenerations: list[int] = Field(default_factory=list, description=(
        "per position, how many times its answers were regenerated; empty until the first regeneration"))

    @property
    def labels(self) -> list[str]:
        return position_labels(len(self.models))

    @property
    def is_ranking(self) -> bool:
        """Voted with a ranking (more than two answers, anonymous or named), else with an outcome."""
        return len(self.models) > 2


@dataclass(frozen=True)
class TurnProgress:
    """What the browser may see while a turn streams: answers by position, never names."""

    turn: int  # 1 for the first prompt of the battle
    answers: list[str]
    finished: list[bool]
    failed: list[bool]

    @property
    def done(self) -> bool:
        return all(self.finished)


@dataclass(frozen=True)
class RegenerationProgress(TurnProgress):
    """A regeneration in progress: the latest turn's answers, the one at ``position`` growing anew.
    ``regenerations`` counts each position's regenerations so far (this one included once done)."""

    position: int
    regenerations: list[int]


@dataclass(frozen=True)
class VoteReceipt:
    vote_id: str
    models: list[str]
    outcome: str | None
    ranking: list[list[str]] | None
    identity_flags: tuple[str, ...] = ()  # the battle was de-anonymised: kept, not rated by default
    unranked: tuple[str, ...] = ()  # a partial ranking's models left out (names)


def state_error(battle_id: str, state: str) -> BattleError:
    """The error for a request that met the battle in ``state`` (a Redis script's verdict)."""
    messages = {
        "missing": (BattleNotFound, f"no battle {battle_id!r} (unknown or expired)"),
        "open": (BattleConflict, f"battle {battle_id} has no answers yet: send a prompt before voting"),
        "streaming": (BattleConflict, f"battle {battle_id} is still answering: wait until both answers finish"),
        "failed": (BattleConflict, f"a model in battle {battle_id} failed to answer, so it cannot be voted on: "
                                   "start a new round"),
        "voted": (BattleConflict, f"battle {battle_id} already has a vote: each battle takes one vote; "
                                  "start a new round"),
        "regenerating": (BattleConflict, f"battle {battle_id} is regenerating an answer: wait until it finishes"),
    }
    cls, message = messages.get(state, (BattleConflict, f"battle {battle_id} is in state {state!r}"))
    return cls(message, battle_id=battle_id)
