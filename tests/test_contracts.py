"""The shared contracts and the small pure helpers of the live side."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from arena.battles.style import prompt_categories, style_features
from arena.trust.identity import VoterIdentity
from arena.web.ranking_control import complete, place, ranking_text, undo
from leaderboard.data.events import StyleFeatures, UnknownOutcomeError, VoteEvent, check_outcome


def event(**overrides) -> dict:
    values = dict(vote_id="v" * 32, battle_id="b" * 32, mode="anonymous", models=["x", "y"], outcome="model_a",
                  voter_id="v_1", served_at=1.0, voted_at=2.0, selection_probability=0.5,
                  style=[StyleFeatures(tokens=1, headers=0, list_items=0, bold=0)] * 2)
    values.update(overrides)
    return values


def test_vote_event_round_trips_through_json():
    original = VoteEvent(**event())
    assert VoteEvent.model_validate_json(original.model_dump_json()) == original


@pytest.mark.parametrize("overrides, message", [
    ({"outcome": "A"}, "unknown outcome 'A'"),
    ({"models": ["x", "x"]}, "distinct"),
    ({"selection_probability": 0.0}, "greater than 0"),
    ({"mode": "kwise"}, "ranking"),
    ({"ranking": [["x"], ["y"]]}, "no 'ranking'"),
    ({"style": []}, "style has 0 entries"),
    ({"extra_field": 1}, "Extra inputs"),
])
def test_vote_event_rejects_inconsistent_votes(overrides, message):
    with pytest.raises(ValidationError, match=message):
        VoteEvent(**event(**overrides))


def test_kwise_event_needs_every_model_ranked_once():
    style = [StyleFeatures(tokens=1, headers=0, list_items=0, bold=0)] * 3
    VoteEvent(**event(mode="kwise", models=["x", "y", "z"], outcome=None, ranking=[["y"], ["x", "z"]], style=style))
    with pytest.raises(ValidationError, match="exactly once"):
        VoteEvent(**event(mode="kwise", models=["x", "y", "z"], outcome=None, ranking=[["y"], ["x"]], style=style))


def test_check_outcome_names_the_allowed_strings():
    assert check_outcome("tie (bothbad)") == "tie (bothbad)"
    with pytest.raises(UnknownOutcomeError, match="'model_a', 'model_b', 'tie', 'tie \\(bothbad\\)'"):
        check_outcome("bothbad")


def test_style_features_count_markdown_outside_code():
    answer = (
        "# Title\n\nSome **bold** and __also bold__ text.\n\n## Steps\n"
        "1. first\n2. second\n- bullet\n* star\n\n"
        "```python\n# not a header\nx = 2 * 3 * 4\n- not a list\n```\n"
    )
    features = style_features([answer, "### Third header"])
    assert (features.headers, features.list_items, features.bold) == (3, 4, 2)
    assert features.tokens > 30


def test_prompt_categories():
    assert prompt_categories(["hello"]) == []
    assert "code" in prompt_categories(["fix this: def f(x): return x"])
    assert "math" in prompt_categories(["solve 2 + 2 = ?"])
    assert prompt_categories(["a", "b"]) == ["multi_turn"]
    assert "long_prompt" in prompt_categories(["word " * 600])


def test_click_ranking_groups_ties_best_first():
    # the click-to-rank control replaced the per-answer place dropdowns: B, then A, Tie, D, then C
    ranking = []
    for label, tie in (("B", False), ("A", False), ("D", True), ("C", False)):
        ranking = place(ranking, label, tie)
    assert ranking == [["B"], ["A", "D"], ["C"]] and complete(ranking, ["A", "B", "C", "D"])
    assert place(place([], "A"), "B", tie=True) == [["A", "B"]]
    assert place(ranking, "A") == ranking  # an answer is placed once
    assert undo(ranking) == [["B"], ["A", "D"]] and undo(undo(ranking)) == [["B"], ["A"]] and undo([]) == []
    assert not complete([["A"], ["B"]], ["A", "B", "C"])
    assert "still to place: C" in ranking_text([["A"], ["B"]], ["A", "B", "C"])


def test_voter_ids_are_stable_pseudonyms():
    identity = VoterIdentity(b"s" * 32)
    assert identity.voter_id("10.1.2.3") == identity.voter_id("10.1.2.3")
    assert identity.voter_id("10.1.2.3") != identity.voter_id("10.1.2.4")
    assert "10.1.2.3" not in identity.voter_id("10.1.2.3")
    assert VoterIdentity(b"t" * 32).voter_id("10.1.2.3") != identity.voter_id("10.1.2.3")
    assert "s" * 8 not in repr(identity)


def test_reveal_lines_show_organisation_and_description_as_text():
    from arena.models.config import ModelSpec
    from arena.web.reveal import reveal_lines

    specs = {
        "x": ModelSpec(name="x", base_url="http://127.0.0.1:1/v1", model_id="x", organisation="Acme *Labs*",
                       description="Fast.\nSecond line [link](http://e.example)"),
        "y": ModelSpec(name="y", base_url="http://127.0.0.1:1/v1", model_id="y"),
    }
    text = reveal_lines(["A", "B"], ["x", "y"], specs.__getitem__)
    line_a, line_b = text.splitlines()
    assert line_a.startswith("- **Model A:** `x` · Acme \\*Labs\\* — Fast\\. Second line \\[link\\]")
    assert line_b == "- **Model B:** `y`"
