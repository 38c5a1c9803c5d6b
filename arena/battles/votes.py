"""Vote intake: a vote checked against its stored battle, and the vote event it becomes.

A malformed vote is refused (``InvalidVote``, 422) naming what is missing or wrong; a well-formed
one becomes a :class:`~leaderboard.data.events.VoteEvent` carrying everything the rating engine and the
public export need (mode, models in display order, selection probability, style features,
categories). Writing it is the battle engine's job (one Lua script with the battle's state).
"""

from __future__ import annotations

import time
import uuid

from arena.battles.prompt_profile import prompt_language
from arena.battles.style import prompt_categories, style_features
from arena.battles.text_checks import QUOTE_CHARS, quoted
from arena.battles.types import Battle, VoteReceipt, position_labels
from arena.errors import InvalidVote
from leaderboard.data.events import MAX_FEEDBACK_CHARS, PAIRWISE_OUTCOMES, UnknownOutcomeError, VoteEvent, check_outcome
from leaderboard.data.export import VoteText
from leaderboard.data.rankings import RankingError, check_ranking, with_unranked


def checked_choice(battle: Battle, outcome, ranking, partial: bool = False) -> tuple[str | None, list[list[str]] | None,
                                                                                 list[str]]:
    """(outcome, ranking by model name, unranked model names) of a well-formed vote for this
    battle's size; else InvalidVote. ``partial``: the ranking may leave labels out (the voter
    picked the best only): those models were shown but not ranked."""
    if battle.is_ranking:
        labels = ", ".join(battle.labels)
        if outcome is not None:
            raise InvalidVote(f"a {len(battle.models)}-way battle takes a 'ranking' (groups of the labels {labels}, "
                              "best first), not an 'outcome'")
        if ranking is None:
            raise InvalidVote(f"the vote has no 'ranking': send groups of the labels {labels}, best first")
        return (None, *ranking_by_label(battle, ranking, partial))
    outcomes = ", ".join(PAIRWISE_OUTCOMES)
    if ranking is not None or partial:
        raise InvalidVote(f"a two-way battle takes an 'outcome' (one of {outcomes}), not a 'ranking'")
    if outcome is None:
        raise InvalidVote(f"the vote has no 'outcome': send one of {outcomes}")
    if not isinstance(outcome, str) or len(outcome) > QUOTE_CHARS:
        # refused here so the message quotes a bounded piece of it, not the whole input
        raise InvalidVote(f"unknown outcome {quoted(outcome)}: use one of {outcomes}")
    try:
        return check_outcome(outcome), None, []
    except UnknownOutcomeError as exc:
        raise InvalidVote(str(exc)) from exc


def ranking_by_label(battle: Battle, ranking, partial: bool = False) -> tuple[list[list[str]], list[str]]:
    """A ranking of the battle's labels as (ranking of its model names, unranked model names);
    else InvalidVote. Only a ``partial`` ranking may leave labels out."""
    by_label = dict(zip(battle.labels, battle.models))
    groups = [[group] if isinstance(group, str) else list(group) for group in ranking]
    for group in groups:
        if not group:
            break  # check_ranking names the empty group
        for label in group:
            if label not in by_label:
                raise InvalidVote(f"unknown label {quoted(label)} in the ranking: use {', '.join(battle.labels)}")
    placed = {label for group in groups for label in group}
    unranked = [label for label in battle.labels if label not in placed] if partial else []
    try:
        check_ranking(with_unranked(groups, unranked), battle.labels)
    except RankingError as exc:
        hint = "" if partial else " (or send \"partial\": true to rank only the best)"
        raise InvalidVote(f"{exc}{hint}") from exc
    return [[by_label[label] for label in group] for group in groups], [by_label[label] for label in unranked]


def checked_feedback(feedback) -> str | None:
    """The voter's optional reason, trimmed (empty: none); InvalidVote if it is not short text."""
    if feedback is None:
        return None
    if not isinstance(feedback, str):
        raise InvalidVote("'feedback' must be text")
    feedback = feedback.strip()
    if len(feedback) > MAX_FEEDBACK_CHARS:
        raise InvalidVote(f"the feedback has {len(feedback)} characters; the limit is {MAX_FEEDBACK_CHARS}")
    return feedback or None


def vote_event(battle: Battle, voter_id: str, outcome: str | None, ranking: list[list[str]] | None,
               feedback: str | None = None, unranked: list[str] | None = None) -> VoteEvent:
    """The event for a vote already checked by checked_choice (a ranking and its unranked models by name)."""
    return VoteEvent(
        vote_id=uuid.uuid4().hex,
        battle_id=battle.battle_id,
        mode=battle.mode,
        models=battle.models,
        outcome=outcome,
        ranking=ranking,
        unranked=list(unranked or []),
        voter_id=voter_id,
        served_at=battle.served_at or battle.created_at,
        voted_at=time.time(),
        selection_probability=battle.selection_probability,
        style=[style_features([turn.answers[pos] for turn in battle.turns]) for pos in range(len(battle.models))],
        categories=prompt_categories([turn.prompt for turn in battle.turns]),
        language=prompt_language([turn.prompt for turn in battle.turns]),
        turns=max(1, len(battle.turns)),
        identity_flags=list(battle.identity_flags),
        feedback=feedback,
        regenerations=list(battle.regenerations),  # empty unless an answer was regenerated
        truncated=truncated_answers(battle),
    )


def truncated_answers(battle: Battle) -> list[bool]:
    """Per position, was any of its answers cut by a limit (arena.models.answer_checks); empty if none was."""
    truncated = [any(turn.truncated and turn.truncated[pos] for turn in battle.turns)
                 for pos in range(len(battle.models))]
    return truncated if any(truncated) else []


def vote_text(battle: Battle) -> VoteText:
    """The battle's conversation as the voter saw it (kept only when the operator releases text)."""
    return VoteText(prompts=[turn.prompt for turn in battle.turns],
                    answers=[[turn.answers[pos] for turn in battle.turns] for pos in range(len(battle.models))])


def battle_result(receipt: VoteReceipt) -> dict:
    """The revealed names, keyed by side, as the API returns them."""
    return {f"model_{label.lower()}": name for label, name in zip(position_labels(len(receipt.models)), receipt.models)}
