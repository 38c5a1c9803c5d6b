"""The API docs work with no internet: in a real Chromium that may reach 127.0.0.1 only, Swagger UI
at /api/docs and ReDoc at /redoc render the API's operations, and no request leaves for another host."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser_support import BROWSER_WAIT_MS

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser


def offline_page(browser):
    """A page whose every request to a host other than 127.0.0.1 is recorded and refused."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    refused: list[str] = []
    requested: list[str] = []

    def only_loopback(route):
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.on("request", lambda request: requested.append(request.url))
    return context, page, refused, requested


def off_host(urls: list[str]) -> list[str]:
    return [url for url in urls if urlsplit(url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(url).hostname != "127.0.0.1"]


def test_swagger_ui_renders_the_operations_offline(arena_stack, browser):
    context, page, refused, requested = offline_page(browser)
    try:
        page.goto(arena_stack.url + "/api/docs", wait_until="domcontentloaded")
        battles = page.locator(".opblock-summary-path", has_text="/api/battles").first
        playwright_sync.expect(battles).to_be_visible(timeout=BROWSER_WAIT_MS)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        for path in ("/api/battles", "/api/battles/{battle_id}/vote", "/api/leaderboard", "/api/votes"):
            assert any(path == text.strip().replace("\u200b", "") for text in paths), (path, paths)
        playwright_sync.expect(page.locator(".info .title")).to_contain_text("Arena")
        # opening an operation shows its parameters, read from /api/openapi.json
        page.locator(".opblock-summary-path", has_text="/api/votes").first.click()
        playwright_sync.expect(page.locator(".opblock-body").first).to_contain_text("format",
                                                                                     timeout=BROWSER_WAIT_MS)
    finally:
        context.close()
    assert refused == [] and off_host(requested) == [], (refused, off_host(requested))
    assert any("/api/docs-assets/swagger-ui-bundle.js" in url for url in requested)


def test_redoc_renders_the_operations_offline(arena_stack, browser):
    context, page, refused, requested = offline_page(browser)
    try:
        page.goto(arena_stack.url + "/redoc", wait_until="domcontentloaded")
        menu = page.locator("[role=menuitem], li[data-item-id]")
        playwright_sync.expect(menu.first).to_be_visible(timeout=BROWSER_WAIT_MS)
        playwright_sync.expect(page.locator("body")).to_contain_text("/api/battles", timeout=BROWSER_WAIT_MS)
        assert "/api/leaderboard" in page.locator("body").inner_text()
        playwright_sync.expect(page.get_by_text("API docs by Redocly")).to_be_visible()  # the page finished rendering
    finally:
        context.close()
    assert refused == [] and off_host(requested) == [], (refused, off_host(requested))
    assert any(url.endswith("/redoc/redoc.js") for url in requested)
