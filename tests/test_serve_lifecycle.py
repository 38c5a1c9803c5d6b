"""How ``serve`` starts and stops, as systemd, Docker, Kubernetes or a terminal see it: signals,
a taken port, a data dir in use, a crash (kill -9) of serve and of its Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from arena.ops.redis_server import EmbeddedRedis, free_port
from tests.helpers import PROJECT_ROOT as ROOT
from tests.helpers import make_vote, signed_entry, wait_until
from tests.serve_support import (
    archived_vote_ids,
    cast,
    error_lines,
    new_battle,
    owner,
    pid_running,
    start_serve,
    start_worker,
    stop,
    wait_healthy,
    wait_votes,
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_stops_serve_in_order_within_10s_leaving_no_redis(tmp_path, signum):
    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_serve(data_dir, port)
    try:
        wait_healthy(url, process)
        redis_pid = owner(data_dir)["redis_pid"]
        assert pid_running(redis_pid)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert cast(http, new_battle(http)).status_code == 200
        wait_votes(url, 1)
    finally:
        # SIGTERM as systemd/Docker/Kubernetes send it (to the process); Ctrl-C as a terminal sends
        # it, to the whole process group
        if signum == signal.SIGINT:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signum)
        try:
            _, stderr = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError("serve did not exit within 10 s of the signal")
    assert process.returncode == 0, stderr
    assert error_lines(stderr) == []
    assert " INFO arena: stopping: refusing new battles, 0 answer(s) in flight, grace 5 s" in stderr  # the default
    assert " INFO arena: stopped: 0 answer(s) finished, 0 ended" in stderr
    assert not pid_running(redis_pid), "the embedded redis-server outlived serve"
    assert len(archived_vote_ids(data_dir)) == 1
    assert not (data_dir / "redis" / "redis.url").exists()


def test_a_taken_port_is_one_line_and_a_nonzero_exit_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run([sys.executable, "-m", "arena", "serve", "--data-dir", str(tmp_path / "data"),
                                   "--port", str(port)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert "is up" not in finished.stdout
    lines = [line for line in finished.stderr.splitlines() if line.strip()]
    assert lines == [f"arena: cannot listen on 127.0.0.1:{port}: address already in use "
                     "(is another arena running? pass another --port / ARENA_PORT)"]
    assert not (tmp_path / "data" / "redis").exists()  # no Redis was started for nothing


def test_a_second_serve_on_a_data_dir_in_use_fails_clearly(tmp_path):
    data_dir, port = tmp_path / "data", free_port()
    first = start_serve(data_dir, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", first)
        owned = owner(data_dir)
        second = subprocess.run([sys.executable, "-m", "arena", "serve", "--data-dir", str(data_dir),
                                 "--port", str(free_port())], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert (len(lines) == 1
                and f"data dir {data_dir / 'redis'} is in use by another arena (pid {first.pid}" in lines[0])
        assert "is up" not in second.stdout
        assert owner(data_dir) == owned and pid_running(owned["redis_pid"])  # the first one's Redis untouched
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        stop(first)


def cast_votes(url: str, count: int) -> set[str]:
    """Cast ``count`` votes; the ids of those the API acknowledged (200)."""
    acknowledged = set()
    with httpx.Client(base_url=url, timeout=30) as http:
        for _ in range(count):
            response = cast(http, new_battle(http))
            assert response.status_code == 200
            acknowledged.add(response.json()["vote_id"])
    return acknowledged


def test_after_kill_9_of_serve_and_of_its_redis_the_next_serve_has_every_vote(tmp_path):
    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_serve(data_dir, port)
    orphan = None
    try:
        wait_healthy(url, process)
        acknowledged = cast_votes(url, 3)
        # serve alone is killed: its Redis lives on, orphaned; the next serve must stop it, not share its files
        orphan, redis_port = owner(data_dir)["redis_pid"], owner(data_dir)["port"]
        process.kill()
        process.communicate()
        assert pid_running(orphan)
        process = start_serve(data_dir, port)
        wait_healthy(url, process)
        assert not pid_running(orphan)
        assert owner(data_dir)["port"] == redis_port  # the data dir keeps its Redis port
        assert wait_votes(url, 3)["total_votes"] == 3
        acknowledged |= cast_votes(url, 2)
        # now both die at once, as in a power cut
        redis_pid = owner(data_dir)["redis_pid"]
        process.kill()
        os.kill(redis_pid, signal.SIGKILL)
        _, second_log = process.communicate()
        assert f"its redis-server (pid {orphan}) was still running and has been stopped first" in second_log
        wait_until(lambda: not pid_running(redis_pid), what="the killed redis-server to be gone")
        process = start_serve(data_dir, port)
        wait_healthy(url, process)
        assert wait_votes(url, 5)["total_votes"] == 5
        wait_until(lambda: set(archived_vote_ids(data_dir)) == acknowledged, what="every acknowledged vote archived")
    finally:
        stderr = stop(process)
        if orphan is not None and pid_running(orphan):  # the test failed before a serve took it over
            os.kill(orphan, signal.SIGKILL)
    assert error_lines(stderr) == []
    ids = archived_vote_ids(data_dir)
    assert sorted(ids) == sorted(acknowledged)  # every acknowledged vote, once


def test_an_external_worker_reconnects_after_the_embedded_redis_restarts(tmp_path):
    redis_dir = tmp_path / "data" / "redis"
    server = EmbeddedRedis(redis_dir).start()
    first_url = server.url
    worker = start_worker(server.url, tmp_path / "worker")
    try:
        import redis

        client = redis.Redis.from_url(server.url)
        client.xadd("arena:votes", signed_entry(make_vote(vote_id="vote-0001")))
        wait_until(lambda: archived_vote_ids(tmp_path / "worker") == ["vote-0001"],
                   what="the worker to archive vote-0001")
        server.stop()
        server = EmbeddedRedis(redis_dir).start()
        assert server.url == first_url  # the data dir's port, kept across the restart
        client = redis.Redis.from_url(server.url)
        client.xadd("arena:votes", signed_entry(make_vote(vote_id="vote-0002")))
        wait_until(lambda: archived_vote_ids(tmp_path / "worker") == ["vote-0001", "vote-0002"],
                   what="the worker to reconnect and archive vote-0002")
        assert worker.poll() is None
    finally:
        stderr = stop(worker, signal.SIGTERM)
        server.stop()
    assert worker.returncode == 0
    assert "Redis is answering again" in stderr
