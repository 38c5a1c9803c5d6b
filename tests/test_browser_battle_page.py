"""The battle page as a voter uses it, in a real headless Chromium: New round while answers stream,
no per-chat clear button, refusals in view, rejected prompts that cost no battle, keyboard voting,
and what is revealed after the vote. Screenshots go to /tmp/voters/ (outside the repo)."""

from __future__ import annotations

import pytest

from arena.models import availability
from arena.models.demo_models import DEMO_DESCRIPTIONS
from tests.browser_support import BROWSER_WAIT_MS, NetworkRecorder, battle_states, rank_by_clicks, shot, vote_events
from tests.helpers import arena_settings, wait_until
from tests.numbered_models import numbered_stack

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = pytest.mark.browser

def page_wait(page):
    return lambda seconds: page.wait_for_timeout(seconds * 1000)  # keeps the page's events flowing


@pytest.fixture
def slow_stack(redis_url, tmp_path):
    """Answers that take seconds to stream (0.05 s a token), so a voter can act mid-stream."""
    from arena.cli.serve import ArenaStack

    with ArenaStack(arena_settings(redis_url, tmp_path, demo_token_delay=0.05)) as stack:
        yield stack


@pytest.fixture
def limited_stack(redis_url, tmp_path):
    """One new battle a minute per voter."""
    from arena.cli.serve import ArenaStack

    with ArenaStack(arena_settings(redis_url, tmp_path, battles_per_minute=1)) as stack:
        yield stack


def test_new_round_mid_stream_leaves_nothing_of_the_old_battle(slow_stack, browser, redis_client):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(slow_stack.url, wait_until="domcontentloaded")
    page.locator("#prompt textarea").fill("Write a long essay about tides and the moon.")
    page.locator("#send").click()
    # some answer text has arrived, and the answers are still streaming
    expect(page.locator("#chat-a")).to_contain_text("tides", timeout=BROWSER_WAIT_MS)
    assert wait_until(lambda: battle_states(redis_client) == ["streaming"], what="the battle to be streaming")
    page.locator("#new-round").click()

    # The cancelled turn ends on the server as failed: nothing of the old battle is votable, and
    # no more of its answers are produced (the stream is over once the state is written).
    wait_until(lambda: battle_states(redis_client) == ["failed"], pause=page_wait(page),
               what="the old battle to end as failed after New round")
    for side in ("#chat-a", "#chat-b"):
        expect(page.locator(side)).not_to_contain_text("tides", timeout=BROWSER_WAIT_MS)
    for outcome in ("model_a", "model_b", "tie", "tie-bothbad"):
        expect(page.locator(f"#vote-{outcome}")).to_be_disabled()
    expect(page.locator("#send")).to_be_enabled()
    shot(page, "new-round-mid-stream.png")

    # the next prompt starts a new battle that streams and is votable as usual
    page.locator("#prompt textarea").fill("Name a prime number.")
    page.locator("#send").click()
    expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    assert "tides" not in page.locator("#chat-a").inner_text() + page.locator("#chat-b").inner_text()
    assert sorted(battle_states(redis_client)) == ["failed", "ready"]
    page.locator("#vote-tie").click()
    expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    assert [event.outcome for event in vote_events(redis_client)] == ["tie"]


def test_no_chat_has_a_clear_button_and_labels_do_not_cover_answers(arena_stack, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🔢 4-way battle").click()
    page.locator("#kway-prompt textarea").fill("Write a long essay about bees and honey.")
    page.locator("#kway-send").click()
    expect(page.locator("#kway-rank-a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    for label in "abcd":
        chat = page.locator(f"#kway-chat-{label}")
        expect(chat.get_by_role("button", name="Clear")).to_have_count(0)  # hidden: not in the accessibility tree
        # the scrolling message list starts below the "Model X" label, so no text runs under it
        label_box = chat.locator("label[data-testid=block-label]").bounding_box()
        log_box = chat.locator(".bubble-wrap").bounding_box()
        assert log_box["y"] >= label_box["y"] + label_box["height"] - 1, (label, label_box, log_box)
    page.get_by_role("tab", name="⚔️ Battle").click()
    for side in ("#chat-a", "#chat-b"):
        expect(page.locator(side).get_by_role("button", name="Clear")).to_have_count(0)
    shot(page, "kway-4.png")


def test_not_enough_models_is_said_in_view(arena_stack, browser, redis_client):
    for model in ("demo-echo", "demo-terse"):
        availability.pause(redis_client, "arena", model)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🔢 4-way battle").click()
    page.locator("#kway-prompt textarea").fill("How do bees make honey?")
    page.locator("#kway-send").click()
    status = page.locator("#kway-status")
    expect(status).to_contain_text("needs 4 working models but only 3 are available", timeout=BROWSER_WAIT_MS)
    shot(page, "not-enough-models.png")
    expect(status).to_be_in_viewport(ratio=1.0)
    box = status.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 1000, box
    shot(page, "not-enough-models.png")


def test_rejected_prompts_cost_no_battle(limited_stack, browser, redis_client):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(limited_stack.url, wait_until="domcontentloaded")
    status = page.locator("#status")
    for prompt, refusal in (("   \n  ", "the prompt is empty"), ("x" * 8001, "the limit is 8000")):
        page.locator("#prompt textarea").fill(prompt)
        page.locator("#send").click()
        expect(status).to_contain_text(refusal, timeout=BROWSER_WAIT_MS)
        expect(page.locator("#send")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    assert battle_states(redis_client) == []
    # the one battle of this minute is still there to be had...
    page.locator("#prompt textarea").fill("Name a prime number.")
    page.locator("#send").click()
    expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    assert battle_states(redis_client) == ["ready"]
    # ...and the limit is real: a second battle this minute is refused
    page.locator("#vote-model_a").click()
    expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    page.locator("#prompt textarea").fill("Name another prime number.")
    page.locator("#send").click()
    expect(status).to_contain_text("too many new battles", timeout=BROWSER_WAIT_MS)


def test_keyboard_voting_and_the_reveal(arena_stack, browser, redis_client):
    names = arena_stack.endpoints.names
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    recorder = NetworkRecorder(page)
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    prompt = page.locator("#prompt textarea")
    prompt.click()
    page.keyboard.type("First line")
    page.keyboard.press("Shift+Enter")  # a new line, not a send
    page.keyboard.type("Second line about juggling")
    assert prompt.input_value() == "First line\nSecond line about juggling"
    assert battle_states(redis_client) == []
    page.keyboard.press("Enter")  # sends
    expect(page.locator("#vote-model_b")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    assert "juggling" in page.locator("#chat-a").inner_text()

    # a digit typed into the prompt box is text, not a vote
    prompt.click()
    page.keyboard.type("2")
    assert prompt.input_value() == "2"
    assert vote_events(redis_client) == []
    assert [name for name in names if name in recorder.text()] == []

    prompt.evaluate("element => element.blur()")  # focus off the text box
    page.keyboard.press("2")  # B is better
    reveal = page.locator("#reveal")
    expect(reveal).to_contain_text("You preferred Model B", timeout=BROWSER_WAIT_MS)
    events = vote_events(redis_client)
    assert [event.outcome for event in events] == ["model_b"]
    text = reveal.inner_text()
    for label, name in zip("AB", events[0].models):
        assert f"Model {label}: {name}" in text
        assert DEMO_DESCRIPTIONS[name] in text, f"the description of {name} is not shown: {text}"
    expect(page.locator("#vote-model_a")).to_be_disabled()
    page.keyboard.press("1")  # the battle is voted: the shortcut does nothing
    page.wait_for_function("() => true")
    assert len(vote_events(redis_client)) == 1
    shot(page, "keyboard-vote.png")


def test_six_way_battle_ranked_with_clicks(six_model_stack, browser, redis_client):
    names = six_model_stack.endpoints.names
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    recorder = NetworkRecorder(page)
    page.goto(six_model_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🔢 6-way battle").click(timeout=BROWSER_WAIT_MS)
    page.locator("#kway6-prompt textarea").fill("Explain how a rainbow forms.")
    page.locator("#kway6-send").click()
    expect(page.locator("#kway6-rank-f")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    assert [name for name in names if name in recorder.text()] == []
    # three columns on a laptop: A, B, C side by side, D below A
    boxes = {label: page.locator(f"#kway6-chat-{label}").bounding_box() for label in "abcdef"}
    assert boxes["a"]["y"] == boxes["b"]["y"] == boxes["c"]["y"] < boxes["d"]["y"]
    assert boxes["a"]["x"] < boxes["b"]["x"] < boxes["c"]["x"] and boxes["d"]["x"] == boxes["a"]["x"]
    assert boxes["a"]["x"] + boxes["a"]["width"] <= boxes["b"]["x"]  # no overlap
    shot(page, "kway6-answers-laptop.png")

    # E best; C and A tied second; then F; a wrong click undone; then B and D tied last
    # each placed answer's button goes off (placed once), Tie goes off until the next placement
    rank_by_clicks(page, "kway6-", ("e", "c", "tie", "a", "f", "b", "undo", "b", "tie", "d"))
    ranking = page.locator("#kway6-ranking")
    expect(ranking).to_contain_text("E > C = A > F > B = D", timeout=BROWSER_WAIT_MS)
    page.locator("#kway6-submit-ranking").click()
    reveal = page.locator("#kway6-reveal")
    expect(reveal).to_contain_text("Model F:", timeout=BROWSER_WAIT_MS)
    [event] = vote_events(redis_client)
    by_label = dict(zip("ABCDEF", event.models))
    assert event.mode == "kwise" and len(event.models) == 6
    assert event.ranking == [[by_label["E"]], [by_label["C"], by_label["A"]], [by_label["F"]],
                             [by_label["B"], by_label["D"]]]
    if "extra-verbose" in event.models:  # the one model with an organisation in the file
        expect(reveal).to_contain_text("Example Labs")
    shot(page, "kway6-voted-laptop.png")

    # the same battle on a phone's screen: one column (the tab bar itself is the leaderboard work's)
    phone = page
    phone.set_viewport_size({"width": 390, "height": 844})
    boxes = [phone.locator(f"#kway6-chat-{label}").bounding_box() for label in "abcdef"]
    assert all(box["x"] == boxes[0]["x"] for box in boxes), "one column on a phone"
    assert all(upper["y"] + upper["height"] <= lower["y"] for upper, lower in zip(boxes, boxes[1:]))
    assert all(box["x"] + box["width"] <= 390 for box in boxes)
    shot(phone, "kway6-phone.png")


def test_named_battle_with_feedback_is_kept_out_of_the_ratings(arena_stack, browser, redis_client):
    import httpx

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="👥 Side by side (named)").click()
    for side, model in (("a", "demo-verbose"), ("b", "demo-terse")):
        page.locator(f"#named-pick-{side} input").click()
        page.locator(f"#named-pick-{side}").get_by_role("option", name=model, exact=True).click()
    page.locator("#named-prompt textarea").fill("How do I boil an egg?")
    page.locator("#named-send").click()
    expect(page.locator("#named-vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    page.locator("#named-feedback textarea").fill("A gave the timings; B was too short.")
    page.locator("#named-vote-model_a").click()
    reveal = page.locator("#named-reveal")
    expect(reveal).to_contain_text("Model A: demo-verbose", timeout=BROWSER_WAIT_MS)
    expect(reveal).to_contain_text(DEMO_DESCRIPTIONS["demo-terse"])
    shot(page, "named-voted.png")
    [event] = vote_events(redis_client)
    assert (event.mode, event.models, event.outcome) == ("named", ["demo-verbose", "demo-terse"], "model_a")
    assert event.feedback == "A gave the timings; B was too short."

    # an anonymous vote next: the board counts it, not the named one
    page.get_by_role("tab", name="⚔️ Battle").click()
    page.locator("#prompt textarea").fill("Name a prime number.")
    page.locator("#send").click()
    expect(page.locator("#vote-tie")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    page.locator("#vote-tie").click()
    expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    board = wait_until(lambda body: body["total_votes"] >= 1, pause=page_wait(page),
                       observe=lambda: httpx.get(arena_stack.url + "/api/leaderboard", timeout=30).json(),
                       what="the leaderboard to count the anonymous vote")
    assert board["total_votes"] == 1
    assert len(vote_events(redis_client)) == 2


def test_best_only_is_recorded_as_a_partial_ranking(arena_stack, browser, redis_client):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🔢 4-way battle").click(timeout=BROWSER_WAIT_MS)
    page.locator("#kway-prompt textarea").fill("Which fruit is best in winter?")
    page.locator("#kway-send").click()
    expect(page.locator("#kway-rank-d")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    best_only = page.locator("#kway-submit-best")
    expect(best_only).to_be_disabled()  # nothing placed yet
    page.locator("#kway-rank-c").click()
    expect(page.locator("#kway-ranking")).to_contain_text("C > … (still to place: A, B, D)", timeout=BROWSER_WAIT_MS)
    expect(best_only).to_be_enabled()
    page.locator("#kway-feedback textarea").fill("C alone named a winter fruit.")
    best_only.click()
    reveal = page.locator("#kway-reveal")
    expect(reveal).to_contain_text("(not ranked)", timeout=BROWSER_WAIT_MS)
    expect(reveal).to_contain_text("Model D:")
    shot(page, "kway-best-only.png")
    [event] = vote_events(redis_client)
    by_label = dict(zip("ABCD", event.models))
    assert event.mode == "kwise" and event.ranking == [[by_label["C"]]]
    assert event.unranked == [by_label["A"], by_label["B"], by_label["D"]]
    assert event.feedback == "C alone named a winter fruit."
    expect(best_only).to_be_disabled()  # one vote per battle


def test_named_four_way_battle_ranked_with_clicks_is_not_rated(six_model_stack, browser, redis_client):
    chosen = ["extra-verbose", "demo-terse", "demo-steps", "demo-echo"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(six_model_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="👥 Side by side (named)").click(timeout=BROWSER_WAIT_MS)
    page.get_by_role("tab", name="4 models").click(timeout=BROWSER_WAIT_MS)
    for side, model in zip("abcd", chosen):
        page.locator(f"#named4-pick-{side} input").click()
        page.locator(f"#named4-pick-{side}").get_by_role("option", name=model, exact=True).click()
    page.locator("#named4-prompt textarea").fill("Name a good book.")
    page.locator("#named4-send").click()
    expect(page.locator("#named4-rank-d")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    rank_by_clicks(page, "named4-", ("b", "a", "tie", "d", "c"))
    expect(page.locator("#named4-ranking")).to_contain_text("B > A = D > C", timeout=BROWSER_WAIT_MS)
    page.locator("#named4-submit-ranking").click()
    reveal = page.locator("#named4-reveal")
    expect(reveal).to_contain_text("Model A: extra-verbose", timeout=BROWSER_WAIT_MS)
    expect(reveal).to_contain_text("Example Labs")  # the organisation, from the models file
    shot(page, "named-4way-voted.png")
    [event] = vote_events(redis_client)
    assert (event.mode, event.models) == ("named", chosen)
    assert event.ranking == [["demo-terse"], ["extra-verbose", "demo-echo"], ["demo-steps"]]
    assert event.selection_probability == 1.0


@pytest.fixture
def numbered_slow_stack(redis_url, tmp_path):
    """Answers that differ per call (tests.numbered_models), streamed slowly enough (0.03 s a token)
    to see the vote held off while one is regenerated."""
    with numbered_stack(redis_url, tmp_path, token_delay=0.03) as stack:
        yield stack


def test_regenerate_replaces_answer_a_and_the_vote_records_it(numbered_slow_stack, browser, redis_client):
    stack = numbered_slow_stack
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    recorder = NetworkRecorder(page)
    page.goto(stack.url, wait_until="domcontentloaded")
    regenerate_a, regenerate_b = page.locator("#regen-a"), page.locator("#regen-b")
    expect(regenerate_a).to_be_disabled(timeout=BROWSER_WAIT_MS)  # nothing to regenerate yet
    page.locator("#prompt textarea").fill("How do tides work?")
    page.locator("#send").click()
    expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    expect(regenerate_a).to_be_enabled()
    chat_a, chat_b = page.locator("#chat-a"), page.locator("#chat-b")
    before_a, before_b = chat_a.inner_text(), chat_b.inner_text()

    regenerate_a.click()
    for held in ("#vote-model_a", "#vote-model_b", "#vote-tie", "#vote-tie-bothbad", "#regen-a", "#regen-b", "#send"):
        expect(page.locator(held)).to_be_disabled(timeout=BROWSER_WAIT_MS)
    expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)  # the new answer is in
    after_a = chat_a.inner_text()
    assert after_a != before_a and "take" in after_a  # the model's later answer, in place of the first
    assert after_a.count("(answer ") == 1  # replaced, not appended
    assert chat_b.inner_text() == before_b
    expect(regenerate_a).to_be_enabled()  # one of its two regenerations left
    expect(regenerate_b).to_be_enabled()
    shot(page, "regenerated-a.png")

    page.locator("#vote-model_a").click()
    expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    (event,) = vote_events(redis_client)
    assert event.regenerations == [1, 0]
    expect(regenerate_a).to_be_disabled()  # voted: nothing more to regenerate
    expect(regenerate_b).to_be_disabled()
    before_vote = recorder.text().split("Model A:")[0]
    assert [name for name in stack.endpoints.names if name in before_vote] == []
