import json
import logging
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import redis

from arena.ops.redis_server import EmbeddedRedis, free_port
from leaderboard.data.archive import VoteArchive, archive_path
from leaderboard.fit import fit_plackett_luce
from leaderboard.models.result import BRADLEY_TERRY, ELO, PLACKETT_LUCE, SANDWICH, method_name
from leaderboard.store.redis_keys import (
    dead_letter_stream_key,
    snapshot_channel,
    snapshot_key,
    vote_consumer_group,
    vote_stream_key,
    worker_lock_key,
)
from leaderboard.views.snapshot import Snapshot
from leaderboard.worker import DEFAULT_PRIOR_PRECISION, MIN_VOTES_TO_FIT, VoteWorker, main
from leaderboard.worker.catch_up import votes_missing
from tests.helpers import PROJECT_ROOT, TEST_SIGNER, TEST_VOTE_KEY, make_vote, signed_entry, wait_until

STREAM = vote_stream_key("arena")
GROUP = vote_consumer_group("arena")

# A connected set of pairwise votes with known per-model counts: every model wins and loses.
CYCLE = [("alpha", "beta", "model_a"), ("beta", "gamma", "model_a"), ("gamma", "alpha", "model_a"),
         ("alpha", "beta", "model_b"), ("beta", "gamma", "tie"), ("alpha", "gamma", "tie (bothbad)")]


def cycle_votes(n):
    return [make_vote(*CYCLE[k % len(CYCLE)]) for k in range(n)]


def xadd_votes(client, votes, prefix="arena"):
    for vote in votes:
        client.xadd(vote_stream_key(prefix), signed_entry(vote))


def drain(worker, limit=100):
    """process_once until nothing is left (non-blocking)."""
    total = 0
    for _ in range(limit):
        handled = worker.process_once(block_ms=0)
        if handled == 0:
            return total
        total += handled
    raise AssertionError("the stream did not drain")


def pending_count(client, prefix="arena"):
    return client.xpending(vote_stream_key(prefix), vote_consumer_group(prefix))["pending"]


def archived_ids(data_dir):
    """Vote ids of the complete lines of the archive: a running worker may be half-way through
    appending the last one (a line counts once its newline is written, as the archive's own reader says)."""
    data = archive_path(data_dir).read_bytes() if archive_path(data_dir).exists() else b""
    complete = data[:data.rfind(b"\n") + 1]
    return [json.loads(line)["vote_id"] for line in complete.splitlines()]


def snapshot_in_redis(client, prefix="arena"):
    raw = client.get(snapshot_key(prefix))
    return None if raw is None else Snapshot.model_validate_json(raw)


def wait_until_idle(client, idle_ms, prefix="arena"):
    """Until every pending entry has gone unacknowledged for longer than ``idle_ms``: from then
    on a worker with ``claim_idle_ms=idle_ms`` reclaims them all."""
    wait_until(lambda pending: all(entry["time_since_delivered"] > idle_ms for entry in pending),
               observe=lambda: client.xpending_range(vote_stream_key(prefix), vote_consumer_group(prefix),
                                                     "-", "+", 10_000),
               what=f"every pending entry to be idle for more than {idle_ms} ms")


def wait_for_snapshot(worker, total_votes):
    """Until the worker has published a snapshot of ``total_votes`` votes; returns it."""
    return wait_until(lambda snapshot: snapshot is not None and snapshot.total_votes == total_votes,
                      observe=lambda: worker.last_snapshot, what=f"a snapshot of {total_votes} votes")


def test_votes_flow_to_archive_and_published_snapshot(redis_client, tmp_path):
    votes = cycle_votes(24)
    xadd_votes(redis_client, votes)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(snapshot_channel("arena"))
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="w1", batch=10)
    assert drain(worker) == 24
    assert pending_count(redis_client) == 0
    assert sorted(archived_ids(tmp_path)) == sorted(v.vote_id for v in votes)

    published = worker.refit_and_publish()
    snapshot = snapshot_in_redis(redis_client)
    assert snapshot == published
    assert snapshot.total_votes == 24
    assert snapshot.method == method_name(BRADLEY_TERRY, SANDWICH)
    # each of the 6 cycle votes involves two of the three models; alpha/beta/gamma take part in 4 each
    assert {row.model: row.votes for row in snapshot.rows} == {"alpha": 16, "beta": 16, "gamma": 16}
    assert [row.rating for row in snapshot.rows] == sorted((row.rating for row in snapshot.rows), reverse=True)
    assert len(snapshot.covariance) == 3 and snapshot.models
    message = pubsub.get_message(timeout=2)
    assert message is not None and float(message["data"]) == snapshot.generated_at
    pubsub.close()


def test_resp3_client(redis_url, tmp_path):
    client = redis.Redis.from_url(redis_url, protocol=3)
    xadd_votes(client, cycle_votes(12))
    worker = VoteWorker(client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="w1", batch=5, catch_up=False)
    assert drain(worker) == 12
    assert worker.refit_and_publish().total_votes == 12
    assert pending_count(client) == 0
    client.close()


def test_counts_are_rebuilt_from_the_archive_on_start(redis_client, tmp_path):
    xadd_votes(redis_client, cycle_votes(12))
    first = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="w1")
    drain(first)
    first.close()
    again = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="w2")
    assert drain(again) == 0
    assert again.refit_and_publish().total_votes == 12


def test_few_votes_fall_back_to_online_elo_with_a_note(redis_client, tmp_path):
    xadd_votes(redis_client, cycle_votes(3))
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY)
    drain(worker)
    snapshot = worker.refit_and_publish()
    assert snapshot.method == ELO
    assert f"only 3 rated vote(s) so far; a fit needs at least {MIN_VOTES_TO_FIT}" in snapshot.note
    assert snapshot.total_votes == 3
    assert {row.model for row in snapshot.rows} == {"alpha", "beta", "gamma"}
    assert all(row.lower < row.rating < row.upper for row in snapshot.rows)


def test_disconnected_graph_falls_back_to_online_elo(redis_client, tmp_path):
    votes = [make_vote("a", "b", "model_a"), make_vote("a", "b", "model_b"),
             make_vote("c", "d", "model_a"), make_vote("c", "d", "model_b")] * 3
    votes = [make_vote(*v.models, v.outcome) for v in votes]  # fresh vote ids
    xadd_votes(redis_client, votes)
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY)
    drain(worker)
    snapshot = worker.refit_and_publish()
    assert snapshot.method == ELO
    assert "2 groups that were never compared" in snapshot.note
    assert snapshot.total_votes == 12


def test_kwise_votes_are_fitted_by_plackett_luce_with_the_pairwise_ones(redis_client, tmp_path):
    pairwise = cycle_votes(12)
    kwise = [make_vote(ranking=[["alpha"], ["beta", "gamma"]]), make_vote(ranking=[["gamma"], ["alpha"], ["beta"]])]
    named = make_vote("alpha", "beta", "model_a").model_copy(update={"mode": "named"})
    xadd_votes(redis_client, pairwise + kwise + [named])
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY)
    drain(worker)
    snapshot = worker.refit_and_publish()
    assert snapshot.method == method_name(PLACKETT_LUCE, SANDWICH)
    assert snapshot.total_votes == 14  # the named-mode vote is archived, not rated
    assert "1 named-mode vote(s) archived but not rated" in snapshot.note
    assert "2 K-wise vote(s)" in snapshot.note
    assert {row.model: row.votes for row in snapshot.rows} == {"alpha": 10, "beta": 10, "gamma": 10}
    assert len(archived_ids(tmp_path)) == 15


def test_plackett_luce_snapshot_with_pair_multiplicities_equals_the_fit_of_every_vote(redis_client, tmp_path):
    # The worker passes each (pair, outcome) once with its count; the published snapshot must be
    # the one the fit of every vote written out as its own ranking gives (the old path).
    pairwise = cycle_votes(120)  # each of the 6 cycle votes 20 times
    kwise = [make_vote(ranking=[["alpha"], ["beta"], ["gamma"], ["delta"]]),
             make_vote(ranking=[["delta"], ["gamma", "alpha"], ["beta"]]),
             make_vote(ranking=[["beta"], ["delta"], ["alpha"], ["gamma"]]),
             make_vote(ranking=[["gamma"], ["delta"], ["beta"], ["alpha"]])]
    xadd_votes(redis_client, pairwise + kwise)
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY)
    drain(worker)
    worker.refit_and_publish()
    snapshot = snapshot_in_redis(redis_client)
    assert snapshot.method == method_name(PLACKETT_LUCE, SANDWICH) and snapshot.total_votes == 124

    rankings, multiplicity = worker.tally.all_rankings()
    assert len(rankings) == 6 + 4 and sorted(multiplicity) == [1] * 4 + [20] * 6  # 6 classes of 20 pairwise votes
    every_vote = [[[a], [b]] if v.outcome == "model_a" else [[b], [a]] if v.outcome == "model_b" else [[a, b]]
                  for v in pairwise for a, b in [v.models]]
    every_vote += [[list(group) for group in v.ranking] for v in kwise]
    expected = fit_plackett_luce(every_vote, ci="sandwich", alpha=DEFAULT_PRIOR_PRECISION)
    assert snapshot.models == expected.models
    np.testing.assert_allclose(snapshot.theta, expected.theta, atol=1e-10)
    np.testing.assert_allclose(snapshot.covariance, expected.covariance, rtol=1e-10, atol=1e-12)
    rows = {row.model: row for row in snapshot.rows}
    for k, name in enumerate(expected.models):
        assert rows[name].rating == pytest.approx(expected.rating[k], abs=1e-8)
        assert rows[name].lower == pytest.approx(expected.lower[k], abs=1e-8)
        assert rows[name].upper == pytest.approx(expected.upper[k], abs=1e-8)
        assert rows[name].votes == expected.votes[k]
    assert {name: row.votes for name, row in rows.items()} == {"alpha": 84, "beta": 84, "gamma": 84, "delta": 4}


def test_duplicate_and_malformed_entries(redis_client, tmp_path, caplog):
    votes = cycle_votes(12)
    xadd_votes(redis_client, votes[:6])
    redis_client.xadd(STREAM, signed_entry("{not json"))
    redis_client.xadd(STREAM, {"vote": votes[0].model_dump_json()})  # wrong field name
    bad_outcome = votes[0].model_dump()
    bad_outcome.update(vote_id="bad-outcome-1", outcome="draw")
    redis_client.xadd(STREAM, signed_entry(json.dumps(bad_outcome)))
    xadd_votes(redis_client, votes)  # the first six again: redeliveries of the same votes
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, batch=4, catch_up=False)
    with caplog.at_level(logging.WARNING, logger="leaderboard.worker"):
        assert drain(worker) == 21
    assert pending_count(redis_client) == 0
    assert worker.tally.rated == 12
    assert worker.stats.duplicates == 6
    assert sorted(archived_ids(tmp_path)) == sorted(v.vote_id for v in votes)
    dead = redis_client.xrange(dead_letter_stream_key("arena"))
    reasons = [fields[b"reason"].decode() for _id, fields in dead]
    assert len(reasons) == 3
    assert "Invalid JSON" in reasons[0]
    assert reasons[1] == "the entry has no 'event' field"
    assert "unknown outcome 'draw'" in reasons[2]
    assert dead[2][1][b"event"].decode().startswith("{")
    assert caplog.text.count("is malformed") == 3


def test_the_catch_up_takes_from_a_stream_page_only_the_valid_votes_the_archive_lacks(redis_client):
    archived, new = cycle_votes(2)
    xadd_votes(redis_client, [archived])
    redis_client.xadd(STREAM, signed_entry("{not json"))
    redis_client.xadd(STREAM, {"vote": new.model_dump_json()})  # wrong field name
    bad_outcome = new.model_dump()
    bad_outcome.update(vote_id="bad-outcome-1", outcome="draw")
    redis_client.xadd(STREAM, signed_entry(json.dumps(bad_outcome)))
    redis_client.xadd(STREAM, signed_entry(json.dumps(["a", "list"])))
    xadd_votes(redis_client, [new, archived])
    page = redis_client.xrange(STREAM)
    # the malformed entries are left to the consumer reading them through the group (it dead-letters them)
    assert votes_missing(page, {archived.vote_id}, TEST_SIGNER) == [new]
    assert votes_missing(page, {archived.vote_id, new.vote_id}, TEST_SIGNER) == []


def _read_as_crashed_consumer(client, count):
    """What a worker that died after XREADGROUP would leave: entries pending for consumer w1."""
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    reply = client.xreadgroup(GROUP, "w1", {STREAM: ">"}, count=count)
    return reply[0][1]


def test_crash_before_archiving_loses_nothing(redis_client, tmp_path):
    votes = cycle_votes(20)
    xadd_votes(redis_client, votes)
    taken = _read_as_crashed_consumer(redis_client, 8)
    assert len(taken) == 8 and pending_count(redis_client) == 8
    wait_until_idle(redis_client, 10)
    fresh = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="w2", claim_idle_ms=10, catch_up=False)
    drain(fresh)
    assert fresh.stats.claimed == 8
    assert pending_count(redis_client) == 0
    assert fresh.tally.rated == 20
    assert sorted(archived_ids(tmp_path)) == sorted(v.vote_id for v in votes)
    assert fresh.refit_and_publish().total_votes == 20


def test_crash_after_archiving_before_ack_counts_once(redis_client, tmp_path):
    votes = cycle_votes(20)
    xadd_votes(redis_client, votes)
    taken = _read_as_crashed_consumer(redis_client, 8)
    with VoteArchive(archive_path(tmp_path)) as archive:  # the crashed worker got this far
        archive.extend([votes[k] for k in range(8)])
    wait_until_idle(redis_client, 10)
    fresh = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="w2", claim_idle_ms=10, catch_up=False)
    drain(fresh)
    assert len(taken) == 8
    assert fresh.stats.duplicates == 8 and fresh.stats.counted == 12
    assert pending_count(redis_client) == 0
    assert fresh.tally.rated == 20
    ids = archived_ids(tmp_path)
    assert len(ids) == 20 and set(ids) == {v.vote_id for v in votes}


def test_crash_mid_write_torn_line_is_repaired_and_the_vote_redelivered(redis_client, tmp_path, caplog):
    votes = cycle_votes(20)
    xadd_votes(redis_client, votes)
    _read_as_crashed_consumer(redis_client, 8)
    with VoteArchive(archive_path(tmp_path)) as archive:
        archive.extend(votes[:7])
    with open(archive_path(tmp_path), "ab") as handle:  # the 8th line was being written
        handle.write(votes[7].model_dump_json().encode()[:50])
    wait_until_idle(redis_client, 10)
    with caplog.at_level(logging.WARNING, logger="leaderboard.data.archive"):
        fresh = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY,
                           consumer="w2", claim_idle_ms=10, catch_up=False)
        drain(fresh)
    assert "line 8 is incomplete" in caplog.text
    assert fresh.stats.duplicates == 7 and fresh.tally.rated == 20
    ids = archived_ids(tmp_path)
    assert len(ids) == 20 and set(ids) == {v.vote_id for v in votes}


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


class CrashingWorker(VoteWorker):
    """A worker that dies at a chosen point of its second batch."""

    def __init__(self, *args, crash_in, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_in = crash_in
        self.batches = 0

    def _archive_votes(self, votes):
        self.batches += 1
        if self.crash_in == "archive" and self.batches == 2:
            raise SimulatedCrash("killed before the archive append")
        return super()._archive_votes(votes)

    def _acknowledge(self, ack_ids, dead):
        if self.crash_in == "ack" and self.batches == 2:
            raise SimulatedCrash("killed between the archive append and XACK")
        super()._acknowledge(ack_ids, dead)


@pytest.mark.parametrize("crash_in", ["archive", "ack"])
def test_worker_crash_mid_batch_then_another_worker_finishes(redis_client, tmp_path, crash_in):
    votes = cycle_votes(30)
    xadd_votes(redis_client, votes)
    doomed = CrashingWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY,
                            consumer="w1", batch=10, crash_in=crash_in, catch_up=False)
    doomed.process_once(block_ms=0)
    with pytest.raises(SimulatedCrash):
        doomed.process_once(block_ms=0)
    doomed.let_go()  # the process is gone: its archive lock goes with it
    wait_until_idle(redis_client, 10)
    survivor = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY,
                          consumer="w2", claim_idle_ms=10, catch_up=False)
    drain(survivor)
    assert survivor.stats.claimed == 10
    assert survivor.stats.duplicates == (10 if crash_in == "ack" else 0)
    assert survivor.tally.rated == 30
    assert pending_count(redis_client) == 0
    ids = archived_ids(tmp_path)
    assert len(ids) == 30 and set(ids) == {v.vote_id for v in votes}


def test_entry_deleted_while_pending_is_acknowledged(redis_client, tmp_path, caplog):
    xadd_votes(redis_client, cycle_votes(12))
    taken = _read_as_crashed_consumer(redis_client, 3)
    redis_client.xdel(STREAM, taken[0][0])
    wait_until_idle(redis_client, 10)
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="w2", claim_idle_ms=10, catch_up=False)
    with caplog.at_level(logging.WARNING, logger="leaderboard.worker"):
        drain(worker)
    assert "was deleted from the stream before it was archived" in caplog.text
    assert pending_count(redis_client) == 0
    assert worker.tally.rated == 11


def test_same_consumer_rereads_its_own_pending_entries(redis_client, tmp_path):
    votes = cycle_votes(12)
    xadd_votes(redis_client, votes)
    doomed = CrashingWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY,
                            consumer="w1", batch=6, crash_in="ack", catch_up=False)
    doomed.process_once(block_ms=0)
    with pytest.raises(SimulatedCrash):
        doomed.process_once(block_ms=0)
    doomed.let_go()
    # restarted under the same name (claim_idle_ms large: nothing is claimed from others)
    again = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY,
                       consumer="w1", claim_idle_ms=60_000, catch_up=False)
    drain(again)
    assert again.stats.duplicates == 6 and again.stats.claimed == 0
    assert again.tally.rated == 12 and pending_count(redis_client) == 0


WORKER_SCRIPT = textwrap.dedent("""
    import sys, threading, redis
    from leaderboard.worker import VoteWorker
    client = redis.Redis.from_url(sys.argv[1])
    worker = VoteWorker(client, sys.argv[2], consumer=sys.argv[3], batch=3, claim_idle_ms=100,
                        refit_interval=0.1, lease_ttl_ms=600, vote_key=sys.argv[4])
    worker.run_forever(threading.Event())
""")


def _start_worker_process(url, data_dir, consumer):
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, url, str(data_dir), consumer, TEST_VOTE_KEY],
                            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_mid_stream_then_restart_is_exactly_once(redis_client, redis_url, tmp_path):
    sent = []
    process = _start_worker_process(redis_url, tmp_path, "p1")
    try:
        # keep voting while the worker consumes, and kill it in the middle of that
        def vote_and_check():
            batch = cycle_votes(3)
            xadd_votes(redis_client, batch)
            sent.extend(batch)
            return len(archived_ids(tmp_path)) >= 30

        wait_until(vote_and_check, interval=0.005, what="the worker process to archive 30 votes as they keep coming")
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
    archived_at_kill = len(archived_ids(tmp_path))
    late = cycle_votes(12)
    xadd_votes(redis_client, late)
    sent += late
    assert archived_at_kill < len(sent)
    restarted = _start_worker_process(redis_url, tmp_path, "p2")
    try:
        wait_until(lambda seen: seen == (len(sent), 0),
                   observe=lambda: (getattr(snapshot_in_redis(redis_client), "total_votes", None),
                                    pending_count(redis_client)),
                   what=f"a published snapshot of all {len(sent)} votes and nothing pending")
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=10)
    ids = archived_ids(tmp_path)
    assert len(ids) == len(sent) and set(ids) == {v.vote_id for v in sent}


def _run_in_thread(worker):
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_worker_survives_a_redis_restart(tmp_path, caplog):
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="always").start()
    client = redis.Redis.from_url(server.url, socket_connect_timeout=0.5)
    worker = VoteWorker(client, tmp_path / "data", vote_key=TEST_VOTE_KEY, refit_interval=0.05)
    stop, thread = _run_in_thread(worker)
    try:
        with caplog.at_level(logging.INFO, logger="leaderboard.worker"):
            xadd_votes(client, cycle_votes(12))
            wait_for_snapshot(worker, 12)
            server.stop()
            wait_until(lambda: "Redis is not answering" in caplog.text, what="the worker to log the outage")
            server = EmbeddedRedis(tmp_path / "redis", port=server.port, appendfsync="always").start()
            xadd_votes(client, cycle_votes(12))
            # "answering again" is logged after the step that published: wait for both
            wait_for_snapshot(worker, 24)
            wait_until(lambda: "Redis is answering again" in caplog.text, what="the worker to log the recovery")
    finally:
        stop.set()
        thread.join(timeout=10)
        server.stop()
    assert not thread.is_alive()
    assert caplog.text.count("Redis is not answering") == 1
    assert "Redis is answering again" in caplog.text
    assert len(archived_ids(tmp_path / "data")) == 24


def test_one_worker_holds_the_lease_and_a_standby_takes_over(redis_client, tmp_path, caplog):
    # A lease long enough that a holder starved of CPU for a while (a busy CI box) keeps it: the
    # standby must take over because the holder left, not because its thread was not scheduled.
    first = VoteWorker(redis_client, tmp_path / "one", vote_key=TEST_VOTE_KEY,
                       consumer="one", refit_interval=0.05, lease_ttl_ms=1500)
    second = VoteWorker(redis_client, tmp_path / "two", vote_key=TEST_VOTE_KEY,
                        consumer="two", refit_interval=0.05, lease_ttl_ms=1500)
    stop_first, thread_first = _run_in_thread(first)
    wait_until(lambda: redis_client.get(worker_lock_key("arena")) is not None,
               what="the first worker to take the lease")
    stop_second, thread_second = _run_in_thread(second)
    try:
        early = cycle_votes(12)
        xadd_votes(redis_client, early)
        wait_until(lambda: first.tally.rated == 12, what="the holder to count the 12 early votes")
        assert second.stats.counted == 0  # on standby
        stop_first.set()  # the holder leaves (releasing its lease)
        thread_first.join(timeout=10)
        late = cycle_votes(6)
        xadd_votes(redis_client, late)
        # the standby takes over, copies the 12 early votes its own data dir lacks, consumes the rest
        wait_for_snapshot(second, 18)
    finally:
        stop_first.set()
        stop_second.set()
        thread_first.join(timeout=10)
        thread_second.join(timeout=10)
    assert len(archived_ids(tmp_path / "one")) == 12
    assert sorted(archived_ids(tmp_path / "two")) == sorted(v.vote_id for v in early + late)


def record_lease_refusals(worker) -> list:
    """A list that grows by one each time the worker finds the lease held by another: a test that
    checks nothing happens on standby waits for the worker to have looked, not for a guessed time."""
    refusals = []
    hold = worker.lease.hold

    def hold_and_record() -> bool:
        held = hold()
        if not held:
            refusals.append(time.monotonic())
        return held

    worker.lease.hold = hold_and_record
    return refusals


def test_holder_that_loses_its_lease_stops_consuming_until_it_wins_it_back(redis_client, tmp_path, caplog):
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY,
                        consumer="one", refit_interval=0.05, lease_ttl_ms=300)
    refusals = record_lease_refusals(worker)
    stop, thread = _run_in_thread(worker)
    try:
        with caplog.at_level(logging.INFO, logger="leaderboard.worker"):
            xadd_votes(redis_client, cycle_votes(12))
            wait_until(lambda: worker.tally.rated == 12, what="the holder to count 12 votes")
            # the lease lapsed (say the process was paused) and another worker took it
            redis_client.set(worker_lock_key("arena"), "intruder", px=60_000)
            wait_until(lambda: worker._archive is None, what="the worker to stop consuming")
            xadd_votes(redis_client, cycle_votes(6))
            looked_since = len(refusals)  # the next look may have begun before the votes came: wait for two
            wait_until(lambda: len(refusals) >= looked_since + 2,
                       what="the standby worker to find the lease taken twice more after the votes came")
            assert worker.stats.counted == 12  # on standby: the new votes wait in the stream
            redis_client.delete(worker_lock_key("arena"))  # the other worker went away
            wait_for_snapshot(worker, 18)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert "another worker took the refit lease" in caplog.text
    assert len(archived_ids(tmp_path)) == 18


def _tally_of_archive(data_dir):
    from leaderboard.worker import VoteTally

    return VoteTally.from_events(VoteArchive(archive_path(data_dir), read_only=True))


def _same_counts(tally, other):
    return (tally.pairs.arrays().count.tolist() == other.pairs.arrays().count.tolist()
            and tally.pairs.models == other.pairs.models and tally.rankings == other.rankings
            and tally.named == other.named)


@pytest.mark.parametrize("replaced", [False, True])
def test_a_worker_that_wins_its_lease_back_reads_only_what_was_appended_meanwhile(redis_client, tmp_path, caplog,
                                                                                  replaced):
    xadd_votes(redis_client, cycle_votes(12))
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY,
                        consumer="one", refit_interval=0.05, lease_ttl_ms=300)
    stop, thread = _run_in_thread(worker)
    try:
        with caplog.at_level(logging.INFO, logger="leaderboard.worker"):
            # the catch-up at start copies all 12 (the data directory is fresh)
            wait_until(lambda: worker.tally.rated == 12 and worker.stats.stream_checked == 12,
                       what="the start-up catch-up to copy the 12 votes")
            assert worker.stats.read_from_archive == 0
            redis_client.set(worker_lock_key("arena"), "intruder", px=60_000)
            wait_until(lambda: worker._archive is None, what="the worker to stop consuming")
            # meanwhile another worker on the same data directory archives 6 more votes
            xadd_votes(redis_client, cycle_votes(5) + [make_vote(ranking=[["alpha"], ["gamma"], ["beta"]])])
            other = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="two")
            assert drain(other) == 6
            other.close()
            if replaced:  # e.g. restored from a backup: another file, so it must be read whole
                copy = tmp_path / "copy.jsonl"
                copy.write_bytes(archive_path(tmp_path).read_bytes())
                copy.replace(archive_path(tmp_path))
            redis_client.delete(worker_lock_key("arena"))
            wait_for_snapshot(worker, 18)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert worker.stats.read_from_archive == (18 if replaced else 6)
    # the catch-up after taking the lease back checks only the stream entries added since the last one
    assert worker.stats.stream_checked == 12 + (18 if replaced else 6)
    assert ("rebuilding the counts from the whole archive" in caplog.text) == replaced
    assert _same_counts(worker.tally, _tally_of_archive(tmp_path))
    assert worker.last_snapshot.method == method_name(PLACKETT_LUCE, SANDWICH)


def test_main_with_unreachable_redis_exits_2_with_one_line(tmp_path, capsys):
    port = free_port()
    code = main(["--redis-url", f"redis://:secret@127.0.0.1:{port}/0", "--data-dir", str(tmp_path)])
    assert code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"leaderboard worker: cannot reach Redis at redis://:***@127.0.0.1:{port}/0")
    assert "secret" not in captured.err and "Traceback" not in captured.err


def test_cli_dispatch_with_unreachable_redis(tmp_path):
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "leaderboard", "worker", "--redis-url", f"redis://127.0.0.1:{port}/0",
                             "--data-dir", str(tmp_path)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "cannot reach Redis" in result.stderr and "Traceback" not in result.stderr


def test_main_without_a_redis_url(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["--data-dir", str(tmp_path)]) == 2
    assert "pass --redis-url" in capsys.readouterr().err


def test_losing_the_lease_while_starting_is_a_state_not_an_exception(redis_client, tmp_path, caplog):
    xadd_votes(redis_client, cycle_votes(12))
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, consumer="one", lease_ttl_ms=300)
    worker.state.lease_held()  # as run_forever does once it holds the lease...
    redis_client.set(worker_lock_key("arena"), "intruder", px=60_000)  # ...which then went to another worker
    with caplog.at_level(logging.WARNING, logger="leaderboard.worker"):
        assert worker.process_once(block_ms=0) == 0
    assert worker._archive is None and worker.state.phase.value == "closed"
    assert "another worker took the refit lease" in caplog.text
    # it read nothing from the group under another worker's lease (the catch-up's page only went to its own archive)
    assert redis_client.xinfo_groups(STREAM)[0]["last-delivered-id"] == b"0-0"
    with pytest.raises(RuntimeError, match="not consuming"):
        worker.refit_and_publish()
    worker.state.lease_not_needed()
    assert drain(worker) == 12  # it resumes where it let go: nothing lost, nothing counted twice
    assert worker.tally.rated == 12 and worker.stats.duplicates == 12 and pending_count(redis_client) == 0
