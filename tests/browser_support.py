"""Headless Chromium for the browser tests: the launch flags, where Chromium is, and a recorder of
every byte a page receives (so tests can assert that nothing secret or remote reached it)."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import WAIT_SECONDS

# Playwright counts in milliseconds; its own default (5 s for an expect) is short for a busy machine.
BROWSER_WAIT_MS = int(WAIT_SECONDS * 1000)

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = os.environ.get("ARENA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium not found: ./test.sh installs Debian's chromium (scripts/ensure_chromium.sh)")
    return path


class NetworkRecorder:
    """Collects every response body and streamed chunk the page receives (DevTools Network domain)."""

    def __init__(self, page):
        self.chunks: list[str] = []
        self.session = page.context.new_cdp_session(page)
        self.session.on("Network.responseReceived", self._on_response)
        self.session.on("Network.dataReceived", self._on_data)
        self.session.on("Network.loadingFinished", self._on_finished)
        self.session.on("Network.eventSourceMessageReceived", lambda e: self.chunks.append(e.get("data", "")))
        self.session.on("Network.webSocketFrameReceived",
                        lambda e: self.chunks.append(e["response"].get("payloadData", "")))
        self.session.send("Network.enable", {"maxTotalBufferSize": 100_000_000, "maxResourceBufferSize": 50_000_000})
        self._streamed: set[str] = set()

    def _on_response(self, event):
        if "text/event-stream" in event["response"].get("mimeType", ""):
            request_id = event["requestId"]
            try:
                buffered = self.session.send("Network.streamResourceContent", {"requestId": request_id})
                self.chunks.append(base64.b64decode(buffered.get("bufferedData", "")).decode(errors="replace"))
                self._streamed.add(request_id)
            except Exception as exc:
                if "already finished" in str(exc):
                    return  # a short stream: loadingFinished will fetch its whole body
                self.chunks.append(f"<<streamResourceContent failed: {exc}>>")  # fails the test: nothing was checked

    def _on_data(self, event):
        if event["requestId"] in self._streamed and event.get("data"):
            self.chunks.append(base64.b64decode(event["data"]).decode(errors="replace"))

    def _on_finished(self, event):
        if event["requestId"] in self._streamed:
            return
        try:
            body = self.session.send("Network.getResponseBody", {"requestId": event["requestId"]})
        except Exception:
            return  # redirects, preflights and the like have no body
        text = body.get("body", "")
        self.chunks.append(base64.b64decode(text).decode(errors="replace") if body.get("base64Encoded") else text)

    def text(self) -> str:
        return "\n".join(self.chunks)


class PixelServer:
    """An HTTP server on 127.0.0.1 (its own port) that answers every GET with a 1x1 GIF and
    records each hit: the stand-in for a model host that wants to see who reads its answers."""

    GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")

    def __init__(self):
        import http.server
        import threading

        self.hits: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                recorder.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(recorder.GIF)))
                self.end_headers()
                self.wfile.write(recorder.GIF)

            do_HEAD = do_POST = do_GET

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="pixel-server")

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PixelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def rank_by_clicks(page, prefix: str, controls) -> None:
    """Click a K-way ranking control (answer letters, "tie", "undo") in order, each click waited on
    until the page shows it took effect: each is its own request, and a click sent before the last
    one's reply could read the ranking as it was (no person clicks that fast)."""
    from playwright.sync_api import expect

    placed: list[str] = []
    for control in controls:
        page.locator(f"#{prefix}rank-{control}").click()
        if control == "tie":
            expect(page.locator(f"#{prefix}rank-tie")).to_be_disabled(timeout=BROWSER_WAIT_MS)
        elif control == "undo":
            expect(page.locator(f"#{prefix}rank-{placed.pop()}")).to_be_enabled(timeout=BROWSER_WAIT_MS)
        else:
            placed.append(control)
            expect(page.locator(f"#{prefix}rank-{control}")).to_be_disabled(timeout=BROWSER_WAIT_MS)


SCREENSHOTS = Path("/tmp/voters")


def shot(page, name: str) -> None:
    """A full-page screenshot of the battle page under /tmp/voters/ (outside the repo)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def vote_events(redis_client) -> list:
    """Every vote event in the stream, oldest first."""
    from leaderboard.data.events import VoteEvent
    from leaderboard.store.redis_keys import vote_stream_key

    return [VoteEvent.model_validate_json(fields[b"event"])
            for _, fields in redis_client.xrange(vote_stream_key("arena"))]


def battle_states(redis_client) -> list[str]:
    """The state of every battle in Redis."""
    from arena.keys import battle_key

    return [(redis_client.hget(key, "state") or b"").decode() for key in redis_client.keys(battle_key("arena", "*"))]
