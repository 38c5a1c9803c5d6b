"""Redis is not an open door (issue 26 items 3 and 4, issue 27 item 9).

- The embedded Redis requires its generated password; the URL file that commands read carries it.
- The worker counts only vote events signed by a web process (HMAC, key outside Redis): 200 XADDed
  forgeries, unsigned or wrongly signed, are dead-lettered with their reason, never archived or counted.
- After a real run (embedded Redis, worker, one vote over HTTP) everything in the data dir is 0600 / 0700.
- The public note rounds the flagged-vote figures, so a flag does not show the refit it happened at.
"""

from __future__ import annotations

import os
import stat

import httpx
import pytest
import redis

from arena.cli.serve import ArenaStack
from arena.ops.redis_server import EmbeddedRedis, RedisUnavailableError, connect
from leaderboard.live.policy import down_weighted
from leaderboard.live.tally import VoteTally
from leaderboard.store.redis_keys import REFUSED_SIGNATURE_FIELD, dead_letter_stream_key, refit_stats_key
from leaderboard.store.urls import embedded_url_file, running_arena_redis_url
from leaderboard.store.vote_signature import BAD_SIGNATURE, UNSIGNED, VoteSigner
from leaderboard.worker import VoteWorker
from tests.helpers import arena_settings, make_vote, wait_until
from tests.serve_support import archived_vote_ids, cast, new_battle


def test_the_embedded_redis_refuses_a_client_without_its_password(tmp_path):
    with EmbeddedRedis(tmp_path / "data" / "redis") as server:
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port).xadd("arena:votes", {"event": "{}"})
        with pytest.raises(RedisUnavailableError, match="refused the credentials"):
            connect(f"redis://:wrong@127.0.0.1:{server.port}/0")
        url_file = embedded_url_file(server.data_dir)
        assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
        found = running_arena_redis_url(None, tmp_path / "data")  # as the operator CLIs and rebuild find it
        assert found == server.url and connect(found).ping()
        assert server.password not in " ".join(open(f"/proc/{server.pid}/cmdline").read().split("\0"))
        first_password = server.password
    with EmbeddedRedis(tmp_path / "data" / "redis") as again:  # kept across restarts: a worker reconnects
        assert again.password == first_password


def test_forged_vote_events_are_dead_lettered_and_a_signed_one_is_counted(redis_client, tmp_path):
    signer = VoteSigner.load(tmp_path)  # the data dir's key, as a serve sharing it would sign with
    assert stat.S_IMODE((tmp_path / "secrets" / "vote.key").stat().st_mode) == 0o600
    forged = [make_vote() for _ in range(200)]
    for vote in forged[:100]:
        redis_client.xadd("arena:votes", {"event": vote.model_dump_json()})  # no signature
    for vote in forged[100:]:
        wrong = VoteSigner(b"an attacker's guess at the key").signature(vote.model_dump_json())
        redis_client.xadd("arena:votes", {"event": vote.model_dump_json(), "sig": wrong})
    real = make_vote(vote_id="real-vote-1")
    redis_client.xadd("arena:votes", signer.fields(real.model_dump_json()))
    tampered = signer.fields(make_vote(vote_id="tampered-1").model_dump_json())
    tampered["event"] = tampered["event"].replace('"model_a"', '"model_b"', 1)  # signed, then changed
    redis_client.xadd("arena:votes", tampered)

    worker = VoteWorker(redis_client, tmp_path)
    while worker.process_once(block_ms=0):
        pass
    assert archived_vote_ids(tmp_path) == ["real-vote-1"]
    assert worker.tally.rated == 1 and worker.stats.counted == 1
    assert worker.stats.refused_signature == 201 and worker.stats.dead_lettered == 201
    reasons = [fields[b"reason"].decode() for _, fields in redis_client.xrange(dead_letter_stream_key("arena"))]
    assert reasons.count(UNSIGNED) == 100 and reasons.count(BAD_SIGNATURE) == 101
    assert int(redis_client.hget(refit_stats_key("arena"), REFUSED_SIGNATURE_FIELD)) == 201


def test_a_real_run_leaves_the_data_dir_private(tmp_path):
    data_dir = tmp_path / "data"
    settings = arena_settings(None, data_dir, vote_key=None, refit_interval=0.1)  # embedded Redis, data-dir key
    with ArenaStack(settings) as stack, httpx.Client(base_url=stack.url, timeout=30) as http:
        battle = new_battle(http)
        assert cast(http, battle).status_code == 200
        wait_until(lambda: len(archived_vote_ids(data_dir)) == 1, what="the signed vote archived")
        assert stack.embedded_redis.password in embedded_url_file(data_dir / "redis").read_text()
        loose = []
        for directory, dirnames, filenames in os.walk(data_dir):
            for name, wanted in [(directory, 0o700), *((os.path.join(directory, f), 0o600) for f in filenames)]:
                mode = stat.S_IMODE(os.lstat(name).st_mode)
                if mode != wanted:
                    loose.append((os.path.relpath(name, data_dir), oct(mode)))
        walked = {os.path.relpath(os.path.join(d, f), data_dir) for d, _, fs in os.walk(data_dir) for f in fs}
    assert {"votes.jsonl", "redis/redis.url", "redis/redis.password", "secrets/vote.key"} <= walked
    assert any(path.startswith("redis/appendonly") for path in walked)
    assert loose == []


def test_the_public_note_does_not_tell_when_an_id_is_burnt():
    tally = VoteTally()
    for index in range(300):
        tally.add(make_vote("alpha", "beta", "model_a").model_copy(update={"voter_id": f"honest-{index}"}))
    for _ in range(70):
        tally.add(make_vote("beta", "alpha", "model_a").model_copy(update={"voter_id": "attacker"}))
    _, before = down_weighted(tally, [], 0.0)
    _, after = down_weighted(tally, ["attacker"], 0.0)
    assert before == after  # 70 votes of 1 voter flagged: the note is word for word the same
    assert "fewer than 100 vote(s) of fewer than 10 flagged voter(s)" in after[0]
