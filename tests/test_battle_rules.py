"""The rules the battle engine and the API share, checked where they live: one rule for K (the
API's check and the engine's are the same function) and one rule for code in a text (the
``code`` category and the hard-prompt criterion agree)."""

from __future__ import annotations

import pytest

from arena.battles.limits import BattleLimits
from arena.battles.prompt_profile import hard_prompt_criteria
from arena.battles.requests import InvalidBattleRequest, check_size
from arena.battles.style import prompt_categories
from arena.battles.text_measures import has_code


@pytest.mark.parametrize("k", [1, 5, 7, 0, "4", True, 4.0])
def test_the_engine_refuses_a_size_not_offered_as_the_api_does(k):
    limits = BattleLimits(kway_sizes=(3, 4, 6))
    with pytest.raises(InvalidBattleRequest) as by_api:
        check_size(k, (3, 4, 6))
    with pytest.raises(InvalidBattleRequest) as by_engine:
        limits.check_size(k, seats=7)
    assert str(by_engine.value) == str(by_api.value)
    assert "must be one of 2, 3, 4, 6" in str(by_engine.value)


def test_a_size_on_offer_needs_as_many_models_as_it_seats():
    limits = BattleLimits(kway_sizes=(3, 6))
    assert limits.check_size(3, seats=4) == 3 and limits.check_size(2, seats=2) == 2
    with pytest.raises(InvalidBattleRequest, match="a 6-way battle needs 6 models but this arena has 4"):
        limits.check_size(6, seats=4)
    assert check_size(6, (3, 6)) == 6  # the API, which does not count models, leaves that to the engine


@pytest.mark.parametrize(("text", "code"), [
    ("fix this: def f(x): return x", True),
    ("```\nprint(1)\n```", True),
    ("#include <stdio.h>\nint main() {}", True),
    ("SELECT name FROM users", True),
    ("Return policy: what is the function of a receipt?", True),  # "function": written as code writes it
    ("Return the book to the library, please.", False),  # a capitalised word opening a sentence is not code
    ("Please import duties into the spreadsheet", True),
    ("What is the capital of France?", False),
])
def test_one_code_rule_for_the_code_category_and_the_hard_prompt_criterion(text, code):
    assert has_code(text) is code
    assert ("code" in prompt_categories([text])) is code
    # short, unconstrained, one question at most: the technical criterion (code) is the only one it can meet
    assert hard_prompt_criteria([text]) == int(code)
