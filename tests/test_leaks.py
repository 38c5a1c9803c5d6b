"""What the web process lets out: no connection to any host but this machine while ``serve`` starts
and runs a battle (Gradio's analytics off), and Gradio's monitoring paths behind the metrics token."""

from __future__ import annotations

import json
import textwrap

import httpx
import pytest

from arena.ops.redis_server import free_port
from tests.helpers import arena_settings
from tests.serve_support import new_battle, serve_env, start_serve, stop, wait_healthy, wait_votes

# Loaded by the serve subprocess (PYTHONPATH): an audit hook writes every socket connect and every
# name lookup of that process, one JSON line each, before anything else of it runs.
RECORDER = textwrap.dedent('''
    import json, os, sys, threading

    _log = open(os.environ["ARENA_TEST_SOCKET_LOG"], "a", buffering=1)
    _lock = threading.Lock()

    def _record(event, args):
        if event == "socket.connect":
            address = args[1]
            entry = {"event": "connect", "address": list(address) if isinstance(address, tuple) else str(address)}
        elif event == "socket.getaddrinfo":
            host = args[0]
            entry = {"event": "lookup", "host": host.decode() if isinstance(host, bytes) else host}
        else:
            return
        with _lock:
            _log.write(json.dumps(entry) + "\\n")

    sys.addaudithook(_record)
''')

LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost", None}


def outside_this_machine(entry: dict) -> bool:
    if entry["event"] == "lookup":
        return entry["host"] not in LOCAL_HOSTS
    address = entry["address"]
    return isinstance(address, list) and address[0] not in LOCAL_HOSTS  # a str is a Unix socket's path


def test_serve_talks_to_no_host_but_this_machine(tmp_path):
    recorder_dir = tmp_path / "recorder"
    recorder_dir.mkdir()
    (recorder_dir / "sitecustomize.py").write_text(RECORDER)
    socket_log = tmp_path / "sockets.jsonl"
    env = serve_env(ARENA_TEST_SOCKET_LOG=str(socket_log), PYTHONPATH=str(recorder_dir))
    env.pop("GRADIO_ANALYTICS_ENABLED", None)  # the default an operator gets
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_serve(tmp_path / "data", port, env=env)
    try:
        wait_healthy(url, process)
        with httpx.Client(base_url=url, timeout=60) as http:
            assert http.get("/").status_code == 200
            battle = new_battle(http)
            assert http.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "tie"},
                             headers={"X-Arena-Session": battle["session"]}).status_code == 200
        wait_votes(url, 1)
    finally:
        stop(process)
    entries = [json.loads(line) for line in socket_log.read_text().splitlines()]
    local_connects = [entry for entry in entries if entry["event"] == "connect" and not outside_this_machine(entry)]
    assert len(local_connects) >= 3, entries  # the recorder saw the process at work (Redis, the demo models)
    outside = [entry for entry in entries if outside_this_machine(entry)]
    print(f"\n{len(entries)} socket events, {len(local_connects)} local connects, {len(outside)} to other hosts")
    assert outside == [], outside


TOKEN = "metrics-token-for-tests"

# Every way found to reach Gradio's monitoring routes under the page's mount at "/": the routes,
# their trailing-slash forms (Gradio redirects those), a doubled slash, percent-encoded letters and
# slashes (decoded before routing), and the dashboard's keyed path.
MONITORING_PATHS = ["/monitoring", "/monitoring/", "/monitoring/summary", "/monitoring/summary/",
                    "//monitoring/summary", "/%6Donitoring/summary", "/monitoring%2Fsummary",
                    "/monitoring/./summary", "/monitoring/some-key", "/monitoring/some-key/dashboard"]


@pytest.fixture
def token_stack(redis_url, tmp_path):
    from arena.cli.serve import ArenaStack  # loads Gradio: only once a stack starts

    with ArenaStack(arena_settings(redis_url, tmp_path / "data", metrics_token=TOKEN)) as stack:
        yield stack


def get(http: httpx.Client, path: str, **headers: str) -> httpx.Response:
    # the path exactly as written: httpx would otherwise tidy "./" away
    return http.send(http.build_request("GET", httpx.URL(http.base_url, raw_path=path.encode()), headers=headers))


def test_gradio_monitoring_needs_the_metrics_token(token_stack):
    with httpx.Client(base_url=token_stack.url, timeout=30) as http:
        battle = new_battle(http)  # something for the summary to count
        anonymous = {path: get(http, path) for path in MONITORING_PATHS}
        wrong = {path: get(http, path, authorization="Bearer wrong") for path in MONITORING_PATHS}
        with_token = get(http, "/monitoring/summary", authorization=f"Bearer {TOKEN}")
        metrics = http.get("/metrics")
    assert battle["votable"]
    refused = [response for response in [*anonymous.values(), *wrong.values()] if response.status_code == 401]
    print(f"\n{len(refused)} of {2 * len(MONITORING_PATHS)} monitoring requests without the token refused (401)")
    assert {path: response.status_code for path, response in anonymous.items()} == dict.fromkeys(MONITORING_PATHS, 401)
    assert {path: response.status_code for path, response in wrong.items()} == dict.fromkeys(MONITORING_PATHS, 401)
    assert all("functions" not in response.text for response in [*anonymous.values(), *wrong.values()])
    assert anonymous["/monitoring/summary"].headers["www-authenticate"] == "Bearer"
    assert with_token.status_code == 200 and "functions" in with_token.json()
    assert metrics.status_code == 401  # the same rule as /metrics


def test_without_a_token_monitoring_is_open_like_metrics(arena_stack):
    with httpx.Client(base_url=arena_stack.url, timeout=30) as http:
        assert http.get("/metrics").status_code == 200
        assert "functions" in http.get("/monitoring/summary").json()
