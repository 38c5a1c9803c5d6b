"""The click-to-rank control of a K-way battle, as pure functions over the ranking being built
(groups of labels, best first; the shape the vote takes). The view keeps the ranking in a
``gr.State`` and calls these on each click: an answer's button places it next (or level with the
last placed, after "Tie"), Undo takes the last placement back. With one answer left its place
is implied: submitting then puts it last (level with the last placed, after "Tie")."""

from __future__ import annotations

from collections.abc import Sequence

Ranking = list[list[str]]


def placed(ranking: Ranking) -> set[str]:
    return {label for group in ranking for label in group}


def place(ranking: Ranking, label: str, tie: bool = False) -> Ranking:
    """``ranking`` with ``label`` placed next: in a new group below the others, or (``tie``) in the
    last group. Placing an answer already placed changes nothing."""
    if label in placed(ranking):
        return ranking
    if tie and ranking:
        return [*ranking[:-1], [*ranking[-1], label]]
    return [*ranking, [label]]


def undo(ranking: Ranking) -> Ranking:
    """``ranking`` without its last placement."""
    if not ranking:
        return ranking
    *earlier, last = ranking
    return [*earlier, last[:-1]] if len(last) > 1 else earlier


def complete(ranking: Ranking, labels: Sequence[str]) -> bool:
    return placed(ranking) == set(labels)


def unplaced(ranking: Ranking, labels: Sequence[str]) -> list[str]:
    """The labels not placed yet, in display order."""
    return [label for label in labels if label not in placed(ranking)]


def implied(ranking: Ranking, labels: Sequence[str], tie: bool = False) -> Ranking:
    """``ranking`` completed when one answer is left (its place is the only one there is: last,
    or level with the last placed if ``tie``); otherwise ``ranking`` as it is."""
    left = unplaced(ranking, labels)
    return place(ranking, left[0], tie) if len(left) == 1 and ranking else ranking


def submittable(ranking: Ranking, labels: Sequence[str]) -> bool:
    """Complete, or complete but for one answer whose place is implied."""
    return complete(implied(ranking, labels), labels)


def order_text(ranking: Ranking) -> str:
    """``**B** > **A** = **D**``: the groups best first, a tie joined by ``=``."""
    return " > ".join(" = ".join(f"**{label}**" for label in group) for group in ranking)


def ranking_text(ranking: Ranking, labels: Sequence[str], tie: bool = False) -> str:
    """The ranking as the voter reads it: ``**B** > **A** = **D** > …``, with the answers not yet
    placed (and, with one left, where submitting now puts it)."""
    if not ranking:
        return "Click the answers from best to worst."
    left = unplaced(ranking, labels)
    text = f"Your ranking: {order_text(ranking)}"
    if len(left) == 1:
        where = "level with the last" if tie else "last"
        return text + f" > … (still to place: {left[0]}; Submit ranking now puts it {where})"
    return text + (f" > … (still to place: {', '.join(left)})" if left else "")


def submitted_text(ranking: Ranking, labels: Sequence[str]) -> str:
    """What was sent, for the line under the buttons once the vote is in (a partial ranking
    names the answers it left unranked)."""
    left = unplaced(ranking, labels)
    rest = f" > … ({', '.join(left)} not ranked)" if left else ""
    return f"Submitted: {order_text(ranking)}{rest}."
