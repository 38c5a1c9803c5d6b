"""A flood of the page's Gradio queue cannot stop it (issue 26, item 1).

5,000 joins (``POST /gradio_api/queue/join``, a new session each, no stream ever opened, no battle)
from one client address, while a voter on another address battles and votes in a real Chromium
through the same queue, during the flood and after it. Before the queue guard, Gradio's queue
stopped for good after about 2,000 such joins (every voter then got ``503 Queue is stopped``) and
5,000 of them grew the web process by 824 MB. The web process runs apart (its RSS is measured from
/proc); both clients name their address through ``X-Forwarded-For`` from a trusted 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections import Counter

import httpx
import pytest

from arena.ops.redis_server import free_port
from tests.browser_support import BROWSER_WAIT_MS
from tests.helpers import PROJECT_ROOT
from tests.serve_support import serve_env, stop, wait_healthy

playwright_sync = pytest.importorskip("playwright.sync_api")

FLOOD_JOINS = 5_000
FLOOD_CEILING = 20_000      # the flood goes on until the voter's first battle is over, never past this
FLOOD_CONNECTIONS = 32
FLOODER = "10.66.0.1"
VOTER = "10.1.0.2"
JOINS_PER_MINUTE = 120
RSS_GROWTH_BOUND_MB = 120   # before: +824 MB for 5,000 joins


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def cheap_event(url: str) -> int:
    """The fn_index of an event that takes no input (the page's load-time refresh): no battle, no prompt."""
    config = httpx.get(f"{url}/config", timeout=30).json()
    return next(dependency["id"] for dependency in config["dependencies"]
                if not dependency["inputs"] and dependency.get("queue") is not False)


class Flooder(threading.Thread):
    """FLOOD_JOINS joins or more (until ``enough`` is set), FLOOD_CONNECTIONS at a time, each a new session."""

    def __init__(self, url: str, fn_index: int):
        super().__init__(name="flooder", daemon=True)
        self.url, self.fn_index = url, fn_index
        self.enough = threading.Event()
        self.statuses: Counter = Counter()
        self.details: Counter = Counter()
        self.sent = 0

    def run(self) -> None:
        asyncio.run(self._flood())

    async def _flood(self) -> None:
        limits = httpx.Limits(max_connections=FLOOD_CONNECTIONS, max_keepalive_connections=FLOOD_CONNECTIONS)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=60,
                                     headers={"X-Forwarded-For": FLOODER}) as http:
            async def one_connection() -> None:
                while self.sent < FLOOD_CEILING and (self.sent < FLOOD_JOINS or not self.enough.is_set()):
                    self.sent += 1
                    response = await http.post("/gradio_api/queue/join", json={
                        "data": [], "fn_index": self.fn_index, "session_hash": uuid.uuid4().hex[:11],
                        "event_data": None, "trigger_id": None})
                    self.statuses[response.status_code] += 1
                    if response.status_code != 200:
                        self.details[response.json().get("detail", "")[:40]] += 1

            await asyncio.gather(*(one_connection() for _ in range(FLOOD_CONNECTIONS)))


def battle_and_vote(browser, url: str) -> None:
    """A voter's whole round in the browser: prompt, two answers, a vote, the names revealed."""
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": VOTER},
                                  viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#prompt textarea").fill("Name three rivers.")
        page.locator("#send").click()
        vote_a = page.locator("#vote-model_a")
        playwright_sync.expect(vote_a).to_be_enabled(timeout=BROWSER_WAIT_MS)
        vote_a.click()
        playwright_sync.expect(page.locator("#reveal")).to_contain_text("Model A:", timeout=BROWSER_WAIT_MS)
    finally:
        context.close()


def test_5000_queue_joins_from_one_address_leave_the_page_working_and_memory_bounded(redis_url, tmp_path, browser):
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    web = subprocess.Popen([sys.executable, "-m", "arena", "serve", "--no-worker", "--redis-url", redis_url,
                            "--data-dir", str(tmp_path / "data"), "--port", str(port), "--trusted-proxies", "127.0.0.1",
                            "--flood-refusals", "0", "--page-joins-per-minute", str(JOINS_PER_MINUTE)],
                           cwd=PROJECT_ROOT, env=serve_env(), stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    flooder = None
    try:
        wait_healthy(url, web)
        fn_index = cheap_event(url)
        battle_and_vote(browser, url)  # warm: the page, the queue, the battle path have all run once
        before = rss_mb(web.pid)

        flooder = Flooder(url, fn_index)
        flooder.start()
        battle_and_vote(browser, url)  # during the flood
        during_sent = flooder.sent
        flooder.enough.set()
        flooder.join(timeout=600)
        assert not flooder.is_alive(), f"the flood did not end ({flooder.sent} joins sent)"
        after_flood = rss_mb(web.pid)
        battle_and_vote(browser, url)  # after it
        # and the queue still takes a join from a third address (not "Queue is stopped")
        fresh = httpx.post(f"{url}/gradio_api/queue/join", headers={"X-Forwarded-For": "10.2.0.3"}, timeout=30,
                           json={"data": [], "fn_index": fn_index, "session_hash": "fresh-voter", "trigger_id": None})
        growth = after_flood - before
        print(f"queue flood: {flooder.sent} joins from one address ({during_sent} when the voter's battle during "
              f"the flood had been voted), statuses {dict(flooder.statuses)}, refusals {dict(flooder.details)}; "
              f"web RSS {before:.0f} MB -> {after_flood:.0f} MB (+{growth:.0f} MB, bound {RSS_GROWTH_BOUND_MB})")
        assert fresh.status_code == 200, fresh.text
        assert flooder.sent >= FLOOD_JOINS and during_sent < flooder.sent
        # one minute's joins at most got in (two, if the flood outlasted a minute); the rest refused with 429
        assert flooder.statuses[200] <= JOINS_PER_MINUTE * 2
        assert set(flooder.statuses) <= {200, 429}, flooder.statuses
        assert growth <= RSS_GROWTH_BOUND_MB
    finally:
        if flooder is not None:
            flooder.enough.set()
        stop(web)
        log.close()
