"""In a real Chromium: answers full of remote images and links render, and the page fetches
nothing from anywhere but the arena (a pixel server on another 127.0.0.1 port sees 0 hits)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from arena.models.demo_server import DemoServer
from tests.browser_support import BROWSER_WAIT_MS, PixelServer
from tests.helpers import arena_settings

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser


def remote_content_answer(pixel_origin: str, model: str):
    """A demo model whose every answer tries to load the pixel host in as many ways as markdown allows."""
    def answer(conversation) -> str:
        return "\n".join([
            f"Here is a picture ![tracker]({pixel_origin}/md.png?m={model}) and a chart:",
            f'<img src="{pixel_origin}/html.png?m={model}" alt="x"> <img srcset="{pixel_origin}/srcset.png 2x">',
            f"[![badge]({pixel_origin}/badge.png)]({pixel_origin}/badge-link) see [docs]({pixel_origin}/docs)",
            f"or <{pixel_origin}/autolink> or {pixel_origin}/bare.png directly.",
            f'<div style="background:url({pixel_origin}/css.png)">styled</div>',
            f'<link rel="stylesheet" href="{pixel_origin}/style.css"><script src="{pixel_origin}/x.js"></script>',
            f'<svg><image href="{pixel_origin}/svg.png"/></svg> <video poster="{pixel_origin}/poster.png"></video>',
            "",
            "![ref image][pixel]",
            "",
            f"[pixel]: {pixel_origin}/reference.png",
            "",
            "```html",
            f'<img src="{pixel_origin}/in-code.png">',
            "```",
            f"The answer about {' '.join(conversation.topic_words)} ends here: REMOTE-OK-{model}.",
        ])
    return answer


@pytest.fixture
def remote_content_arena(redis_url, tmp_path):
    from arena.cli.serve import ArenaStack

    with PixelServer() as pixels:
        models = {name: remote_content_answer(pixels.origin, name) for name in ("pixel-one", "pixel-two")}
        with DemoServer(token_delay=0.0, models=models) as demo:
            models_file = tmp_path / "models.yaml"
            models_file.write_text("models:\n" + "".join(
                f"  - {{name: {name}, base_url: '{demo.url}', model_id: {name}}}\n" for name in models))
            settings = arena_settings(redis_url, tmp_path / "data", demo=False, models_file=models_file)
            with ArenaStack(settings) as stack:
                yield stack, pixels


def test_remote_images_and_links_in_answers_are_never_fetched(remote_content_arena, browser, tmp_path):
    stack, pixels = remote_content_arena
    arena_origin = urlsplit(stack.url)
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    response = page.goto(stack.url, wait_until="domcontentloaded")
    assert "img-src 'self' data:" in response.headers["content-security-policy"]

    page.locator("#prompt textarea").fill("Tell me about lighthouses.")
    page.locator("#send").click()
    vote = page.locator("#vote-model_a")
    playwright_sync.expect(vote).to_be_enabled(timeout=BROWSER_WAIT_MS)
    for side in ("#chat-a", "#chat-b"):
        chat = page.locator(side)
        playwright_sync.expect(chat).to_contain_text("REMOTE-OK-pixel-", timeout=BROWSER_WAIT_MS)
        playwright_sync.expect(chat).to_contain_text("image not shown: tracker", timeout=BROWSER_WAIT_MS)
        assert "docs" in chat.inner_text() and pixels.origin + "/docs" in chat.inner_text()  # readable, as text
        assert chat.locator(f"img[src*='127.0.0.1:{pixels.port}']").count() == 0
        assert chat.locator(f"a[href*='127.0.0.1:{pixels.port}']").count() == 0
    page.screenshot(path=str(tmp_path / "remote-content.png"), full_page=True)
    vote.click()
    playwright_sync.expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    # each answer says "REMOTE-OK-<its own name>": the battle is de-anonymised, and the voter is told
    playwright_sync.expect(page.locator("#reveal")).to_contain_text("does not count towards the anonymous leaderboard")

    elsewhere = [url for url in requested if not url.startswith("data:")
                 and (urlsplit(url).hostname, urlsplit(url).port) != (arena_origin.hostname, arena_origin.port)]
    print(f"requests: {len(requested)} to the arena, {len(elsewhere)} elsewhere; pixel server hits: {len(pixels.hits)}")
    assert requested, "the page made no request at all: nothing was checked"
    assert elsewhere == []
    assert pixels.hits == []
    assert violations == [], f"the policy blocked something the page tried to load: {violations}"


def test_every_tab_works_under_the_policy(arena_stack, browser):
    """Gradio's own scripts, styles and fonts load under the policy: no tab needs anything it refuses."""
    page = browser.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(arena_stack.url, wait_until="domcontentloaded")
    page.locator("#prompt textarea").fill("How do tides work?")
    page.locator("#send").click()
    playwright_sync.expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    page.locator("#vote-model_b").click()
    playwright_sync.expect(page.locator("#reveal")).to_contain_text("Model B:", timeout=BROWSER_WAIT_MS)
    page.get_by_role("tab", name="🔢 4-way battle").click()
    playwright_sync.expect(page.locator("#kway-prompt textarea")).to_be_visible(timeout=BROWSER_WAIT_MS)
    page.get_by_role("tab", name="🏆 Leaderboard").click()
    playwright_sync.expect(page.locator("#leaderboard-table")).to_contain_text("demo-", timeout=BROWSER_WAIT_MS)
    origin = urlsplit(arena_stack.url)
    assert [url for url in requested if not url.startswith("data:")
            and (urlsplit(url).hostname, urlsplit(url).port) != (origin.hostname, origin.port)] == []
    assert refused == []
