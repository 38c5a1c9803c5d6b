"""leaderboard.data.rankings: outcome -> ranking, ranking -> pairs (both rules), ranking validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from arena.matchmaker.state import ranking_pair_steps
from leaderboard.data.events import MODEL_A, MODEL_B, TIE, TIE_BOTHBAD, StyleFeatures, UnknownOutcomeError, VoteEvent
from leaderboard.data.rankings import (
    RankingError,
    Unranked,
    adjacent_pairs,
    all_pairs,
    check_ranking,
    order_to_ranking,
    outcome_to_ranking,
    split_unranked,
    with_unranked,
)
from leaderboard.models.elo import OnlineElo

# three groups, the middle one a tie
TIED_MIDDLE = [["a"], ["b", "c"], ["d"]]


def test_all_pairs_of_a_three_group_ranking_with_a_tie():
    assert all_pairs(TIED_MIDDLE) == [
        ("a", "b", MODEL_A), ("a", "c", MODEL_A), ("a", "d", MODEL_A),
        ("b", "c", TIE), ("b", "d", MODEL_A),
        ("c", "d", MODEL_A),
    ]
    assert all_pairs([["a", "b"], ["c"], ["d"]]) == [
        ("a", "b", TIE), ("a", "c", MODEL_A), ("a", "d", MODEL_A),
        ("b", "c", MODEL_A), ("b", "d", MODEL_A),
        ("c", "d", MODEL_A),
    ]


def test_adjacent_pairs_of_a_three_group_ranking_with_a_tie():
    # ties first, then each group against the next: a and d are two groups apart, never paired
    assert adjacent_pairs(TIED_MIDDLE) == [
        ("b", "c", TIE),
        ("a", "b", MODEL_A), ("a", "c", MODEL_A),
        ("b", "d", MODEL_A), ("c", "d", MODEL_A),
    ]
    assert adjacent_pairs([["a", "b"], ["c"], ["d", "e"]]) == [
        ("a", "b", TIE), ("d", "e", TIE),
        ("a", "c", MODEL_A), ("b", "c", MODEL_A),
        ("c", "d", MODEL_A), ("c", "e", MODEL_A),
    ]


def test_the_two_rules_on_strict_orders_and_single_groups():
    strict = order_to_ranking([3, 1, 4, 0])
    assert strict == [[3], [1], [4], [0]]
    assert len(all_pairs(strict)) == 6  # K(K-1)/2
    assert adjacent_pairs(strict) == [(3, 1, MODEL_A), (1, 4, MODEL_A), (4, 0, MODEL_A)]  # K-1
    assert set(adjacent_pairs(TIED_MIDDLE)) < set(all_pairs(TIED_MIDDLE))
    # a pairwise vote is the same single pair under both rules
    for two in ([["x"], ["y"]], [["x", "y"]]):
        assert all_pairs(two) == adjacent_pairs(two) and len(all_pairs(two)) == 1
    assert all_pairs([["x", "y", "z"]]) == adjacent_pairs([["x", "y", "z"]]) == [
        ("x", "y", TIE), ("x", "z", TIE), ("y", "z", TIE)]


def test_matchmaker_steps_are_adjacent_pairs_with_the_winners_score():
    assert ranking_pair_steps([[3], [0, 2]]) == [(0, 2, 0.5), (3, 0, 1.0), (3, 2, 1.0)]
    assert ranking_pair_steps([[0], [1], [2]]) == [(0, 1, 1.0), (1, 2, 1.0)]


@pytest.mark.parametrize(("outcome", "ranking", "pair"), [
    (MODEL_A, [["x"], ["y"]], ("x", "y", MODEL_A)),
    (MODEL_B, [["y"], ["x"]], ("y", "x", MODEL_A)),
    (TIE, [["x", "y"]], ("x", "y", TIE)),
    (TIE_BOTHBAD, [["x", "y"]], ("x", "y", TIE)),
])
def test_outcome_to_ranking_and_back_to_the_same_vote(outcome, ranking, pair):
    assert outcome_to_ranking(("x", "y"), outcome) == ranking
    assert check_ranking(ranking, ["x", "y"]) is ranking
    assert all_pairs(ranking) == [pair]
    # the pair read back from the ranking is the same vote: Elo moves exactly as for the outcome
    from_outcome, from_pair = OnlineElo(), OnlineElo()
    from_outcome.update("x", "y", outcome)
    from_pair.update(*pair)
    assert from_pair.ratings() == from_outcome.ratings()


def test_outcome_to_ranking_follows_display_order():
    assert outcome_to_ranking(["y", "x"], MODEL_A) == [["y"], ["x"]]
    assert outcome_to_ranking(["y", "x"], MODEL_B) == [["x"], ["y"]]
    assert outcome_to_ranking([1, 0], TIE) == [[1, 0]]


def test_outcome_to_ranking_refuses_bad_input():
    with pytest.raises(UnknownOutcomeError, match="unknown outcome 'bothbad'"):
        outcome_to_ranking(("x", "y"), "bothbad")
    with pytest.raises(RankingError, match="needs two models"):
        outcome_to_ranking(("x", "y", "z"), MODEL_A)


@pytest.mark.parametrize(("ranking", "models", "message"), [
    ([["a"], ["c"]], ["a", "b"], r"must place each of a, b exactly once: 'b' is missing, 'c' is not one of them"),
    ([["a"], ["b"]], ["a", "b", "c"], r"exactly once: 'c' is missing"),
    ([["a", "b"], ["a"]], ["a", "b"], r"exactly once: 'a' is placed 2 times"),
    ([["a"], [], ["b"]], ["a", "b"], r"a ranking group is empty: group 2 of \[\['a'\], \[\], \['b'\]\]; remove it"),
    (["a", "b"], ["a", "b"], r"group 1 of the ranking \['a', 'b'\] is the bare name 'a'"),
    ([["a"]], ["a"], r"at least two models"),
    ([["a"], ["a"]], ["a", "a"], r"'a' is placed 2 times"),
    ([["a"]], ["a", "a"], r"exactly once: the models \['a', 'a'\] repeat"),
])
def test_invalid_rankings_are_errors_naming_the_problem(ranking, models, message):
    with pytest.raises(RankingError, match=message):
        check_ranking(ranking, models)


def test_valid_rankings_pass_unchanged():
    for ranking in (TIED_MIDDLE, [["d", "c", "b", "a"]], order_to_ranking("dcba")):
        assert check_ranking(ranking, ["a", "b", "c", "d"]) is ranking


def test_vote_event_uses_the_ranking_check():
    style = [StyleFeatures(tokens=1, headers=0, list_items=0, bold=0)] * 3
    fields = dict(vote_id="v" * 32, battle_id="b" * 32, mode="kwise", models=["x", "y", "z"], voter_id="v_1",
                  served_at=1.0, voted_at=2.0, selection_probability=0.5, style=style)
    assert VoteEvent(**fields, ranking=[["y"], ["x", "z"]]).ranking == [["y"], ["x", "z"]]
    with pytest.raises(ValidationError, match="a ranking group is empty"):
        VoteEvent(**fields, ranking=[["y"], [], ["x", "z"]])
    with pytest.raises(ValidationError, match="'z' is placed 2 times"):
        VoteEvent(**fields, ranking=[["y", "z"], ["x", "z"]])


# ---- partial rankings ("best only") ------------------------------------------------------------

BEST_ONLY = [["c"], Unranked(["a", "b", "d"])]


def test_rank_breaking_of_a_partial_ranking_never_pairs_two_unranked_models():
    assert all_pairs(BEST_ONLY) == [("c", "a", MODEL_A), ("c", "b", MODEL_A), ("c", "d", MODEL_A)]
    assert adjacent_pairs(BEST_ONLY) == all_pairs(BEST_ONLY)
    top_two = [["c"], ["a", "b"], Unranked(["d", "e"])]
    assert all_pairs(top_two) == [("c", "a", MODEL_A), ("c", "b", MODEL_A), ("c", "d", MODEL_A), ("c", "e", MODEL_A),
                                  ("a", "b", TIE), ("a", "d", MODEL_A), ("a", "e", MODEL_A),
                                  ("b", "d", MODEL_A), ("b", "e", MODEL_A)]
    # adjacent: the unranked follow the last placed group only, and are not tied together
    assert adjacent_pairs(top_two) == [("a", "b", TIE), ("c", "a", MODEL_A), ("c", "b", MODEL_A),
                                       ("a", "d", MODEL_A), ("a", "e", MODEL_A), ("b", "d", MODEL_A),
                                       ("b", "e", MODEL_A)]
    # a complete ranking and the same ranking with its last model "unranked" say the same
    assert all_pairs([["c"], ["a"], Unranked(["b"])]) == all_pairs([["c"], ["a"], ["b"]])


def test_with_and_split_unranked_round_trip():
    assert with_unranked([["c"]], ["a", "b", "d"]) == BEST_ONLY
    assert with_unranked([("c",)], []) == [["c"]]  # nothing left out: a complete ranking
    assert split_unranked(BEST_ONLY) == ([["c"]], ("a", "b", "d"))
    assert split_unranked(TIED_MIDDLE) == (TIED_MIDDLE, ())
    assert check_ranking(BEST_ONLY, ["a", "b", "c", "d"]) is BEST_ONLY


@pytest.mark.parametrize(("ranking", "models", "message"), [
    ([Unranked(["a", "b"])], ["a", "b"], "leaves every model unranked: place at least the best one"),
    ([Unranked(["a"]), ["b"]], ["a", "b"], "the unranked models come last"),
    ([["a"], Unranked(["b"])], ["a", "b", "c"], "'c' is missing"),
    ([["a"], Unranked(["a", "b"])], ["a", "b"], "'a' is placed 2 times"),
])
def test_invalid_partial_rankings_are_errors(ranking, models, message):
    with pytest.raises(RankingError, match=message):
        check_ranking(ranking, models)


def test_vote_event_carries_a_partial_ranking_and_its_unranked_models():
    style = [StyleFeatures(tokens=1, headers=0, list_items=0, bold=0)] * 4
    fields = dict(vote_id="v" * 32, battle_id="b" * 32, mode="kwise", models=["w", "x", "y", "z"], voter_id="v_1",
                  served_at=1.0, voted_at=2.0, selection_probability=0.5, style=style)
    event = VoteEvent(**fields, ranking=[["y"]], unranked=["w", "x", "z"])
    assert event.full_ranking() == [["y"], Unranked(["w", "x", "z"])]
    assert VoteEvent.model_validate_json(event.model_dump_json()) == event
    with pytest.raises(ValidationError, match="'z' is missing"):
        VoteEvent(**fields, ranking=[["y"]], unranked=["w", "x"])  # a model neither placed nor unranked
    with pytest.raises(ValidationError, match="'x' is placed 2 times"):
        VoteEvent(**fields, ranking=[["y"], ["x"]], unranked=["w", "x", "z"])
    with pytest.raises(ValidationError, match="leaves every model unranked"):
        VoteEvent(**fields, ranking=[], unranked=["w", "x", "y", "z"])
    pairwise = dict(fields, mode="anonymous", models=["w", "x"], style=style[:2])
    with pytest.raises(ValidationError, match="pairwise vote carries two models"):
        VoteEvent(**pairwise, outcome="model_a", unranked=["x"])


def test_a_named_battle_of_more_than_two_models_is_voted_with_a_ranking():
    style = [StyleFeatures(tokens=1, headers=0, list_items=0, bold=0)] * 3
    fields = dict(vote_id="v" * 32, battle_id="b" * 32, mode="named", models=["x", "y", "z"], voter_id="v_1",
                  served_at=1.0, voted_at=2.0, selection_probability=1.0, style=style)
    event = VoteEvent(**fields, ranking=[["z"], ["x", "y"]])
    assert event.is_ranking and event.full_ranking() == [["z"], ["x", "y"]]
    with pytest.raises(ValidationError, match="named vote on 3 models carries 'ranking'"):
        VoteEvent(**fields, outcome="model_a")
