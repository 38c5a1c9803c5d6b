"""The click-to-rank control of a K-way battle, as pure functions over the ranking being built
(groups of labels, best first; the shape the vote takes). The view keeps the ranking in a
``gr.State`` and calls these on each click: an answer's button places it next (or level with the
last placed, after "Tie"), Undo takes the last placement back."""

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


def ranking_text(ranking: Ranking, labels: Sequence[str]) -> str:
    """The ranking as the voter reads it: ``**B** > **A** = **D** > …``, with the answers not yet placed."""
    if not ranking:
        return "Click the answers from best to worst."
    order = " > ".join(" = ".join(f"**{label}**" for label in group) for group in ranking)
    left = [label for label in labels if label not in placed(ranking)]
    return f"Your ranking: {order}" + (f" > … (still to place: {', '.join(left)})" if left else "")
