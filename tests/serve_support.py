"""``python -m arena serve`` (and the worker) as subprocesses, the way an operator runs them: start,
wait until healthy, vote over HTTP, stop with a signal, and find the embedded Redis's pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import PROJECT_ROOT as ROOT
from tests.helpers import TEST_VOTE_KEY, wait_until


def serve_env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    # one vote-signing key for every serve and worker a test starts, as a deployment shares ARENA_VOTE_KEY
    env.update({"ARENA_REFIT_INTERVAL": "0.3", "ARENA_DEMO_TOKEN_DELAY": "0.001", "ARENA_VOTE_KEY": TEST_VOTE_KEY,
                **variables})
    return env


def start_serve(data_dir: Path, port: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``serve`` in its own process group, as a shell starts it (so a Ctrl-C can be sent to the group)."""
    return subprocess.Popen([sys.executable, "-m", "arena", "serve", "--data-dir", str(data_dir), "--port", str(port),
                             *extra], cwd=ROOT, env=env or serve_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def start_worker(redis_url: str, data_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "leaderboard", "worker", "--redis-url", redis_url, "--data-dir",
                             str(data_dir), "--refit-interval", "0.2", *extra], cwd=ROOT, env=serve_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_healthy(url: str, process: subprocess.Popen) -> None:
    def healthz_status() -> int:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early ({process.returncode}): {process.stderr.read()}")
        return httpx.get(f"{url}/healthz", timeout=5).status_code

    wait_until(lambda status: status == 200, observe=healthz_status, ignoring=(httpx.HTTPError,), interval=0.2,
               what=f"serve to answer {url}/healthz with 200")


def stop(process: subprocess.Popen, signum: int = signal.SIGINT, timeout: float = 30) -> str:
    """Signal ``process`` and return its stderr once it has exited (killed if it outlives ``timeout``)."""
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr


def wait_votes(url: str, count: int) -> dict:
    return wait_until(lambda board: board["total_votes"] >= count, interval=0.1,
                      observe=lambda: httpx.get(f"{url}/api/leaderboard", timeout=5).json(),
                      what=f"the leaderboard to count {count} vote(s)")


def new_battle(http: httpx.Client, prompt: str = "hello there") -> dict:
    response = http.post("/api/battles", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    return response.json()


def cast(http: httpx.Client, battle: dict, outcome: str = "model_a") -> httpx.Response:
    return http.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": outcome},
                     headers={"X-Arena-Session": battle["session"]})


def owner(data_dir: Path) -> dict:
    """What the embedded Redis's owner lock records: the serve pid, the redis-server pid, the port."""
    return json.loads((Path(data_dir) / "redis" / "owner.lock").read_text())


def pid_running(pid: int) -> bool:
    """Alive and not a zombie (a killed child not yet reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def archived_vote_ids(data_dir: Path) -> list[str]:
    archive = Path(data_dir) / "votes.jsonl"
    if not archive.exists():
        return []
    return [json.loads(line)["vote_id"] for line in archive.read_text().splitlines() if line.strip()]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line or "Traceback" in line]
