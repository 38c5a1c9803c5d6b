"""``python -m arena serve`` as a user runs it: a real subprocess, the embedded Redis, a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from arena.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]


def start_serve(data_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["ARENA_REFIT_INTERVAL"] = "0.3"
    env["ARENA_DEMO_TOKEN_DELAY"] = "0.001"
    return subprocess.Popen([sys.executable, "-m", "arena", "serve", "--data-dir", str(data_dir), "--port", str(port), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early ({process.returncode}): {process.stderr.read()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not become healthy")


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr


def wait_votes(url: str, count: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    board = {}
    while time.monotonic() < deadline:
        board = httpx.get(f"{url}/api/leaderboard", timeout=5).json()
        if board["total_votes"] >= count:
            return board
        time.sleep(0.1)
    raise AssertionError(f"leaderboard never reached {count} votes: {board}")


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
    process = subprocess.run([sys.executable, "-m", "arena", "serve", "--models", str(config), "--port", str(free_port()),
                              "--data-dir", str(tmp_path / "data")], cwd=ROOT, capture_output=True, text=True, timeout=60)
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
