"""Shared fixtures: one real Redis server per test session (the embedded one), a clean db per test;
and the markers that let ``./test.sh --quick`` leave out what is slow (see STACK_FIXTURES).

Under pytest-xdist (``./test.sh`` runs several workers) each worker is its own session: its own
embedded Redis in its own ``tmp_path_factory`` directory (``.../popen-gwN/``), its own free ports
(``free_port``), its own Chromium; so workers share nothing but the machine."""

from __future__ import annotations

import json

import pytest
import redis

from arena.ops.redis_server import EmbeddedRedis
from tests.browser_support import CHROMIUM_ARGS, chromium_path
from tests.helpers import arena_settings

# A test that uses one of these fixtures (directly or through another fixture) starts the whole
# arena: web server, demo endpoints and worker, seconds of CPU each time. It is marked `stack`.
STACK_FIXTURES = frozenset({"arena_stack", "six_model_stack"})

# Modules that start an arena (ArenaStack, or `python -m arena serve` / worker processes) from
# their own fixtures or inline: every test in them is marked `stack`. A module that starts one and
# is missing here only makes `./test.sh --quick` slower (it stays under 2 minutes: test.sh).
STACK_MODULES = frozenset({
    "test_api", "test_api_regenerate", "test_battle_modes_api", "test_connections", "test_drain", "test_flood",
    "test_leaks", "test_metrics", "test_multi_process", "test_named_share", "test_operator_cli", "test_owner_names",
    "test_owners", "test_page_queue_flood", "test_redis_acl", "test_redis_kill", "test_self_identification",
    "test_sessions",
    "test_serve_cli", "test_serve_lifecycle", "test_trust", "test_views", "test_voter_anomaly",
    "test_voter_secret", "test_votes_export",
})

# Tests whose assertions time something on the wall clock (answers overlap, a p99, a window of a
# rate limit): with other tests of ours competing for the 2 cores they fail for want of CPU, not
# for a fault. Marked `serial`: ./test.sh runs them after the parallel run, one at a time.
SERIAL_TESTS = frozenset({
    "test_answer_limits.py::test_an_answer_past_its_time_limit_is_shown_cut_not_failed",
    "test_api.py::test_twenty_battles_stream_at_once",
    "test_browser.py::test_six_voters_in_their_own_browsers_are_answered_at_once",
    "test_connections.py::test_idle_connections_from_one_address_leave_healthz_answering_and_slow_bodies_are_cut",
    "test_endpoints.py::test_twenty_concurrent_streams_overlap",
    "test_flood.py::test_a_refused_flood_leaves_normal_voters_p99_within_2x",
    # the queue guard's abandonment and stream counts ride on Gradio's own timing: 21 of 20 admitted,
    # and a ninth stream let in, once each with three other workers on the 2 cores
    "test_queue_guard.py::test_a_client_holds_at_most_eight_event_streams",
    "test_queue_guard.py::test_joins_past_the_queue_size_are_refused_and_the_queue_recovers_without_a_restart",
    "test_rate_limit.py::test_no_window_of_the_period_ever_sees_more_than_the_limit",
    "test_redis_kill.py::test_redis_sigkill_under_load_loses_no_acknowledged_vote",
    "test_trust.py::test_the_answer_budget_refuses_before_anything_is_spent",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.stem
        if module in STACK_MODULES or STACK_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.stack)
        if "browser" in item.fixturenames:
            item.add_marker(pytest.mark.browser)
        if f"{item.path.name}::{item.originalname}" in SERIAL_TESTS:
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server process on 127.0.0.1 for the whole session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendfsync="everysec").start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    """A decode_responses=False client on a freshly flushed server."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def arena_stack(redis_url, tmp_path):
    """The whole arena (web app, API, demo endpoints, worker) on 127.0.0.1, as ``serve`` runs it."""
    # imported when a stack starts, not at collection: it loads Gradio (3 s of CPU), which the
    # workers of `./test.sh --quick` never need
    from arena.cli.serve import ArenaStack

    with ArenaStack(arena_settings(redis_url, tmp_path)) as stack:
        yield stack


@pytest.fixture
def browser():
    """A real headless Chromium (Debian's, driven by Playwright), closed after the test."""
    playwright_sync = pytest.importorskip("playwright.sync_api")

    with playwright_sync.sync_playwright() as driver:
        instance = driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def six_model_stack(redis_url, tmp_path):
    """The arena with seven models (the five demo ones and two more from a models file, one with an
    organisation), offering K-way battles of 3, 4 and 6."""
    # imported when a stack starts, not at collection (Gradio's start-up time: see arena_stack)
    from arena.battles.requests import kway_sizes
    from arena.cli.serve import ArenaStack
    from arena.models.demo_server import DemoServer

    with DemoServer(token_delay=0.001) as extra:
        models_file = tmp_path / "models.json"
        models_file.write_text(json.dumps({"models": [
            {"name": "extra-verbose", "base_url": extra.url, "model_id": "demo-verbose",
             "organisation": "Example Labs", "description": "A second verbose demo model."},
            {"name": "extra-steps", "base_url": extra.url, "model_id": "demo-steps"},
        ]}))
        settings = arena_settings(redis_url, tmp_path, models_file=models_file, demo=True,
                                  kway_sizes=kway_sizes("3,4,6"))
        with ArenaStack(settings) as stack:
            yield stack
