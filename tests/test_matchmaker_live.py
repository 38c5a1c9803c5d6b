"""The live matchmaker against a real Redis: snapshot, online belief, exclusions and pins."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from arena.matchmaker import build_matchmaker
from arena.matchmaker.keys import online_belief_key, pins_key
from arena.matchmaker.state import PRIOR_SD_NATS, online_pair_update, online_ranking_update
from arena.models import availability
from leaderboard.data.rankings import Unranked
from leaderboard.models.sandwich import centred
from leaderboard.store.redis_keys import DEFAULT_PREFIX, snapshot_channel, snapshot_key
from leaderboard.views.snapshot import Snapshot
from tests.helpers import TEST_VOTE_KEY, make_snapshot, publish, signed_entry, wait_until


def test_choice_follows_the_published_snapshot(redis_client):
    """Two uncertain near-equal models among settled far-apart ones: active pairs them as often
    as the per-pair cap allows (20% of the strategy's battles; 1/28 = 3.6% would be uniform)."""
    models = [f"m{i}" for i in range(8)]
    theta = np.array([3.0, 2.0, 1.0, 0.01, 0.0, -1.0, -2.0, -3.0])
    covariance = np.eye(8) * 1e-3
    covariance[3, 3] = covariance[4, 4] = 0.3
    publish(redis_client, make_snapshot(models, theta, covariance, [1000] * 8))
    matchmaker = build_matchmaker("active", redis_client, floor=0.05)
    rng = np.random.default_rng(0)
    picks = [frozenset(matchmaker.choose(models, 2, rng).models) for _ in range(300)]
    counts = Counter(picks)
    assert counts.most_common(1)[0][0] == frozenset({"m3", "m4"})
    assert counts[frozenset({"m3", "m4"})] > 40  # ~57 expected at the cap, ~11 if uniform


def test_online_update_in_redis_matches_the_python_update(redis_client):
    models = ["a", "b", "c", "d"]
    theta = np.array([0.5, 0.0, -0.2, -0.4])
    covariance = np.diag([0.2, 0.1, 0.05, 0.3])
    snapshot = make_snapshot(models, theta, covariance, [100] * 4)
    publish(redis_client, snapshot)
    first = build_matchmaker("active", redis_client)
    second = build_matchmaker("active", redis_client)  # another web process
    first.record_outcome("a", "b", "model_b")
    second.record_vote(["c", "d", "a"], [["d"], ["a", "c"]])
    first.record_outcome("b", "d", "tie")

    mean = theta.copy()
    variance = np.diag(centred(covariance)).copy()  # the live belief centres the fit
    online_ranking_update(mean, variance, [[1], [0]])
    online_ranking_update(mean, variance, [[3], [0, 2]])
    online_ranking_update(mean, variance, [[1, 3]])
    belief = second.belief(models)
    assert np.allclose(belief.mean, mean, atol=1e-12)
    assert np.allclose(np.diag(belief.covariance), variance, atol=1e-12)
    assert belief.votes.tolist() == [102, 102, 101, 102]


def test_a_partial_ranking_moves_the_online_belief_as_its_pairs_with_the_unranked(redis_client):
    """"Best only": the pick beats each unranked model; the unranked are not tied with each other."""
    models = ["a", "b", "c", "d"]
    theta = np.array([0.5, 0.0, -0.2, -0.4])
    covariance = np.diag([0.2, 0.1, 0.05, 0.3])
    publish(redis_client, make_snapshot(models, theta, covariance, [100] * 4))
    matchmaker = build_matchmaker("active", redis_client)
    matchmaker.record_vote(models, [["c"], Unranked(["a", "b", "d"])])
    mean = theta.copy()
    variance = np.diag(centred(covariance)).copy()
    for loser in (0, 1, 3):
        online_pair_update(mean, variance, 2, loser, 1.0)
    belief = matchmaker.belief(models)
    assert np.allclose(belief.mean, mean, atol=1e-12)
    assert np.allclose(np.diag(belief.covariance), variance, atol=1e-12)


def test_a_new_snapshot_starts_a_fresh_online_belief(redis_client):
    models = ["a", "b", "c"]
    publish(redis_client, make_snapshot(models, [0.1, 0.0, -0.1], np.eye(3) * 0.1, [10] * 3, generated_at=1.0))
    matchmaker = build_matchmaker("active", redis_client, snapshot_ttl=3600)  # only an announcement re-reads
    for _ in range(5):
        matchmaker.record_outcome("c", "a", "model_a")
    assert matchmaker.belief(models).mean[2] > matchmaker.belief(models).mean[0]
    assert redis_client.exists(online_belief_key("arena", repr(1.0)))
    publish(redis_client, make_snapshot(models, [0.4, 0.0, -0.4], np.eye(3) * 0.01, [20] * 3, generated_at=2.0))
    # the announcement on the channel triggers the re-read, once it reaches this process's subscription
    belief = wait_until(lambda belief: belief.votes.tolist() == [20, 20, 20], observe=lambda: matchmaker.belief(models),
                        what="the matchmaker to re-read the announced snapshot")
    assert belief.mean.tolist() == pytest.approx([0.4, 0.0, -0.4])
    assert belief.votes.tolist() == [20, 20, 20]


def test_operator_exclusion_and_pins_apply_across_processes(redis_client):
    models = [f"m{i}" for i in range(6)]
    web_one = build_matchmaker("active", redis_client)
    web_two = build_matchmaker("top-k", redis_client)
    availability.pause(redis_client, DEFAULT_PREFIX, "m2")
    web_one.pin(["m0", "m5"], 0.5)
    rng = np.random.default_rng(4)
    picks = [web_two.choose(models, 2, rng) for _ in range(400)]
    assert all("m2" not in s.models for s in picks)
    pinned = [s for s in picks if set(s.models) == {"m0", "m5"}]
    assert len(pinned) > 0.4 * len(picks)
    assert all(s.probability >= 0.5 for s in pinned)
    availability.resume(redis_client, DEFAULT_PREFIX, "m2")
    web_one.unpin(["m5", "m0"])
    picks = [web_two.choose(models, 2, rng) for _ in range(200)]
    assert any("m2" in s.models for s in picks)


def test_models_missing_from_the_snapshot_get_the_prior_and_are_explored(redis_client):
    models = [f"m{i}" for i in range(6)]
    publish(redis_client, make_snapshot(models[:5], np.linspace(1, -1, 5), np.eye(5) * 0.002, [3000] * 5))
    matchmaker = build_matchmaker("active", redis_client, new_model_votes=300, boost_share=0.5)
    rng = np.random.default_rng(7)
    picks = [matchmaker.choose(models, 2, rng).models for _ in range(300)]
    assert sum("m5" in p for p in picks) > 0.5 * len(picks)


def test_ci_reduction_reads_pair_battle_counts(redis_client):
    models = ["a", "b", "c"]
    publish(redis_client, make_snapshot(models, [0.0, 0.0, 0.0], np.eye(3) * 0.1, [100] * 3))
    matchmaker = build_matchmaker("ci-reduction", redis_client, floor=0.0, pair_counts_ttl=0.0)
    for _ in range(50):
        matchmaker.record_outcome("a", "b", "tie")
    rng = np.random.default_rng(1)
    picks = [frozenset(matchmaker.choose(models, 2, rng).models) for _ in range(300)]
    assert picks.count(frozenset({"a", "b"})) < 0.1 * len(picks)


def test_a_new_model_first_voted_on_starts_from_the_field_mean_not_its_opponents(redis_client):
    """record_vote and choose must agree on a newcomer's prior: the whole field's mean (0 here),
    not the mean of the battle's other models (a's 1.5)."""
    models = ["a", "b", "c", "d"]
    theta = np.array([1.5, 0.5, -0.5, -1.5])
    covariance = np.eye(4) * 0.05
    publish(redis_client, make_snapshot(models, theta, covariance, [500] * 4))
    matchmaker = build_matchmaker("active", redis_client)
    assert matchmaker.belief(models + ["new"]).mean[-1] == pytest.approx(0.0)  # what choose sees
    matchmaker.record_outcome("a", "new", "model_b")

    mean = np.array([theta[0], 0.0])
    variance = np.array([np.diag(centred(covariance))[0], PRIOR_SD_NATS**2])
    online_ranking_update(mean, variance, [[1], [0]])
    from_opponent = np.array([theta[0], theta[0]])
    online_ranking_update(from_opponent, np.array([variance[0], PRIOR_SD_NATS**2]), [[1], [0]])
    belief = matchmaker.belief(["a", "new"])
    assert belief.mean.tolist() == pytest.approx(mean.tolist(), abs=1e-12)
    assert abs(belief.mean[1] - from_opponent[1]) > 0.5


def test_a_pin_that_leaves_no_room_for_the_floor_is_refused_when_pinned(redis_client):
    models = ["a", "b", "c", "d"]
    matchmaker = build_matchmaker("active", redis_client, floor=0.1)
    matchmaker.pin(["a", "b"], 0.6)
    with pytest.raises(ValueError, match="exceed all battles"):
        matchmaker.pin(["c", "d"], 0.5)  # 0.6 + 0.5 + floor 0.1 > 1: every choice would fail
    assert redis_client.hlen(pins_key("arena")) == 1
    matchmaker.pin(["b", "a"], 0.9)  # re-pinning a set replaces its share: 0.9 + 0.1 fits
    assert redis_client.hlen(pins_key("arena")) == 1
    rng = np.random.default_rng(2)
    picks = [matchmaker.choose(models, 2, rng) for _ in range(200)]
    assert sum(set(s.models) == {"a", "b"} for s in picks) > 0.8 * len(picks)


def test_lua_pair_update_equals_the_python_one(redis_client):
    """state.ONLINE_PAIR_UPDATE_LUA against state.online_pair_update, one step at a time, on wins
    and ties, confident and uncertain pairs, and steps that hit the MIN_VARIANCE floor."""
    from arena.matchmaker.state import MIN_VARIANCE, ONLINE_PAIR_UPDATE_LUA, online_pair_update

    one_step = redis_client.register_script(ONLINE_PAIR_UPDATE_LUA + """
local mu = {tonumber(ARGV[1]), tonumber(ARGV[2])}
local var = {tonumber(ARGV[3]), tonumber(ARGV[4])}
online_pair_update(mu, var, 1, 2, tonumber(ARGV[5]), tonumber(ARGV[6]))
return {string.format('%.17g', mu[1]), string.format('%.17g', mu[2]),
        string.format('%.17g', var[1]), string.format('%.17g', var[2])}
""")
    rng = np.random.default_rng(3)
    cases = [(rng.normal(0, 2), rng.normal(0, 2), rng.uniform(1e-4, 2), rng.uniform(1e-4, 2), score)
             for score in (1.0, 0.5) for _ in range(40)]
    cases += [(3.0, -3.0, MIN_VARIANCE, MIN_VARIANCE, 1.0), (-5.0, 5.0, 1e-3, 1e-3, 1.0)]
    floored = np.zeros(2)
    for mu_w, mu_l, var_w, var_l, score in cases:
        mean, variance = np.array([mu_w, mu_l]), np.array([var_w, var_l])
        online_pair_update(mean, variance, 0, 1, score)
        floored += variance == MIN_VARIANCE
        in_redis = [float(x) for x in one_step(args=[repr(float(v)) for v in (mu_w, mu_l, var_w, var_l, score)]
                                                + [repr(MIN_VARIANCE)])]
        assert in_redis == pytest.approx([*mean, *variance], rel=1e-14, abs=1e-300)
    assert floored.all()  # the floor was exercised on both sides


def test_the_belief_key_is_derived_from_the_snapshot_id(redis_client):
    """A snapshot's explicit id names the online belief; one written before the field existed
    (no id in its JSON) keeps the name its belief key had: repr(generated_at)."""
    models = ["a", "b"]
    snapshot = make_snapshot(models, [0.1, -0.1], np.eye(2) * 0.1, [10, 10], generated_at=5.0)
    redis_client.set(snapshot_key("arena"), snapshot.model_copy(update={"id": "fit-7"}).model_dump_json())
    matchmaker = build_matchmaker("active", redis_client, snapshot_ttl=3600)  # only an announcement re-reads
    matchmaker.record_outcome("a", "b", "model_b")
    assert redis_client.exists(online_belief_key("arena", "fit-7"))
    assert not redis_client.exists(online_belief_key("arena", repr(5.0)))

    old_json = snapshot.model_dump_json(exclude={"id"})
    assert '"id"' not in old_json and Snapshot.model_validate_json(old_json).id == repr(5.0)
    redis_client.set(snapshot_key("arena"), old_json)
    redis_client.publish(snapshot_channel("arena"), "new snapshot")
    wait_until(lambda belief: belief.votes.tolist() == [10, 10], observe=lambda: matchmaker.belief(models),
               what="the matchmaker to re-read the announced snapshot (no online vote under its id yet)")
    matchmaker.record_outcome("a", "b", "model_b")
    assert redis_client.exists(online_belief_key("arena", repr(5.0)))


def test_the_worker_announces_the_snapshot_id_the_matchmaker_names_its_belief_after(redis_client, tmp_path,
                                                                                      monkeypatch):
    """Both sides of the contract: the worker publishes Snapshot.id on snapshot_channel (here an
    id that is not repr(generated_at), so a worker still announcing the time would fail), and the
    matchmaker's belief for that snapshot is at online_belief_key(prefix, that id)."""
    import leaderboard.worker.consumer as consumer
    from leaderboard.data.events import StyleFeatures, VoteEvent
    from leaderboard.store.redis_keys import vote_stream_key
    from leaderboard.worker import VoteWorker

    fitted = consumer.build_snapshot
    monkeypatch.setattr(consumer, "build_snapshot",
                        lambda *args, **kwargs: fitted(*args, **kwargs).model_copy(update={"id": "fit-42"}))
    style = [StyleFeatures(tokens=10, headers=0, list_items=0, bold=0)] * 2
    for k, (models, outcome) in enumerate([(["a", "b"], "model_a"), (["b", "c"], "model_b"), (["c", "a"], "tie")]):
        vote = VoteEvent(vote_id=f"vote-{k:04d}", battle_id=f"battle-{k:04d}", mode="anonymous", models=models,
                         outcome=outcome, voter_id="voter", served_at=1.0, voted_at=2.0, selection_probability=0.5,
                         style=style)
        redis_client.xadd(vote_stream_key("arena"), signed_entry(vote))
    announcements = redis_client.pubsub(ignore_subscribe_messages=True)
    announcements.subscribe(snapshot_channel("arena"))
    worker = VoteWorker(redis_client, tmp_path, vote_key=TEST_VOTE_KEY, prefix="arena")
    try:
        while worker.process_once(block_ms=0):
            pass
        published = worker.refit_and_publish()
    finally:
        worker.close()
    message = wait_until(lambda message: message is not None, observe=lambda: announcements.get_message(timeout=0.1),
                         what="the worker's announcement on snapshot_channel")
    announcements.close()
    assert message is not None and message["data"].decode() == published.id == "fit-42"
    assert Snapshot.model_validate_json(redis_client.get(snapshot_key("arena"))).id == "fit-42"
    matchmaker = build_matchmaker("active", redis_client)
    matchmaker.record_outcome("a", "c", "model_b")
    assert redis_client.exists(online_belief_key("arena", message["data"].decode()))
