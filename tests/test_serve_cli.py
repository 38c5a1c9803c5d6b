"""``python -m arena serve`` as a user runs it: a real subprocess, the embedded Redis, a restart."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from arena.ops.redis_server import free_port
from arena.ops.settings import SERVE_SETTINGS, Settings, add_serve_arguments, settings_from_args
from leaderboard.config import SettingError, markdown_table
from tests.helpers import PROJECT_ROOT as ROOT
from tests.serve_support import start_serve, stop, wait_healthy, wait_votes


def test_unreachable_redis_is_one_line_and_exit_2(tmp_path):
    port = free_port()
    process = subprocess.run([sys.executable, "-m", "arena", "serve", "--redis-url", f"redis://127.0.0.1:{port}/0",
                              "--port", str(free_port()), "--data-dir", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot reach Redis at redis://127.0.0.1:{port}/0" in lines[0]


def test_bad_models_file_is_one_clear_line(tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text("- name: only-one\n  provider: nonsense\n")
    process = subprocess.run([sys.executable, "-m", "arena", "serve", "--models", str(config),
                              "--port", str(free_port()), "--data-dir", str(tmp_path / "data")],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    assert "Traceback" not in process.stderr and "models.yaml" in process.stderr


def test_embedded_default_keeps_votes_across_a_restart(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_serve(data_dir, port)
    try:
        wait_healthy(url, process)
        with httpx.Client(base_url=url, timeout=30) as client:
            battle = client.post("/api/battles", json={"prompt": "hello there"}).json()
            voted = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "model_b"},
                                headers={"X-Arena-Session": battle["session"]})
            assert voted.status_code == 200
        before = wait_votes(url, 1)
    finally:
        stderr = stop(process)
    assert "127.0.0.1" not in stderr.replace(url, "")  # no client addresses in the logs
    archive = data_dir / "votes.jsonl"
    assert len(archive.read_text().splitlines()) == 1
    assert (data_dir / "redis").is_dir()

    process = start_serve(data_dir, port)
    try:
        wait_healthy(url, process)
        after = wait_votes(url, 1)
        assert after["total_votes"] == 1
        assert {r["model"] for r in after["models"]} == {r["model"] for r in before["models"]}
        # The battle survived the restart too: its second vote is still refused.
        with httpx.Client(base_url=url, timeout=30) as client:
            again = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "model_a"},
                                headers={"X-Arena-Session": battle["session"]})
            assert again.status_code == 409
    finally:
        stop(process)
    assert len(archive.read_text().splitlines()) == 1
    json.loads(archive.read_text().splitlines()[0])


def serve_settings(argv: list[str], environ: dict[str, str]) -> Settings:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return settings_from_args(parser.parse_args(argv), environ)


# model owners and the circuit breaker (docs/owners.md)
OWNER_ENVIRON = {"ARENA_ALLOW_PRIVATE_ENDPOINTS": "1", "ARENA_OWNER_SIGNUP": "yes", "ARENA_OWNER_SIGNUPS_PER_HOUR": "9",
                 "ARENA_OWNER_MAX_MODELS": "5", "ARENA_MODEL_BATTLES_PER_DAY": "100", "ARENA_SECRET_KEY": "k" * 44,
                 "ARENA_BREAKER_FAILURES": "4", "ARENA_BREAKER_VOTERS": "3", "ARENA_BREAKER_WINDOW": "120",
                 "ARENA_BREAKER_STREAK": "7",
                 "ARENA_BREAKER_FIRST_PROBE": "10", "ARENA_BREAKER_MAX_PROBE": "600",
                 "ARENA_OWNER_SIGNUPS_PER_NETWORK_PER_DAY": "4", "ARENA_OWNER_SIGNUPS_PER_DAY": "40",
                 "ARENA_NAMED_BATTLES_PER_MODEL_PER_DAY": "6", "ARENA_NAMED_SHARE": "0.25"}
OWNER_SETTINGS = dict(allow_private_endpoints=True, owner_signup=True, owner_signups_per_hour=9, owner_max_models=5,
                      model_battles_per_day=100, secret_key="k" * 44, breaker_failures=4, breaker_voters=3,
                      breaker_window=120.0, breaker_streak=7, breaker_first_probe=10.0, breaker_max_probe=600.0,
                      owner_signups_per_network_per_day=4, owner_signups_per_day=40,
                      named_battles_per_model_per_day=6, named_share=0.25)


def test_every_variable_reaches_its_setting_and_a_flag_wins_over_it():
    environ = {"ARENA_HOST": "0.0.0.0", "ARENA_PORT": "8000", "ARENA_DATA_DIR": "/srv/arena",
               "REDIS_URL": "redis://db:6379/1", "ARENA_MODELS": "models.yaml", "ARENA_DEMO_TOKEN_DELAY": "0.5",
               "ARENA_DEMO_FIRST_TOKEN_DELAY": "1.5", "ARENA_PREFIX": "other", "ARENA_MATCHMAKER": "ucb",
               "ARENA_MATCHMAKER_FLOOR": "0.3", "ARENA_MAX_PAIR_SHARE": "0.5", "ARENA_NEW_MODEL_VOTES": "7",
               "ARENA_NEW_MODEL_CI": "9", "ARENA_RUN_WORKER": "0", "ARENA_REFIT_INTERVAL": "4.5",
               "ARENA_SHUTDOWN_GRACE": "1.5", "ARENA_MIN_CATEGORY_VOTES": "20", "ARENA_BATTLES_PER_MINUTE": "3",
               "ARENA_VOTER_SECRET": "s3cret-s3cret-s3cret", "ARENA_VOTE_KEY": "vote-key-0123456789",
               "ARENA_VOTER_ID_ROTATION_DAYS": "7", "ARENA_RATE_DEANONYMISED": "yes",
               "ARENA_FLAGGED_VOTER_WEIGHT": "0.25", "ARENA_VOTER_FLAG_ALPHA": "0.01",
               "ARENA_METRICS_TOKEN": "scrape-token", "ARENA_OPERATOR_TOKEN": "operator-token"}
    environ.update({"ARENA_TRUSTED_PROXIES": "10.0.0.0/24, 127.0.0.1", "ARENA_BATTLES_PER_DAY": "11",
                    "ARENA_VOTES_PER_MINUTE": "12", "ARENA_VOTES_PER_DAY": "13", "ARENA_PAIR_VOTES_PER_DAY": "14",
                    "ARENA_MAX_CONCURRENT_ANSWERS": "15", "ARENA_MAX_BODY_BYTES": "16000",
                    "ARENA_MAX_PAGE_BODY_BYTES": "170000", "ARENA_REDIS_MAXMEMORY": "256mb",
                    "ARENA_FLOOD_REFUSALS": "17", "ARENA_KWAY_SIZES": "6,3"})
    # the vote download's release settings
    environ.update({"ARENA_RELEASE_TEXT": "1", "ARENA_RELEASE_KEY": "release-key-0123456789"})
    trust = dict(trusted_proxies="10.0.0.0/24,127.0.0.1/32", battles_per_day=11, votes_per_minute=12, votes_per_day=13,
                 pair_votes_per_day=14, max_concurrent_answers=15, max_body_bytes=16000, max_page_body_bytes=170000,
                 redis_maxmemory="256mb", flood_refusals=17)
    # the page's queue and the connections (issue 26)
    environ.update({"ARENA_PAGE_JOINS_PER_MINUTE": "19", "ARENA_PAGE_STREAMS_PER_CLIENT": "5",
                    "ARENA_PAGE_QUEUE_SIZE": "500", "ARENA_MAX_CONNECTIONS": "900",
                    "ARENA_MAX_CONNECTIONS_PER_CLIENT": "21", "ARENA_REQUEST_TIMEOUT": "12.5"})
    trust.update(page_joins_per_minute=19, page_streams_per_client=5, page_queue_size=500, max_connections=900,
                 max_connections_per_client=21, request_timeout=12.5)
    release = dict(release_text=True, release_key="release-key-0123456789")
    # the leaderboard page's preliminary mark
    environ.update({"ARENA_LEADERBOARD_MIN_VOTES": "18"})
    page = dict(leaderboard_min_votes=18)
    # regenerating an answer before the vote
    environ.update({"ARENA_MAX_REGENERATIONS": "0"})
    page.update(max_regenerations=0)
    # a battle's limits
    environ.update({"ARENA_BATTLE_TTL": "3600", "ARENA_MAX_PROMPT_CHARS": "2000", "ARENA_MAX_TURNS": "3"})
    page.update(battle_ttl=3600, max_prompt_chars=2000, max_turns=3)
    environ.update({"ARENA_MAX_ANSWER_CHARS": "5000"})  # an answer's size cap
    page.update(max_answer_chars=5000)
    environ.update(OWNER_ENVIRON)
    assert set(environ) == {setting.env for setting in SERVE_SETTINGS if setting.env}  # every variable tried
    assert serve_settings([], environ) == Settings(
        host="0.0.0.0", port=8000, data_dir=Path("/srv/arena"), redis_url="redis://db:6379/1",
        models_file=Path("models.yaml"), demo=False, demo_token_delay=0.5, demo_first_token_delay=1.5, prefix="other",
        matchmaker="ucb", matchmaker_floor=0.3, max_pair_share=0.5, new_model_votes=7, new_model_ci=9.0,
        run_worker=False, refit_interval=4.5, shutdown_grace=1.5, min_category_votes=20, battles_per_minute=3,
        voter_secret="s3cret-s3cret-s3cret", vote_key="vote-key-0123456789",
        voter_id_rotation_days=7.0, rate_deanonymised=True, flagged_voter_weight=0.25, voter_flag_alpha=0.01,
        metrics_token="scrape-token", operator_token="operator-token", kway_sizes=(3, 6), **trust, **release, **page,
        **OWNER_SETTINGS)
    flagged = serve_settings(["--port", "9000", "--prefix", "mine", "--demo", "--matchmaker-floor", "0"], environ)
    assert (flagged.port, flagged.prefix, flagged.demo, flagged.matchmaker_floor,
            flagged.host) == (9000, "mine", True, 0.0, "0.0.0.0")
    # nothing set: the table's defaults, with the demo on since there is no model file; empty is unset
    assert serve_settings([], {"ARENA_PORT": "", "REDIS_URL": ""}) == Settings(demo=True)
    assert (serve_settings(["--no-demo", "--no-worker"], {"ARENA_RUN_WORKER": "yes"})
            == Settings(demo=False, run_worker=False))


@pytest.mark.parametrize("variable, text, reason", [
    ("ARENA_PORT", "abc", "invalid int value"),
    ("ARENA_MATCHMAKER", "bogus", "invalid choice"),
    ("ARENA_MATCHMAKER_FLOOR", "1.5", "1.5 must be >= 0.0 and <= 1.0"),
    ("ARENA_MAX_PAIR_SHARE", "0", "0 must be > 0.0 and <= 1.0"),
    ("ARENA_NEW_MODEL_VOTES", "-1", "-1 must be >= 0"),
    ("ARENA_RUN_WORKER", "maybe", "maybe is not one of"),
    ("ARENA_TRUSTED_PROXIES", "*", "'*' would let any client name its own address"),
    ("ARENA_TRUSTED_PROXIES", "10.0.0.0/24,nginx", "'nginx' is not an IP address or CIDR network"),
    ("ARENA_VOTES_PER_MINUTE", "-3", "-3 must be >= 0"),
])
def test_a_bad_variable_is_refused_by_name(variable, text, reason):
    with pytest.raises(SettingError) as refused:
        serve_settings([], {variable: text})
    assert str(refused.value).startswith(f"{variable}={text!r}: ") and reason in str(refused.value)


def test_a_bad_variable_stops_serve_with_one_line_naming_it(tmp_path):
    env = {**os.environ, "ARENA_MATCHMAKER_FLOOR": "1.5"}
    process = subprocess.run([sys.executable, "-m", "arena", "serve", "--data-dir", str(tmp_path / "data"),
                              "--port", str(free_port())],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert process.returncode == 2
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert lines == ["python -m arena serve: error: ARENA_MATCHMAKER_FLOOR='1.5': 1.5 must be >= 0.0 and <= 1.0"]
    assert not (tmp_path / "data").exists()  # stopped before anything was started


def test_the_banner_shows_every_setting_with_secrets_masked():
    settings = Settings(redis_url="redis://:hunter2@db:6379/0", voter_secret="s3cret")
    banner = settings.describe()
    assert [line.split()[0] for line in banner.splitlines()] == [setting.name for setting in SERVE_SETTINGS]
    assert "redis://:***@db:6379/0" in banner and "hunter2" not in banner and "s3cret" not in banner
    assert "hunter2" not in repr(settings) and "s3cret" not in repr(settings)
    assert "random, in `<data-dir>/secrets/` (0600)" in Settings().describe()


def test_the_configuration_document_table_is_the_settings_table():
    document = (ROOT / "docs" / "configuration.md").read_text()
    start = document.index("## Every setting")
    section = document[start:document.index("\n## ", start + 1)]
    table = markdown_table(SERVE_SETTINGS)
    assert table in section, ("docs/configuration.md's table is out of date: "
                              "paste `python -m arena.ops.settings` over it")
    rows = [line for line in section.splitlines() if line.startswith("| `") or line.startswith("|  | `")]
    assert len(rows) == sum(setting.configurable for setting in SERVE_SETTINGS)
    for setting, row in zip((s for s in SERVE_SETTINGS if s.configurable), rows):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert ((setting.flag or setting.off_flag or "") in cells[0]
                and cells[1] == (f"`{setting.env_text}`" if setting.env else ""))
        assert setting.default_text in cells[2]


def test_the_shared_settings_mean_the_same_in_every_command_line(monkeypatch):
    from arena.cli.operator import parse_args as operator_args
    from leaderboard.worker.cli import parse_args as worker_args

    monkeypatch.setenv("REDIS_URL", "redis://db:6379/2")
    monkeypatch.setenv("ARENA_DATA_DIR", "/srv/arena")
    monkeypatch.setenv("ARENA_PREFIX", "other")
    monkeypatch.setenv("ARENA_REFIT_INTERVAL", "0.7")
    expected = ("redis://db:6379/2", Path("/srv/arena"), "other")
    served = serve_settings([], dict(os.environ))
    worker = worker_args([])
    operator = operator_args(["status"])
    for parsed in (served, worker, operator):
        assert (parsed.redis_url, parsed.data_dir, parsed.prefix) == expected
    assert served.refit_interval == worker.refit_interval == 0.7
    assert worker_args(["--refit-interval", "3", "--prefix", "mine"]).refit_interval == 3.0
    monkeypatch.setenv("ARENA_REFIT_INTERVAL", "soon")
    with pytest.raises(SystemExit):
        worker_args([])


def test_the_worker_command_runs_the_worker_with_its_settings(redis_url, tmp_path, monkeypatch):
    import leaderboard.worker.cli as worker_cli

    started = {}

    class RecordingWorker:
        def __init__(self, client, data_dir, **options):
            started.update(options, data_dir=data_dir)

        def run_forever(self, stop):
            started["ran"] = True

    monkeypatch.setattr(worker_cli, "VoteWorker", RecordingWorker)
    monkeypatch.setenv("ARENA_REFIT_INTERVAL", "0.7")
    monkeypatch.setenv("ARENA_PREFIX", "other")
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert worker_cli.main(["--redis-url", redis_url, "--data-dir", str(tmp_path)]) == 0
    finally:  # main installs its stop handlers; give pytest its own back
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert started == {"data_dir": tmp_path, "prefix": "other", "consumer": None, "refit_interval": 0.7, "ran": True,
                       "rate_deanonymised": False, "flagged_voter_weight": 0.0, "voter_alpha": 0.001,
                       "min_category_votes": 50, "vote_key": None}
