"""The page never shows a battle id: the handle a script would need to drive the battle elsewhere.
Every byte the page receives, before and after the vote, is recorded in a real Chromium."""

from __future__ import annotations

import pytest

from arena.keys import battle_key
from tests.browser_support import BROWSER_WAIT_MS, NetworkRecorder
from tests.helpers import wait_until

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser


def test_the_page_never_receives_the_battle_id(arena_stack, browser, redis_client):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    recorder = NetworkRecorder(page)
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.locator("#prompt textarea").fill("Name three rivers.")
    page.locator("#send").click()
    vote_a = page.locator("#vote-model_a")
    playwright_sync.expect(vote_a).to_be_enabled(timeout=BROWSER_WAIT_MS)
    battle_ids = [key.decode().rsplit(":", 1)[1] for key in redis_client.scan_iter(match=battle_key("arena", "*"))]
    assert len(battle_ids) == 1
    vote_a.click()
    playwright_sync.expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    wait_until(lambda: "Model A:" in recorder.text(), interval=0.1,
               pause=lambda seconds: page.wait_for_timeout(seconds * 1000),
               what="the recorder to see the reveal (so it did record what arrived)")
    seen = recorder.text()
    assert battle_ids[0] not in seen, "the battle id reached the browser"
