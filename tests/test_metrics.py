"""GET /metrics after real traffic, parsed with prometheus_client's own parser; the bearer token;
several processes adding up through PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from arena.models.demo_server import DemoServer
from arena.ops.redis_server import free_port
from tests.helpers import PROJECT_ROOT, arena_settings, wait_until


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(parsed, name, **labels) -> float:
    return parsed.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metered_arena(redis_url, tmp_path):
    """Two working models and one whose endpoint is a closed port; 2 new battles a minute per voter."""
    from arena.cli.serve import ArenaStack

    with DemoServer(token_delay=0.0) as demo:
        models_file = tmp_path / "models.yaml"
        models_file.write_text(
            "models:\n"
            f"  - {{name: good-one, base_url: '{demo.url}', model_id: demo-terse}}\n"
            f"  - {{name: good-two, base_url: '{demo.url}', model_id: demo-steps}}\n"
            f"  - {{name: broken, base_url: 'http://127.0.0.1:{free_port()}/v1', "
            f"model_id: x, max_retries: 0, timeout: 5}}\n")
        settings = arena_settings(redis_url, tmp_path / "data", demo=False, models_file=models_file,
                                  battles_per_minute=0, metrics_token="metrics-token-for-tests")
        with ArenaStack(settings) as stack:
            yield stack


def test_metrics_count_real_traffic(metered_arena, redis_client):
    auth = {"Authorization": "Bearer metrics-token-for-tests"}
    with httpx.Client(base_url=metered_arena.url, timeout=60) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        accepted = failed = 0
        started = 0
        while accepted < 3 or failed < 1:
            battle = client.post("/api/battles", json={"prompt": f"Name a colour ({started})"}).json()
            started += 1
            if not battle["votable"]:
                failed += 1
                vote = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "tie"},
                                   headers={"X-Arena-Session": battle["session"]})
                assert vote.status_code == 409  # a failed battle is rejected: "conflict"
                redis_client.delete("arena:model:broken:failing")  # back in rotation, so the loop ends
                continue
            vote = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "model_a"},
                               headers={"X-Arena-Session": battle["session"]})
            assert vote.status_code == 200
            accepted += 1
            assert client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "model_a"},
                               headers={"X-Arena-Session": battle["session"]}).status_code == 409
            assert started < 60, "the broken model was never seated"
        assert client.post("/api/battles/0123abcd/vote", json={"outcome": "tie"}).status_code == 404
        asked = client.post("/api/battles", json={"prompt": "Who are you?"}).json()
        started += 1
        wait_until(lambda: redis_client.exists("arena:leaderboard:refit-stats"), what="the worker's first refit")
        text = client.get("/metrics", headers=auth).text
    parsed = samples(text)
    print(f"metrics: {len(parsed)} samples; battles started {started}, failed {failed}, votes accepted {accepted}")
    assert value(parsed, "arena_battles_started_total", k="2") == started
    assert value(parsed, "arena_battles_failed_total", k="2") == failed + (0 if asked["votable"] else 1)
    assert value(parsed, "arena_votes_accepted_total", mode="anonymous") == accepted
    assert value(parsed, "arena_votes_rejected_total", reason="conflict") == accepted + failed
    assert value(parsed, "arena_votes_rejected_total", reason="not_found") == 1
    assert value(parsed, "arena_flagged_battles_total", flag="prompt-asks-identity") == 1
    assert value(parsed, "arena_endpoint_errors_total", model="broken") >= failed
    answered = sum(value(parsed, "arena_endpoint_answer_seconds_count", model=name)
                   for name in ("good-one", "good-two"))
    assert answered == 2 * accepted + failed + (2 if asked["votable"] else 1)
    assert value(parsed, "arena_endpoint_first_token_seconds_count", model="good-one") >= 1
    for gauge in ("arena_flagged_voters", "arena_vote_stream_lag_entries", "arena_vote_stream_pending_entries",
                  "arena_archive_lag_seconds", "arena_refit_duration_seconds", "arena_snapshot_age_seconds"):
        assert (gauge, ()) in parsed, gauge
    assert parsed[("arena_refit_duration_seconds", ())] > 0
    assert value(parsed, "arena_flagged_voters") == 0


def test_rate_limit_refusals_are_counted(redis_url, tmp_path):
    from arena.cli.serve import ArenaStack

    with ArenaStack(arena_settings(redis_url, tmp_path, battles_per_minute=2)) as stack:
        with httpx.Client(base_url=stack.url, timeout=60) as client:
            codes = [client.post("/api/battles", json={"prompt": "Hello there"}).status_code for _ in range(5)]
            parsed = samples(client.get("/metrics").text)  # no token configured: open
    assert codes == [200, 200, 429, 429, 429]
    assert value(parsed, "arena_rate_limit_refusals_total", action="battles") == 3
    assert value(parsed, "arena_battles_started_total", k="2") == 2


MULTIPROCESS_SCRIPT = """
import sys
from arena.metrics import ArenaMetrics
metrics = ArenaMetrics()
assert metrics.multiprocess
for _ in range(int(sys.argv[1])):
    metrics.vote_accepted("anonymous")
metrics.answer_finished("m", 0.3)
sys.stdout.write(metrics.render().decode())
"""


def test_several_processes_add_up_through_the_multiprocess_directory(tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    outputs = [subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRIPT, str(n)], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=60, check=True).stdout for n in (3, 4)]
    parsed = samples(outputs[-1])  # the second process's scrape sees both
    assert value(parsed, "arena_votes_accepted_total", mode="anonymous") == 7
    assert value(parsed, "arena_endpoint_answer_seconds_count", model="m") == 2
