"""The battle page's controls as a new voter meets them, in a real headless Chromium: named picks
locked while a battle runs, the reason box emptied between battles, a vote key pressed just after
a follow-up, the K-way ranking line and its implied last place, model names on named rank buttons
(never anonymous ones), the prompt box in view on a phone, and Regenerate on the demo models.
Screenshots go to /tmp/voters/."""

from __future__ import annotations

import pytest

from tests.browser_support import BROWSER_WAIT_MS, battle_states, rank_by_clicks, shot, vote_events
from tests.helpers import arena_settings

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = pytest.mark.browser


@pytest.fixture
def slow_stack(redis_url, tmp_path):
    """Answers that take a few seconds to stream (0.05 s a token)."""
    from arena.cli.serve import ArenaStack

    with ArenaStack(arena_settings(redis_url, tmp_path, demo_token_delay=0.05)) as stack:
        yield stack


def pick(page, prefix: str, side: str, model: str) -> None:
    page.locator(f"#{prefix}pick-{side} input").click()
    page.locator(f"#{prefix}pick-{side}").get_by_role("option", name=model, exact=True).click()


def test_named_picks_are_locked_while_a_battle_runs_and_the_next_battle_uses_the_new_ones(arena_stack, browser,
                                                                                          redis_client):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="👥 Side by side (named)").click()
    pick(page, "named-", "a", "demo-verbose")
    pick(page, "named-", "b", "demo-terse")
    page.locator("#named-prompt textarea").fill("How do I boil an egg?")
    page.locator("#named-send").click()
    expect(page.locator("#named-vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    # mid-battle the dropdowns cannot change: a follow-up is answered by the models they show
    for side in "ab":
        expect(page.locator(f"#named-pick-{side} input")).to_be_disabled()
    shot(page, "named-picks-locked.png")
    page.locator("#named-feedback textarea").fill("A gave the timings.")
    page.locator("#named-vote-model_a").click()
    expect(page.locator("#named-reveal")).to_contain_text("Model B: demo-terse", timeout=BROWSER_WAIT_MS)
    for side in "ab":
        expect(page.locator(f"#named-pick-{side} input")).to_be_enabled()
    expect(page.locator("#named-feedback textarea")).to_have_value("")  # the reason went with the vote

    pick(page, "named-", "b", "demo-echo")
    page.locator("#named-prompt textarea").fill("And a poached one?")
    page.locator("#named-send").click()
    expect(page.locator("#named-vote-model_b")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    page.locator("#named-vote-model_b").click()
    expect(page.locator("#named-reveal")).to_contain_text("Model B: demo-echo", timeout=BROWSER_WAIT_MS)
    first, second = vote_events(redis_client)
    assert first.models == ["demo-verbose", "demo-terse"] and first.feedback == "A gave the timings."
    assert second.models == ["demo-verbose", "demo-echo"]  # a new battle, with the picks shown
    assert not second.feedback  # not the last battle's reason
    assert sorted(battle_states(redis_client)) == ["voted", "voted"]


def test_the_reason_box_is_emptied_by_the_vote_and_by_a_new_battle(arena_stack, browser, redis_client):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    feedback = page.locator("#feedback textarea")
    page.locator("#prompt textarea").fill("Name a prime number.")
    page.locator("#send").click()
    expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    feedback.fill("A named two primes.")
    page.locator("#vote-model_a").click()
    expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    expect(feedback).to_have_value("")
    # typed after the vote, before the next battle: that battle starts with an empty box
    feedback.fill("left over")
    page.locator("#prompt textarea").fill("Name a colour.")
    page.locator("#send").click()
    expect(page.locator("#vote-tie")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    expect(feedback).to_have_value("")
    page.locator("#vote-tie").click()
    expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    first, second = vote_events(redis_client)
    assert first.feedback == "A named two primes." and not second.feedback


def test_a_vote_key_pressed_just_after_a_follow_up_is_not_lost_silently(slow_stack, browser, redis_client):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(slow_stack.url, wait_until="domcontentloaded")
    prompt = page.locator("#prompt textarea")
    prompt.fill("Name a prime number.")
    page.locator("#send").click()
    expect(page.locator("#vote-tie")).to_be_enabled(timeout=BROWSER_WAIT_MS)

    prompt.click()
    page.keyboard.type("And an even one?")
    page.keyboard.press("Enter")  # the follow-up...
    prompt.evaluate("element => element.blur()")
    page.keyboard.press("3")  # ...and a tie a moment later, while its answers are still coming
    disabled = page.locator("#vote-tie").is_disabled()
    told = "still answering" in page.locator("#reveal").inner_text()
    shot(page, "vote-key-after-follow-up.png")
    assert disabled or told, "the key did nothing, and nothing said why"
    expect(page.locator("#status")).to_contain_text("Answering", timeout=BROWSER_WAIT_MS)
    assert vote_events(redis_client) == []  # nothing was recorded for the turn being answered

    expect(page.locator("#vote-tie")).to_be_enabled(timeout=BROWSER_WAIT_MS)  # the answers are in
    assert "even" in page.locator("#chat-a").inner_text()
    page.keyboard.press("3")
    expect(page.locator("#reveal")).to_contain_text("You called it a tie", timeout=BROWSER_WAIT_MS)
    [event] = vote_events(redis_client)
    assert event.outcome == "tie"


def rank(page, prefix: str, *controls: str) -> None:
    rank_by_clicks(page, prefix, controls)


def test_kway_ranking_line_after_the_vote_and_the_implied_last_place(arena_stack, browser, redis_client):
    names = arena_stack.endpoints.names
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🔢 4-way battle").click(timeout=BROWSER_WAIT_MS)
    page.locator("#kway-prompt textarea").fill("Which fruit is best in winter?")
    page.locator("#kway-send").click()
    expect(page.locator("#kway-rank-d")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    # anonymous: the rank buttons carry the labels, never a model's name
    for label in "ABCD":
        button_text = page.locator(f"#kway-rank-{label.lower()}").inner_text()
        assert button_text.strip() == f"Model {label}"
        assert not any(name in button_text for name in names)
    submit, ranking = page.locator("#kway-submit-ranking"), page.locator("#kway-ranking")
    rank(page, "kway-", "b", "a")
    expect(submit).to_be_disabled()  # two left: the order of C and D is the voter's to say
    rank(page, "kway-", "c", "tie")
    expect(ranking).to_contain_text("still to place: D; Submit ranking now puts it level with the last",
                                    timeout=BROWSER_WAIT_MS)
    expect(submit).to_be_enabled()  # one left: its place is implied
    submit.click()
    expect(page.locator("#kway-reveal")).to_contain_text("Your ranking: B > A > C = D", timeout=BROWSER_WAIT_MS)
    expect(ranking).to_have_text("Submitted: B > A > C = D.")
    shot(page, "kway-implied-last.png")
    [event] = vote_events(redis_client)
    by_label = dict(zip("ABCD", event.models))
    assert event.ranking == [[by_label["B"]], [by_label["A"]], [by_label["C"], by_label["D"]]]

    # Best only: the line says what was sent, not a ranking still to be finished
    page.locator("#kway-new-round").click()
    expect(ranking).to_have_text("Click the answers from best to worst.", timeout=BROWSER_WAIT_MS)
    page.locator("#kway-prompt textarea").fill("Which vegetable is best in winter?")
    page.locator("#kway-send").click()
    expect(page.locator("#kway-rank-d")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    rank(page, "kway-", "b")
    page.locator("#kway-submit-best").click()
    expect(page.locator("#kway-reveal")).to_contain_text("(not ranked)", timeout=BROWSER_WAIT_MS)
    expect(ranking).to_have_text("Submitted: B > … (A, C, D not ranked).")
    assert "still to place" not in ranking.inner_text()
    shot(page, "kway-best-only-line.png")


def test_named_rank_buttons_show_the_picked_models(six_model_stack, browser, redis_client):
    chosen = ["extra-verbose", "demo-terse", "demo-steps", "demo-echo"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(six_model_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="👥 Side by side (named)").click(timeout=BROWSER_WAIT_MS)
    page.get_by_role("tab", name="4 models").click(timeout=BROWSER_WAIT_MS)
    expect(page.locator("#named4-rank-a")).to_have_text("Model A")  # no battle yet
    for side, model in zip("abcd", chosen):
        pick(page, "named4-", side, model)
    page.locator("#named4-prompt textarea").fill("Name a good book.")
    page.locator("#named4-send").click()
    expect(page.locator("#named4-rank-d")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    for label, model in zip("abcd", chosen):
        expect(page.locator(f"#named4-rank-{label}")).to_have_text(f"{label.upper()} · {model}")
    shot(page, "named4-rank-buttons.png")
    rank(page, "named4-", "b", "a", "d")
    page.locator("#named4-submit-ranking").click()
    expect(page.locator("#named4-reveal")).to_contain_text("Model A: extra-verbose", timeout=BROWSER_WAIT_MS)
    [event] = vote_events(redis_client)
    assert event.ranking == [["demo-terse"], ["extra-verbose"], ["demo-echo"], ["demo-steps"]]
    page.locator("#named4-new-round").click()
    expect(page.locator("#named4-rank-a")).to_have_text("Model A", timeout=BROWSER_WAIT_MS)


def test_the_prompt_box_is_in_view_on_a_phone(arena_stack, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    prompt = page.locator("#prompt textarea")
    expect(prompt).to_be_visible(timeout=BROWSER_WAIT_MS)
    expect(page.locator("#shortcuts")).to_be_hidden()  # no keyboard shortcuts on a phone
    shot(page, "phone-first-load.png")
    box = prompt.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844, box
    assert page.evaluate("() => window.scrollY") == 0
    # once answered, the answers take a fair share of the screen each, not a sliver
    prompt.fill("How do tides work?")
    page.locator("#send").click()
    expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    heights = [page.locator(side).bounding_box()["height"] for side in ("#chat-a", "#chat-b")]
    assert all(200 <= height <= 844 / 2 for height in heights), heights
    shot(page, "phone-answered.png")


def test_regenerate_on_the_demo_models_shows_a_new_answer_and_what_is_left(arena_stack, browser, redis_client):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    regenerate_a = page.locator("#regen-a")
    expect(regenerate_a).to_have_text("🔄 Regenerate A (2 left)", timeout=BROWSER_WAIT_MS)
    page.locator("#prompt textarea").fill("How do tides work?")
    page.locator("#send").click()
    expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    chat_a = page.locator("#chat-a")
    seen = [chat_a.inner_text()]
    for left in ("1 left", "none left"):
        regenerate_a.click()
        expect(regenerate_a).to_have_text(f"🔄 Regenerate A ({left})", timeout=BROWSER_WAIT_MS)
        expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
        seen.append(chat_a.inner_text())
    assert len(set(seen)) == 3, "a regenerated demo answer looks like the one before it"
    expect(regenerate_a).to_be_disabled()
    expect(page.locator("#regen-b")).to_have_text("🔄 Regenerate B (2 left)")
    expect(page.locator("#regen-b")).to_be_enabled()
    shot(page, "regenerate-none-left.png")
    page.locator("#vote-model_b").click()
    expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    [event] = vote_events(redis_client)
    assert event.regenerations == [2, 0]
