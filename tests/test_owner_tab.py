"""The "My models" tab in a real headless Chromium: sign in once with the token, register a model
(health check shown), see it pending, approved by the operator, then pause it; nothing the browser
receives contains the API key. A refused registration shows the service's own reason (the API's
words), and a second click on "Sign in" with the box empty keeps the owner signed in."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from arena.cli.serve import ArenaStack
from arena.ops.redis_server import free_port
from arena.owners.store import OwnerStore
from tests.browser_support import BROWSER_WAIT_MS, NetworkRecorder
from tests.helpers import arena_settings
from tests.owner_endpoints import OwnerEndpoint

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

KEY = "sk-page-secret-key-77aa11bb"


def in_thread(coroutine_function):
    """Run async code from a test whose thread already runs Playwright's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine_function()).result()


@pytest.fixture
def owner_arena(redis_url, tmp_path):
    """Started before the browser (and stopped after it): the stack's stop runs asyncio code,
    which cannot run while Playwright's loop runs in the same thread."""
    settings = arena_settings(redis_url, tmp_path, run_worker=False, allow_private_endpoints=True)
    with OwnerEndpoint(api_key=KEY) as endpoint, ArenaStack(settings) as stack:
        yield stack, endpoint


def test_an_owner_registers_and_manages_a_model_in_the_page(redis_url, tmp_path, owner_arena, browser):
    import redis.asyncio as aioredis

    async def add_owner() -> str:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await OwnerStore(client, "arena").add_owner("acme")
        finally:
            await client.aclose()

    async def approve() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await OwnerStore(client, "arena").set_state("page-model", "active")
        finally:
            await client.aclose()

    token = in_thread(add_owner)
    stack, endpoint = owner_arena
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    recorder = NetworkRecorder(page)
    page.goto(stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🧑‍🔧 My models").click()
    page.locator("#owner-token input").fill("arena_owner_wrong")
    page.locator("#owner-sign-in").click()
    expect = playwright_sync.expect
    expect(page.locator("#owner-signed-in")).to_contain_text("not valid", timeout=BROWSER_WAIT_MS)
    page.locator("#owner-token input").fill(token)
    page.locator("#owner-sign-in").click()
    expect(page.locator("#owner-signed-in")).to_contain_text("Signed in as acme", timeout=BROWSER_WAIT_MS)
    expect(page.locator("#owner-token input")).to_have_value("")  # kept server-side from now on

    page.get_by_text("Register a model").click()
    page.locator("#owner-name").locator("input, textarea").fill("page-model")
    page.locator("#owner-model-id").locator("input, textarea").fill("acme-7b")
    page.locator("#owner-base-url").locator("input, textarea").fill(endpoint.url)
    page.locator("#owner-api-key input").fill(KEY)
    page.locator("#owner-register").click()
    expect(page.locator("#owner-result")).to_contain_text("Registered page-model", timeout=BROWSER_WAIT_MS)
    expect(page.locator("#owner-result")).to_contain_text("Hello from the owner's model.")
    expect(page.locator("#owner-api-key input")).to_have_value("")
    expect(page.locator("#owner-models")).to_contain_text("pending", timeout=BROWSER_WAIT_MS)

    in_thread(approve)
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#owner-models")).to_contain_text("active", timeout=BROWSER_WAIT_MS)
    page.get_by_text("Manage").click()
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#owner-result")).to_contain_text("page-model updated", timeout=BROWSER_WAIT_MS)
    expect(page.locator("#owner-models")).to_contain_text("paused", timeout=BROWSER_WAIT_MS)
    page.screenshot(path=str(tmp_path / "my-models.png"), full_page=True)

    received = recorder.text()
    assert "page-model" in received  # the recorder saw the tab's traffic...
    assert KEY not in received and KEY not in page.content()  # ...and never the key
    assert token not in received
    assert endpoint.authorizations == [f"Bearer {KEY}"]


def fill_registration(page, name: str, base_url: str) -> None:
    page.locator("#owner-name").locator("input, textarea").fill(name)
    page.locator("#owner-model-id").locator("input, textarea").fill("acme-7b")
    page.locator("#owner-base-url").locator("input, textarea").fill(base_url)
    page.locator("#owner-api-key input").fill(KEY)


def test_a_refused_registration_says_why_and_an_empty_sign_in_keeps_the_view(redis_url, owner_arena, browser):
    import redis.asyncio as aioredis

    async def add_owner() -> str:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await OwnerStore(client, "arena").add_owner("acme", max_models=5)
        finally:
            await client.aclose()

    token = in_thread(add_owner)
    stack, endpoint = owner_arena
    expect = playwright_sync.expect
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🧑‍🔧 My models").click()
    page.locator("#owner-token input").fill(token)
    page.locator("#owner-sign-in").click()
    expect(page.locator("#owner-signed-in")).to_contain_text("Signed in as acme", timeout=BROWSER_WAIT_MS)
    result = page.locator("#owner-result")

    # nothing listens on this port: the health check's own words, not a complaint about numbers
    page.get_by_text("Register a model").click()
    fill_registration(page, "dead-model", f"http://127.0.0.1:{free_port()}/v1")
    page.locator("#owner-register").click()
    expect(result).to_contain_text("health check failed (refused)", timeout=BROWSER_WAIT_MS)
    expect(result).to_contain_text("nothing was saved")
    expect(result).not_to_contain_text("must be a number")

    fill_registration(page, "page-model", endpoint.url)
    page.locator("#owner-register").click()
    expect(result).to_contain_text("Registered page-model", timeout=BROWSER_WAIT_MS)
    fill_registration(page, "page-model", endpoint.url)  # the same name again
    page.locator("#owner-register").click()
    expect(result).to_contain_text("the name 'page-model' is taken by another model", timeout=BROWSER_WAIT_MS)

    page.locator("#owner-max-tokens input").fill("")  # a number box emptied: that, and only that, is about numbers
    page.locator("#owner-register").click()
    expect(result).to_contain_text("max_tokens must be a number", timeout=BROWSER_WAIT_MS)
    expect(page.locator("#owner-models")).to_contain_text("page-model")
    expect(page.locator("#owner-models")).not_to_contain_text("dead-model")

    # signed in, the box emptied: a second "Sign in" asks for the token and keeps the view and the session
    expect(page.locator("#owner-token input")).to_have_value("")
    page.locator("#owner-sign-in").click()
    expect(page.locator("#owner-signed-in")).to_contain_text("Paste your owner token first", timeout=BROWSER_WAIT_MS)
    expect(page.locator("#owner-signed-in")).to_contain_text("signed in as acme")
    expect(page.locator("#owner-models")).to_contain_text("page-model")
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#owner-models")).to_contain_text("pending", timeout=BROWSER_WAIT_MS)
