"""End to end in a real headless Chromium (Debian's, driven by Playwright): prompt, two streamed
answers, vote, names revealed, leaderboard tab. Every byte the page receives before the vote is
recorded through the DevTools protocol and searched for model names."""

from __future__ import annotations

import time

import pytest

from arena.models import availability
from tests.browser_support import BROWSER_WAIT_MS, NetworkRecorder
from tests.helpers import arena_settings, wait_until

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser


def test_vote_in_the_browser_reveals_names_and_reaches_the_leaderboard(arena_stack, browser, tmp_path):
    names = arena_stack.endpoints.names
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    recorder = NetworkRecorder(page)
    page.goto(arena_stack.url, wait_until="domcontentloaded")

    page.locator("#prompt textarea").fill("Give me three tips for learning to juggle.")
    page.locator("#send").click()
    vote_a = page.locator("#vote-model_a")
    # Both answers finished: the vote buttons become clickable.
    playwright_sync.expect(vote_a).to_be_enabled(timeout=BROWSER_WAIT_MS)
    # A pane holds the prompt and then the answer, so the answer is read on its own: each demo model
    # builds it from the prompt's first topic words ("three", "tips"; the terse one says no more).
    for side in ("#chat-a", "#chat-b"):
        answer = page.locator(side).locator("[data-testid=bot]")
        playwright_sync.expect(answer).to_have_count(1)
        answer_text = answer.inner_text().lower()
        assert "three" in answer_text and "tips" in answer_text, (side, answer_text)

    seen_before_vote = recorder.text()
    assert "streamResourceContent failed" not in seen_before_vote
    assert "juggle" in seen_before_vote.lower(), "the recorder saw none of the streamed answers"
    leaked = [name for name in names if name in seen_before_vote]
    assert leaked == [], f"model names reached the browser before the vote: {leaked}"

    vote_a.click()
    reveal = page.locator("#reveal")
    playwright_sync.expect(reveal).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    revealed = [name for name in names if name in reveal.inner_text()]
    assert len(revealed) == 2
    # The recorder does see what arrives after the vote, so the check above could have failed.
    wait_until(lambda: all(name in recorder.text() for name in revealed), interval=0.1,
               pause=lambda seconds: page.wait_for_timeout(seconds * 1000),  # keeps the DevTools events coming
               what=f"the recorder to see the revealed names {revealed}")
    assert all(name in recorder.text() for name in revealed)
    playwright_sync.expect(vote_a).to_be_disabled(timeout=BROWSER_WAIT_MS)
    page.screenshot(path=str(tmp_path / "after-vote.png"), full_page=True)

    page.get_by_role("tab", name="🏆 Leaderboard").click()
    table = page.locator("#leaderboard-table")
    text = wait_until(lambda text: all(name in text for name in revealed), observe=table.inner_text, interval=0.25,
                      what=f"the leaderboard table to list {revealed}")
    assert all(name in text for name in revealed), text
    playwright_sync.expect(page.locator("#leaderboard-note")).to_contain_text("1 vote, refitted",
                                                                              timeout=BROWSER_WAIT_MS)
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)


def test_four_way_ranking_in_the_browser(arena_stack, browser, redis_client, tmp_path):
    from leaderboard.data.events import VoteEvent
    from leaderboard.store.redis_keys import vote_stream_key

    names = arena_stack.endpoints.names
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    recorder = NetworkRecorder(page)
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🔢 4-way battle").click()
    page.locator("#kway-prompt textarea").fill("How do bees make honey?")
    page.locator("#kway-send").click()
    submit = page.locator("#kway-submit-ranking")
    # all four answers finished: the ranking control becomes clickable (Submit once all are placed)
    playwright_sync.expect(page.locator("#kway-rank-d")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    playwright_sync.expect(submit).to_be_disabled()
    assert [name for name in names if name in recorder.text()] == []

    # B best, A and D tied second, C last: clicked in that order with the click-to-rank control
    # (which replaced the per-answer place dropdowns), Tie before D.
    for control in ("#kway-rank-b", "#kway-rank-a", "#kway-rank-tie", "#kway-rank-d", "#kway-rank-c"):
        page.locator(control).click()
    playwright_sync.expect(page.locator("#kway-ranking")).to_contain_text("B > A = D > C", timeout=BROWSER_WAIT_MS)
    submit.click()
    reveal = page.locator("#kway-reveal")
    playwright_sync.expect(reveal).to_contain_text("Model D:", timeout=BROWSER_WAIT_MS)
    page.screenshot(path=str(tmp_path / "kway.png"), full_page=True)
    shown = {label: name for label in "ABCD" for name in names if f"Model {label}: {name}" in reveal.inner_text()}
    assert len(shown) == 4

    events = [VoteEvent.model_validate_json(f[b"event"]) for _, f in redis_client.xrange(vote_stream_key("arena"))]
    assert len(events) == 1 and events[0].mode == "kwise"
    assert events[0].ranking == [[shown["B"]], [shown["A"], shown["D"]], [shown["C"]]]


@pytest.fixture
def slow_start_stack(redis_url, tmp_path):
    from arena.cli.serve import ArenaStack

    with ArenaStack(arena_settings(redis_url, tmp_path, demo_first_token_delay=1.0, demo_token_delay=0.002)) as stack:
        yield stack


def test_six_voters_in_their_own_browsers_are_answered_at_once(slow_start_stack, browser):
    """Every answer waits 1 s for its first token: served one after another, six voters would
    finish at least 5 s apart; the page must not serialise them."""
    pages = []
    for _ in range(6):
        page = browser.new_context().new_page()
        page.goto(slow_start_stack.url, wait_until="domcontentloaded")
        page.locator("#prompt textarea").wait_for(timeout=BROWSER_WAIT_MS)
        pages.append(page)
    for index, page in enumerate(pages):
        page.locator("#prompt textarea").fill(f"Voter {index} asks about tides.")
    for page in pages:
        page.locator("#send").click()
    finished = []
    for page in pages:
        playwright_sync.expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
        finished.append(time.monotonic())
    assert finished[-1] - finished[0] < 3.0, f"answers finished {finished[-1] - finished[0]:.1f} s apart"


def test_the_page_counts_only_models_in_rotation(arena_stack, browser, redis_client):
    page = browser.new_page()
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    rotation_note = playwright_sync.expect(page.locator("#rotation-note"))
    rotation_note.to_contain_text("5 models in rotation", timeout=BROWSER_WAIT_MS)
    availability.pause(redis_client, "arena", "demo-echo")  # what `arena matchmaker pause` does
    page.reload(wait_until="domcontentloaded")
    rotation_note.to_contain_text("4 models in rotation", timeout=BROWSER_WAIT_MS)
