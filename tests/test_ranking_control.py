"""arena.web.ranking_control: the click-to-rank control's pure functions (placing, undo, the
implied last place, and the lines the voter reads)."""

from __future__ import annotations

from arena.web.ranking_control import (
    complete,
    implied,
    place,
    ranking_text,
    submittable,
    submitted_text,
    undo,
    unplaced,
)

LABELS = ["A", "B", "C", "D"]


def test_place_tie_and_undo():
    ranking = place(place(place([], "B"), "A", tie=True), "C")
    assert ranking == [["B", "A"], ["C"]]
    assert place(ranking, "A") == ranking  # placed once
    assert undo(ranking) == [["B", "A"]] and undo(undo(ranking)) == [["B"]]
    assert unplaced(ranking, LABELS) == ["D"]


def test_one_answer_left_is_implied_last_or_level_with_the_last_after_tie():
    three = [["B"], ["A"], ["C"]]
    assert submittable(three, LABELS) and not complete(three, LABELS)
    assert implied(three, LABELS) == [["B"], ["A"], ["C"], ["D"]]
    assert implied(three, LABELS, tie=True) == [["B"], ["A"], ["C", "D"]]
    # two left: their order is the voter's to say, so nothing is implied
    assert not submittable([["B"], ["A"]], LABELS)
    assert implied([["B"], ["A"]], LABELS, tie=True) == [["B"], ["A"]]
    assert not submittable([], LABELS) and implied([], LABELS) == []
    full = [["A"], ["B", "C", "D"]]
    assert submittable(full, LABELS) and implied(full, LABELS) == full


def test_the_lines_the_voter_reads():
    assert ranking_text([], LABELS) == "Click the answers from best to worst."
    assert ranking_text([["C"]], LABELS) == "Your ranking: **C** > … (still to place: A, B, D)"
    assert ranking_text([["B"], ["A"], ["C"]], LABELS).endswith("(still to place: D; Submit ranking now puts it last)")
    assert ranking_text([["B"], ["A"], ["C"]], LABELS, tie=True).endswith("puts it level with the last)")
    assert ranking_text([["B"], ["A", "C", "D"]], LABELS) == "Your ranking: **B** > **A** = **C** = **D**"
    # after the vote: what was sent, never a ranking still to finish
    assert submitted_text([["B"]], LABELS) == "Submitted: **B** > … (A, C, D not ranked)."
    assert submitted_text([["B"], ["A"], ["C", "D"]], LABELS) == "Submitted: **B** > **A** > **C** = **D**."
