"""Shared fixtures: one real Redis server per test session (the embedded one), a clean db per test."""

from __future__ import annotations

import pytest
import redis

from arena.ops.redis_server import EmbeddedRedis
from tests.helpers import arena_settings


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
    from arena.cli.serve import ArenaStack

    with ArenaStack(arena_settings(redis_url, tmp_path)) as stack:
        yield stack


@pytest.fixture
def browser():
    """A real headless Chromium (Debian's, driven by Playwright), closed after the test."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    from tests.browser_support import CHROMIUM_ARGS, chromium_path

    with playwright_sync.sync_playwright() as driver:
        instance = driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def six_model_stack(redis_url, tmp_path):
    """The arena with seven models (the five demo ones and two more from a models file, one with an
    organisation), offering K-way battles of 3, 4 and 6."""
    import json

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
