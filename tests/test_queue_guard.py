"""The queue guard (arena.web.queue_guard) in front of a real Gradio queue: a small Blocks app with
a slow streaming event and a quick one, served by uvicorn on 127.0.0.1 with the guard counting in
the test's real Redis. Clients name their address through ``X-Forwarded-For`` (127.0.0.1 trusted).

- open event streams per client: the ninth of one address is refused (429) while eight stream, one
  of another address is not, and a place freed is a place taken again;
- the bounded queue: joins from 300 addresses that never open a stream fill it to its size, the
  rest are refused 503 (the queue is not stopped), and once the abandoned sessions are dropped a
  new voter's join is admitted and answered through its stream: recovery without a restart.
"""

from __future__ import annotations

import asyncio
import json
import threading

import gradio as gr
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from arena.web.queue_guard import QueueGuard
from tests.helpers import wait_until, wait_until_async

STREAMS_PER_CLIENT = 8
QUEUE_SIZE = 20
ABANDONED_SECONDS = 1.0
JOIN = "/gradio_api/queue/join"
DATA = "/gradio_api/queue/data"


class GuardedGradio:
    """A Gradio page (fn 0: streams until released; fn 1: answers at once) behind the guard."""

    def __init__(self, redis_url: str):
        self.release = threading.Event()

        async def slow():
            yield "tick"
            await asyncio.to_thread(self.release.wait)  # streams until the test releases it (__exit__ does)
            yield "done"

        with gr.Blocks() as self.page:
            output = gr.Textbox()
            gr.Button("slow").click(slow, None, output)
            gr.Button("quick").click(lambda: "ok", None, output, api_name="quick")
        self.page.queue(default_concurrency_limit=None)
        app = FastAPI()
        self.redis = aioredis.Redis.from_url(redis_url)
        app.add_middleware(QueueGuard, gradio_queue=lambda: self.page._queue, redis_client=self.redis,
                           prefix="arena", joins_per_minute=0, streams_per_client=STREAMS_PER_CLIENT,
                           max_sessions=QUEUE_SIZE, abandoned_seconds=ABANDONED_SECONDS)
        app = gr.mount_gradio_app(app, self.page, path="/")
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    proxy_headers=True, forwarded_allow_ips="127.0.0.1"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="guarded-gradio")

    def __enter__(self) -> GuardedGradio:
        self.thread.start()
        wait_until(lambda: self.server.started, what="the Gradio app to start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.should_exit = True
        self.thread.join(timeout=30)


def join_body(fn_index: int, session: str) -> dict:
    return {"data": [], "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None}


def address(n: int) -> dict:
    return {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}


@pytest.fixture
def guarded(redis_url):
    with GuardedGradio(redis_url) as app:
        yield app


def test_a_client_holds_at_most_eight_event_streams(guarded):
    flooder = address(1)

    async def scenario() -> dict:
        async with httpx.AsyncClient(base_url=guarded.url, timeout=30) as http:
            for n in range(STREAMS_PER_CLIENT + 1):
                joined = await http.post(JOIN, json=join_body(0, f"s{n}"), headers=flooder)
                assert joined.status_code == 200, joined.text
            streams = []
            for n in range(STREAMS_PER_CLIENT):
                stream = await http.send(http.build_request("GET", DATA, params={"session_hash": f"s{n}"},
                                                            headers=flooder), stream=True)
                assert stream.status_code == 200
                streams.append(stream)
            ninth = await http.send(http.build_request("GET", DATA, params={"session_hash": f"s{STREAMS_PER_CLIENT}"},
                                                       headers=flooder), stream=True)
            if ninth.status_code != 200:  # a refusal is a short body; an admitted stream would never end
                await ninth.aread()
            await ninth.aclose()
            # another address is not counted with the flooder
            other_join = await http.post(JOIN, json=join_body(1, "other"), headers=address(2))
            # read as a stream: the answer is an event stream that stays open (heartbeats) until its event ends
            other = await http.send(http.build_request("GET", DATA, params={"session_hash": "other"},
                                                       headers=address(2)), stream=True)
            await other.aclose()
            await streams[0].aclose()  # a place freed...

            async def reopened():
                response = await http.send(http.build_request(
                    "GET", DATA, params={"session_hash": f"s{STREAMS_PER_CLIENT}"}, headers=flooder), stream=True)
                if response.status_code != 200:
                    await response.aclose()
                return response

            again = await wait_until_async(reopened, lambda response: response.status_code == 200,
                                           what="the ninth stream to be let in once one closed")
            guarded.release.set()
            for stream in [*streams[1:], again]:
                await stream.aclose()
            return {"ninth": ninth, "other_join": other_join, "other": other, "again": again}

    seen = asyncio.run(scenario())
    print(f"queue guard: stream {STREAMS_PER_CLIENT + 1} of one address: {seen['ninth'].status_code} "
          f"{seen['ninth'].json()['detail']!r}; another address's stream {seen['other'].status_code}")
    assert seen["ninth"].status_code == 429 and "open event streams" in seen["ninth"].json()["detail"]
    assert seen["other_join"].status_code == 200 and seen["other"].status_code == 200
    assert seen["again"].status_code == 200


def test_joins_past_the_queue_size_are_refused_and_the_queue_recovers_without_a_restart(guarded):
    statuses: dict[int, int] = {}
    details = set()
    with httpx.Client(base_url=guarded.url, timeout=30) as http:
        for n in range(300):  # 300 addresses, each a new session that never opens its stream
            response = http.post(JOIN, json=join_body(1, f"abandoned{n}"), headers=address(1000 + n))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code != 200:
                details.add(response.json()["detail"][:40])
        # Gradio's simple API joins the same queue, and is refused alike
        call_refused = http.post("/gradio_api/call/quick", json={"data": []}, headers=address(5))
        queue = guarded.page._queue
        held = len(queue.pending_messages_per_session)
        # the abandoned sessions are dropped: a new voter's join gets in, and its stream answers it
        admitted = wait_until(lambda response: response.status_code == 200,
                              observe=lambda: http.post(JOIN, json=join_body(1, "voter"), headers=address(7)),
                              interval=0.2, what="a join to be admitted again once abandoned sessions are dropped")
        with http.stream("GET", DATA, params={"session_hash": "voter"}, headers=address(7)) as stream:
            messages = [json.loads(line[len("data: "):]) for line in stream.iter_lines() if line.startswith("data: ")]
        # the simple API's call gets in as well once places free up (the voter's session may still hold the last one)
        called = wait_until(lambda response: response.status_code == 200,
                            observe=lambda: http.post("/gradio_api/call/quick", json={"data": []}, headers=address(8)),
                            interval=0.2, what="a simple-API call to be admitted once places free up")
        call_answer = http.get(f"/gradio_api/call/quick/{called.json()['event_id']}", headers=address(8)).text
    print(f"queue guard: 300 abandoned joins -> {statuses}, {details}; Gradio held {held} sessions; "
          f"a later voter: {admitted.status_code}, stream {[m['msg'] for m in messages]}")
    assert statuses == {200: QUEUE_SIZE, 503: 300 - QUEUE_SIZE}
    assert details == {"the arena is busy: 20 sessions are waiti"}
    assert not queue.stopped and held <= QUEUE_SIZE
    assert any(m["msg"] == "process_completed" and m["success"] for m in messages)
    assert call_refused.status_code == 503
    assert "event: complete" in call_answer and '"ok"' in call_answer, call_answer
