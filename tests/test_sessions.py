"""Sessions are the server's, never the client's choice: a made-up ``X-Arena-Session`` (or cookie)
is not adopted, and a battle started with one cannot be voted on by another client sending it; the
page's battles belong to the session in its signed cookie, not to Gradio's session hash."""

from __future__ import annotations

import json

import gradio as gr
import httpx
import pytest
import redis.asyncio as aioredis

from arena.battles.engine import BattleService
from arena.battles.store import BattleStore
from arena.errors import WrongSession
from arena.keys import api_session_key
from arena.matchmaker import build_matchmaker
from arena.models.demo_models import demo_model_specs
from arena.models.demo_server import DemoServer
from arena.trust.identity import VoterIdentity, is_api_session
from arena.web.battle_view import BattleView
from arena.web.page_session import PAGE_COOKIE
from tests.helpers import arena_settings

FORGED = "0" * 32


@pytest.fixture
def stack(redis_url, tmp_path):
    from arena.cli.serve import ArenaStack  # loads Gradio: only once a stack starts

    with ArenaStack(arena_settings(redis_url, tmp_path / "data", battle_ttl=600)) as running:
        yield running


def create(http: httpx.Client, **headers: str) -> httpx.Response:
    response = http.post("/api/battles", json={"prompt": "Name a colour."}, headers=headers)
    assert response.status_code == 200, response.text
    return response


def vote(http: httpx.Client, battle: dict, session: str | None) -> httpx.Response:
    headers = {"X-Arena-Session": session} if session is not None else {}
    return http.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "tie"}, headers=headers)


def test_a_made_up_api_session_is_not_adopted(stack, redis_client):
    with httpx.Client(base_url=stack.url, timeout=60) as attacker, httpx.Client(base_url=stack.url,
                                                                                timeout=60) as other:
        by_header = create(attacker, **{"X-Arena-Session": FORGED})
        other.cookies.set("arena_session", FORGED)
        by_cookie = create(other)
        malformed = create(attacker, **{"X-Arena-Session": "not hex at all"})
        issued = [response.json()["session"] for response in (by_header, by_cookie, malformed)]
        # the forged id matches none of the battles: from another client, or even from the one that sent it
        forged_votes = [vote(other, by_header.json(), FORGED).status_code,
                        vote(attacker, by_cookie.json(), FORGED).status_code]
        own_votes = [vote(attacker, by_header.json(), issued[0]).status_code,
                     vote(other, by_cookie.json(), None).status_code]  # its cookie now holds the issued one
    print(f"\nissued {issued}; votes with the forged id {forged_votes}, with the issued one {own_votes}")
    assert FORGED not in issued and len(set(issued)) == 3 and all(is_api_session(s) for s in issued)
    assert by_header.cookies["arena_session"] == issued[0]
    assert forged_votes == [403, 403]
    assert own_votes == [200, 200]
    assert not redis_client.exists(api_session_key("arena", FORGED))
    assert 590 <= redis_client.ttl(api_session_key("arena", issued[0])) <= 600  # --battle-ttl


def test_a_client_that_sends_back_its_session_keeps_it(stack, redis_client):
    with httpx.Client(base_url=stack.url, timeout=60) as http:
        first = create(http).json()
        second = create(http, **{"X-Arena-Session": first["session"]}).json()
        third = create(http).json()  # the cookie alone, as a browser-like client sends it
        statuses = [vote(http, battle, first["session"]).status_code for battle in (first, second, third)]
    assert first["session"] == second["session"] == third["session"]
    assert statuses == [200, 200, 200]


def test_the_page_cookie_is_issued_by_the_server(stack):
    sessions = stack.app.state.arena.page_sessions
    with httpx.Client(base_url=stack.url, timeout=60) as http:
        fresh = http.get("/")
        issued = fresh.cookies[PAGE_COOKIE]
        kept = http.get("/")  # the client's jar sends it back
        forged = {name: httpx.get(f"{stack.url}/", cookies={PAGE_COOKIE: value}).cookies.get(PAGE_COOKIE)
                  for name, value in {"zeros": FORGED, "zeros signed by nobody": f"{FORGED}.{FORGED}",
                                      "a stranger's id, re-signed": issued.split(".")[0] + "." + FORGED}.items()}
        api = http.get("/api/models")
    assert sessions.verified(issued) is not None
    assert "httponly" in fresh.headers["set-cookie"].lower() and "samesite=lax" in fresh.headers["set-cookie"].lower()
    assert PAGE_COOKIE not in kept.cookies  # kept: no new one
    assert all(value is not None and sessions.verified(value) is not None for value in forged.values()), forged
    assert not {value.split(".")[0] for value in forged.values()} & {FORGED, issued.split(".")[0]}
    assert "set-cookie" not in api.headers


def page_request(cookie: str) -> gr.Request:
    # what Gradio hands a page event: the browser's session hash (here the same made-up one for both)
    return gr.Request(session_hash=FORGED, cookies={PAGE_COOKIE: cookie}, headers={}, client={"host": "127.0.0.1"})


async def test_a_page_battle_belongs_to_the_cookie_not_to_the_session_hash(stack, redis_url):
    with httpx.Client(base_url=stack.url, timeout=60) as starter, httpx.Client(base_url=stack.url, timeout=60) as other:
        cookies = [client.get("/").cookies[PAGE_COOKIE] for client in (starter, other)]
    client = aioredis.Redis.from_url(redis_url)
    with DemoServer(token_delay=0.0) as demo:
        from arena.models.endpoints import EndpointPool

        async with EndpointPool(demo_model_specs(demo.url)) as pool:
            battles = BattleService(BattleStore(client), pool, build_matchmaker("uniform"))
            with gr.Blocks():
                view = BattleView(battles, VoterIdentity(b"test-secret-0123456789"), k=2)
                view.render()
            state = None
            async for state, *_ in view.on_send(page_request(cookies[0]), "Name a colour.", None, [], []):
                pass
            assert state is not None and state["id"]
            refused = await view._cast(state, page_request(cookies[1]), "A is better", outcome="model_a")
            with pytest.raises(WrongSession):
                await battles.vote(state["id"], "ui:" + FORGED, "voter", outcome="model_a")
            accepted = await view._cast(state, page_request(cookies[0]), "A is better", outcome="model_a")
    await client.aclose()
    print(f"\nsame session hash, another cookie: {refused[1]!r}; the starter: {accepted[0]}")
    assert "another session" in refused[1] and refused[0] == state
    assert accepted[0]["voted"] is True


def test_a_browser_battle_is_stored_under_its_cookie_session(stack, browser, redis_client):
    """In a real Chromium: the page's first response sets the cookie (HttpOnly: the page's scripts
    cannot read it), and the battle in Redis belongs to ``ui:`` + its id, not to the session hash."""
    from playwright.sync_api import expect

    from arena.keys import battle_key
    from tests.browser_support import BROWSER_WAIT_MS

    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.url, wait_until="domcontentloaded")
    page.locator("#prompt textarea").fill("Name a colour.")
    page.keyboard.press("Enter")
    expect(page.locator("#vote-model_a")).to_be_enabled(timeout=BROWSER_WAIT_MS)
    cookie = next(c for c in context.cookies() if c["name"] == PAGE_COOKIE)
    visible_to_scripts = page.evaluate("() => document.cookie")
    stored = [json.loads(redis_client.hget(key, "battle"))["session_id"]
              for key in redis_client.keys(battle_key("arena", "*"))]
    context.close()
    assert cookie["httpOnly"] and PAGE_COOKIE not in visible_to_scripts
    assert stack.app.state.arena.page_sessions.verified(cookie["value"]) is not None
    assert stored == ["ui:" + cookie["value"].split(".")[0]]
