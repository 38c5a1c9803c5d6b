"""Least privilege in Redis (issue 26 item 3): the ACL users of deploy/ (arena.ops.redis_acl) on a real Redis 7.

A real redis-server 7 is started with exactly the ``--user`` arguments Compose and Kubernetes give theirs.
The real web side (an ArenaStack on ``redis://arena-web:...``) starts, serves battles, takes votes, answers
/api/votes, /api/leaderboard and /metrics; a real VoteWorker on ``redis://arena-worker:...`` consumes,
dead-letters a forged entry, acknowledges and publishes. Redis's ACL LOG must then hold no refusal: the
rules cover everything the code does. Then the refusals: the web user cannot XACK, XGROUP, write a
snapshot, a view or a voter flag, or run CONFIG / FLUSHALL / ACL; the worker cannot HSET a battle, touch a
session, a rate limit or an owner, or XADD to the vote stream (it can to the dead-letter stream); a Lua
script cannot do for either what the user may not (Redis 7 checks the script's commands).

Needs Redis 7 (selectors): ``scripts/ensure_redis7.sh`` unpacks Debian's into ``.cache/redis7`` (test.sh
runs it); a ``redis-server`` 7+ on PATH or ``ARENA_REDIS7`` works too. Without one the module is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import redis

from arena.cli.serve import ArenaStack
from arena.keys import api_session_key, battle_key, owners_key, rate_limit_key
from arena.ops.redis_acl import ACL_USERS, server_arguments
from arena.ops.redis_server import free_port
from leaderboard.store.redis_keys import (
    dead_letter_stream_key,
    flagged_voters_key,
    snapshot_key,
    vote_consumer_group,
    vote_stream_key,
)
from leaderboard.views.published import view_snapshot_key
from leaderboard.worker import VoteWorker
from tests.helpers import PROJECT_ROOT, TEST_VOTE_KEY, arena_settings, make_vote, wait_until
from tests.serve_support import archived_vote_ids, cast, new_battle

OPERATOR_PASSWORD = "operator-password-for-the-acl-test"
PASSWORDS = {"arena-web": "web-password-for-the-acl-test", "arena-worker": "worker-password-for-the-acl-test"}
VOTES = 6
METRICS_TOKEN = "acl-test-metrics-token"


def redis7_binary() -> str | None:
    candidates = [os.environ.get("ARENA_REDIS7"), str(PROJECT_ROOT / ".cache" / "redis7" / "redis-server"),
                  shutil.which("redis-server")]
    for candidate in filter(None, candidates):
        try:
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=10).stdout
        except OSError:
            continue
        found = re.search(r"v=(\d+)\.", version)
        if found and int(found.group(1)) >= 7:
            return candidate
    return None


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory):
    """A real Redis 7 with the deployment's users; yields its port."""
    binary = redis7_binary()
    if binary is None:
        pytest.skip("no Redis 7 (ACL selectors): run scripts/ensure_redis7.sh, or set ARENA_REDIS7")
    port = free_port()
    data = tmp_path_factory.mktemp("redis7")
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data), "--save", "", "--appendonly", "no",
         "--requirepass", OPERATOR_PASSWORD, *server_arguments(PASSWORDS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    operator = redis.Redis(port=port, password=OPERATOR_PASSWORD)

    def answers():
        assert process.poll() is None, process.stderr.read().decode()
        try:
            return operator.ping()
        except redis.exceptions.ConnectionError:
            return False

    wait_until(answers, what="the Redis 7 with the ACL users to answer")
    yield port
    process.terminate()
    process.wait(timeout=10)


def url(port: int, user: str) -> str:
    return f"redis://{user}:{PASSWORDS[user]}@127.0.0.1:{port}/0"


@pytest.fixture
def operator(acl_redis):
    client = redis.Redis(port=acl_redis, password=OPERATOR_PASSWORD)
    client.flushall()
    client.acl_log_reset()
    yield client
    client.close()


def refused(call) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    except redis.exceptions.ResponseError as error:  # a script's command: Redis 7.0 words it its own way
        return "user executing the script can't" in str(error)
    return False


def test_the_users_are_what_the_table_says(operator):
    rules = {line.split()[1]: line for line in operator.acl_list()}
    assert set(rules) == {"default", "arena-web", "arena-worker"}
    assert "+@all" in rules["default"]  # the operator's
    for user in ACL_USERS:
        assert " -@all " in rules[user.name] and "+@all" not in rules[user.name] and "~*" not in rules[user.name]
        assert rules[user.name].count("(") == len(user.grants) - 1  # one selector per grant after the root


def test_the_web_side_and_the_worker_run_under_their_users_and_nothing_else(operator, acl_redis, tmp_path):
    settings = arena_settings(url(acl_redis, "arena-web"), tmp_path / "web", run_worker=False,
                              metrics_token=METRICS_TOKEN)
    worker_client = redis.Redis.from_url(url(acl_redis, "arena-worker"))
    worker = VoteWorker(worker_client, tmp_path / "worker", vote_key=TEST_VOTE_KEY, refit_interval=0.1)
    # one forged entry (as whoever stole a password would write it): the worker must dead-letter it
    operator.xadd(vote_stream_key("arena"), {"event": make_vote(vote_id="forged-1").model_dump_json()})
    with ArenaStack(settings) as stack, httpx.Client(base_url=stack.url, timeout=30) as http:
        battles = [new_battle(http, f"question number {n}") for n in range(VOTES)]
        for battle in battles:
            assert cast(http, battle).status_code == 200

        def consume():
            worker.process_once(block_ms=100)
            return len(archived_vote_ids(tmp_path / "worker"))

        wait_until(lambda archived: archived == VOTES, observe=consume, what=f"{VOTES} votes archived by arena-worker")
        snapshot = worker.refit_and_publish()
        assert snapshot.total_votes == VOTES
        assert worker.stats.dead_lettered == 1 and worker.stats.refused_signature == 1
        board = wait_until(lambda body: body["total_votes"] == VOTES,
                           observe=lambda: http.get("/api/leaderboard").json(), what="the web side to read the board")
        assert len(board["models"]) >= 2
        assert http.get("/api/leaderboard/categories").status_code == 200
        assert http.get("/api/leaderboard", params={"style_control": "true"}).status_code == 200
        assert http.get("/api/models").status_code == 200 and http.get("/").status_code == 200
        assert len(http.get("/api/votes").text.strip().splitlines()) >= VOTES
        metrics = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert metrics.status_code == 200 and "arena_votes_refused_signature 1.0" in metrics.text
        assert http.get("/healthz").status_code == 200
    worker.close()
    assert operator.xlen(dead_letter_stream_key("arena")) == 1  # the worker's XADD to the dead letters
    assert operator.xpending(vote_stream_key("arena"), vote_consumer_group("arena"))["pending"] == 0
    # the figure: every command of a real run allowed, none refused
    assert operator.acl_log() == []


def test_the_web_user_cannot_consume_publish_flag_or_administer(operator, acl_redis):
    web = redis.Redis.from_url(url(acl_redis, "arena-web"))
    stream = vote_stream_key("arena")
    operator.xgroup_create(stream, vote_consumer_group("arena"), id="0", mkstream=True)
    entry = operator.xadd(stream, {"event": "{}"})
    refusals = {
        "XACK": lambda: web.xack(stream, vote_consumer_group("arena"), entry),
        "XGROUP": lambda: web.xgroup_create(stream, "mine", id="0"),
        "XREADGROUP": lambda: web.xreadgroup(vote_consumer_group("arena"), "web", {stream: ">"}),
        "XTRIM": lambda: web.xtrim(stream, maxlen=0),
        "DEL the stream": lambda: web.delete(stream),
        "SET the snapshot": lambda: web.set(snapshot_key("arena"), "{}"),
        "SET a view": lambda: web.set(view_snapshot_key("arena", "overall"), "{}"),
        "HSET a voter flag": lambda: web.hset(flagged_voters_key("arena"), "voter", "{}"),
        "PUBLISH a snapshot": lambda: web.publish("arena:leaderboard:updates", "fake"),
        "a key outside the prefix": lambda: web.set("other-app:key", "x"),
        "CONFIG": lambda: web.config_get("requirepass"),
        "FLUSHALL": lambda: web.flushall(),
        "ACL": lambda: web.acl_list(),
        "KEYS": lambda: web.keys("*"),
        "SCRIPT FLUSH": lambda: web.script_flush(),
        "CLIENT KILL": lambda: web.client_kill_filter(_type="normal"),
        "a script that writes the snapshot": lambda: web.eval(
            "return redis.call('SET', KEYS[1], 'x')", 1, snapshot_key("arena")),
        "a script that names no key": lambda: web.eval(
            "return redis.call('XACK', 'arena:votes', 'arena:leaderboard-workers', ARGV[1])", 0, entry),
    }
    allowed = [name for name, call in refusals.items() if not refused(call)]
    assert allowed == []
    assert operator.xlen(stream) == 1 and operator.get(snapshot_key("arena")) is None
    # what it may do on the stream: append (the vote script), read (/api/votes, the gauges)
    assert web.xadd(stream, {"event": "{}"}) and len(web.xrange(stream)) == 2


def test_the_worker_user_cannot_touch_battles_sessions_owners_or_the_vote_stream_but_dead_letters(operator, acl_redis):
    worker = redis.Redis.from_url(url(acl_redis, "arena-worker"))
    stream = vote_stream_key("arena")
    refusals = {
        "HSET a battle": lambda: worker.hset(battle_key("arena", "b1"), "state", "voted"),
        "HGET a battle": lambda: worker.hget(battle_key("arena", "b1"), "state"),
        "SET a session": lambda: worker.set(api_session_key("arena", "s1"), "1"),
        "HINCRBY a rate limit": lambda: worker.hincrby(rate_limit_key("arena", "vote", "v1"), "1", 1),
        "HSET an owner": lambda: worker.hset(owners_key("arena"), "mallory", "{}"),
        "XADD to the vote stream": lambda: worker.xadd(stream, {"event": "{}"}),
        "DEL the vote stream": lambda: worker.delete(stream),
        "XTRIM the vote stream": lambda: worker.xtrim(stream, maxlen=0),
        "CONFIG": lambda: worker.config_set("appendonly", "no"),
        "FLUSHALL": lambda: worker.flushall(),
        "SHUTDOWN": lambda: worker.execute_command("SHUTDOWN", "NOSAVE"),
        "a script that XADDs a vote": lambda: worker.eval(
            "return redis.call('XADD', KEYS[1], '*', 'event', '{}')", 1, stream),
        "a script that names no key": lambda: worker.eval(
            "return redis.call('HSET', 'arena:battle:b1', 'state', 'voted')", 0),
    }
    allowed = [name for name, call in refusals.items() if not refused(call)]
    assert allowed == []
    assert operator.exists(battle_key("arena", "b1"), stream) == 0
    assert worker.xadd(dead_letter_stream_key("arena"), {"reason": "test"})  # the one stream it may append to
    assert worker.set(snapshot_key("arena"), "{}") and worker.publish("arena:leaderboard:updates", "x") >= 0


def test_the_prefix_is_escaped_in_the_key_patterns():
    rules = " ".join(server_arguments(PASSWORDS, prefix="{shard1}[x]"))
    assert "~{shard1}\\[x\\]:battle:*" in rules and "&{shard1}\\[x\\]:leaderboard:updates" in rules
    assert Path(PROJECT_ROOT / "scripts" / "ensure_redis7.sh").is_file()
