"""What a battle may be and how much this arena gives: ``BattleLimits`` (the operator's limits on
prompts, turns, sizes, regenerations and rates, one frozen value built from the settings) and
``AnswerBudget`` (the answers this process generates at once, counted in this process).

The checks here cost nothing: they run before a battle is created or any budget is spent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from arena.battles.requests import check_size
from arena.battles.text_checks import lone_surrogate_at
from arena.errors import ArenaBusy, BattleError
from arena.models.answer_checks import DEFAULT_MAX_ANSWER_CHARS
from arena.trust.rate_limit import DAY, MINUTE, Limit, Rate, subject

# The K-way sizes offered when none are given: the default of --kway-sizes (arena.ops.settings).
DEFAULT_KWAY_SIZES = (4,)


@dataclass(frozen=True)
class BattleLimits:
    """The operator's limits on battles (the serve settings of the same names; 0 turns a rate off).

    ``kway_sizes``: the K-way sizes on offer (a two-way battle always is); ``max_regenerations``:
    per side per battle, 0 turns regeneration off; ``max_concurrent_answers``: answers this
    process may generate at once, 0 for no budget; ``max_answer_chars``: characters kept of one
    answer (past them it is cut and marked truncated: arena.models.answer_checks). Rates: new
    battles (a regeneration counts as one) and votes per voter and per session, and votes per
    voter per model pair. Named battles: per voter per model a day, and at most ``named_share`` of
    a model's ``max_concurrent`` and daily quota (1.0: all of them).
    """

    max_prompt_chars: int = 8000
    max_turns: int = 8
    kway_sizes: tuple[int, ...] = DEFAULT_KWAY_SIZES
    max_regenerations: int = 2
    max_concurrent_answers: int = 0
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS
    battles_per_minute: int = 0
    battles_per_day: int = 0
    votes_per_minute: int = 0
    votes_per_day: int = 0
    pair_votes_per_day: int = 0
    named_battles_per_model_per_day: int = 0
    named_share: float = 1.0

    def checked_prompt(self, prompt) -> str:
        """The prompt as it will be sent (stripped), or BattleError saying what is wrong with it."""
        if not isinstance(prompt, str):
            raise BattleError(f"the prompt must be text, not {type(prompt).__name__}")
        prompt = prompt.strip()
        if not prompt:
            raise BattleError("the prompt is empty: type a question or an instruction")
        if len(prompt) > self.max_prompt_chars:
            raise BattleError(f"the prompt has {len(prompt)} characters; the limit is {self.max_prompt_chars}")
        position = lone_surrogate_at(prompt)
        if position is not None:
            raise BattleError(f"the prompt has an invalid character at position {position} (a lone UTF-16 "
                              "surrogate, which no model can read): send plain UTF-8 text")
        return prompt

    def check_size(self, k, seats: int) -> int:
        """K of a new battle: 2 or an offered K-way size, and no more than the ``seats`` (models) there are."""
        return check_size(k, self.kway_sizes, seats)

    def new_battle_limits(self, session_id: str, voter_id: str) -> list[Limit]:
        """New battles (and regenerations) per voter and per session (a minute, a day)."""
        rates = (Rate(self.battles_per_minute, MINUTE), Rate(self.battles_per_day, DAY))
        return ([Limit(rate, subject("voter", voter_id), "from your address") for rate in rates]
                + [Limit(rate, subject("session", session_id), "in this session") for rate in rates])

    def named_battle_limits(self, voter_id: str, models) -> list[Limit]:
        """A named battle, against each model it names: per voter per model (a day)."""
        rate = Rate(self.named_battles_per_model_per_day, DAY)
        return [Limit(rate, subject("named", voter_id, model), f"naming {model}") for model in models]

    def named_part(self, capacity: int | None) -> int | None:
        """Of a model's ``capacity`` (answers at once, or battles a day; None: unlimited), what named
        battles may use: ``named_share`` of it, rounded down (a model with 1 keeps it for anonymous ones
        unless the share is 1)."""
        return None if capacity is None else math.floor(capacity * self.named_share + 1e-9)

    def vote_limits(self, models: list[str], session_id: str, voter_id: str) -> list[Limit]:
        """Votes per voter and per session (a minute, a day), and per voter per model pair (a day)."""
        rates = (Rate(self.votes_per_minute, MINUTE), Rate(self.votes_per_day, DAY))
        pair = subject("pair", voter_id, "|".join(sorted(models)))
        return ([Limit(rate, subject("voter", voter_id), "from your address") for rate in rates]
                + [Limit(rate, subject("session", session_id), "in this session") for rate in rates]
                + [Limit(Rate(self.pair_votes_per_day, DAY), pair, "on this pair of models")])


class AnswerBudget:
    """Answers this process may generate at once (``limit`` 0: no budget), counted here.

    One event loop serves a process, so ``check`` then ``take`` with no await in between
    reserves atomically; a turn or a regeneration gives its answers back when it ends.
    """

    def __init__(self, limit: int = 0):
        self.limit = limit
        self.in_flight = 0

    def check(self, answers: int) -> None:
        """ArenaBusy (503) when ``answers`` more would go over the budget."""
        if self.limit and self.in_flight + answers > self.limit:
            raise ArenaBusy(f"the arena is answering {self.in_flight} prompts at once, its limit "
                            f"({self.limit}); try again in a few seconds", retry_after=5)

    def take(self, answers: int) -> None:
        self.in_flight += answers

    def give_back(self, answers: int) -> None:
        self.in_flight -= answers
