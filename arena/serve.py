"""Start the whole arena in one process: Redis (embedded unless REDIS_URL), demo endpoints,
the leaderboard worker, and the web app (API + Gradio page) under uvicorn."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
import sys
import threading
import time
from pathlib import Path

import redis
import redis.asyncio as aioredis
import uvicorn

from arena.battles import BattleService
from arena.client_address import forwarded_allow_ips
from arena.model_config import ModelConfigError, load_model_specs
from arena.demo_models import DEMO_MODELS, demo_model_specs
from arena.demo_server import DemoServer
from arena.metrics import ArenaMetrics
from arena.identity import VoterIdentity, VoterSecret, forget_secret_in_redis
from arena.redis_server import EmbeddedRedis, RedisUnavailableError, connect
from arena.settings import Settings, fairness_options, limit_options
from arena.web.app import create_app
from arena.web.context import ArenaContext

log = logging.getLogger("arena")

# Redis connections one web process's request handlers share, and how long a request waits for one.
REDIS_CONNECTIONS = 64
REDIS_POOL_WAIT_SECONDS = 10


class ArenaStack:
    """Everything ``serve`` runs, started in dependency order and stopped in reverse.

    ``start(foreground=False)`` runs the web server in a background thread (tests, embedding);
    ``serve_forever()`` runs it in the calling thread until Ctrl-C.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.embedded_redis: EmbeddedRedis | None = None
        self.redis_url: str | None = None
        self.demo_server = None
        self.endpoints = None
        self.matchmaker = None
        self.worker_stop = threading.Event()
        self.worker_thread: threading.Thread | None = None
        self.server: uvicorn.Server | None = None
        self.server_thread: threading.Thread | None = None
        self.app = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def prepare(self) -> "ArenaStack":
        settings = self.settings
        # The model file first: a mistake there should stop us before anything is started.
        configured = load_model_specs(settings.models_file) if settings.models_file else []
        if len(configured) + (len(DEMO_MODELS) if settings.demo else 0) < 2:
            raise ModelConfigError(f"{settings.models_file}: {len(configured)} model(s) configured; "
                                   "a battle needs at least 2 (add models, or add --demo)")
        if settings.redis_url:
            self.redis_url = settings.redis_url
        else:
            self.embedded_redis = EmbeddedRedis(Path(settings.data_dir) / "redis",
                                                maxmemory=settings.redis_maxmemory).start()
            self.redis_url = self.embedded_redis.url
        sync_redis = connect(self.redis_url)

        specs = []
        if settings.demo:
            self.demo_server = DemoServer(token_delay=settings.demo_token_delay,
                                          first_token_delay=settings.demo_first_token_delay).start()
            specs.extend(demo_model_specs(self.demo_server.url))
        specs.extend(configured)
        duplicated = sorted(name for name, count in Counter(spec.name for spec in specs).items() if count > 1)
        if duplicated:
            raise ModelConfigError(f"{settings.models_file}: model name(s) {duplicated} clash with the demo models; "
                                   "rename them or start with --no-demo")

        from arena.endpoints import EndpointPool
        from arena.matchmaker import build_matchmaker

        self.endpoints = EndpointPool(specs)
        self.matchmaker = matchmaker = build_matchmaker(settings.matchmaker, sync_redis, prefix=settings.prefix,
                                                        **fairness_options(vars(settings)))
        # A blocking pool: past its size a request waits for a connection rather than failing with
        # "Too many connections" (redis-py's default pool raises at 100 under load, a 503 per vote).
        async_redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            self.redis_url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_POOL_WAIT_SECONDS))
        forget_secret_in_redis(sync_redis, settings.prefix)
        metrics = ArenaMetrics()
        identity = VoterIdentity(VoterSecret(configured=settings.voter_secret, data_dir=settings.data_dir,
                                             rotation_days=settings.voter_id_rotation_days))
        battles = BattleService(async_redis, self.endpoints, matchmaker, prefix=settings.prefix,
                                battle_ttl=settings.battle_ttl, max_prompt_chars=settings.max_prompt_chars,
                                max_turns=settings.max_turns, metrics=metrics, **limit_options(vars(settings)))
        self.app = create_app(ArenaContext(settings=settings, redis=async_redis, battles=battles, identity=identity,
                                           metrics=metrics))

        if settings.run_worker:
            from leaderboard.worker import VoteWorker

            worker = VoteWorker(redis.Redis.from_url(self.redis_url), Path(settings.data_dir),
                                prefix=settings.prefix, refit_interval=settings.refit_interval,
                                rate_deanonymised=settings.rate_deanonymised,
                                flagged_voter_weight=settings.flagged_voter_weight,
                                voter_alpha=settings.voter_flag_alpha)
            self.worker_thread = threading.Thread(target=worker.run_forever, args=(self.worker_stop,),
                                                  name="leaderboard-worker", daemon=True)
            self.worker_thread.start()

        # Proxy headers only from the operator's trusted proxies (none by default), never uvicorn's
        # own default trust of loopback (behind which any local process could name any address).
        trusted = forwarded_allow_ips(settings.trusted_proxies)
        config = uvicorn.Config(self.app, host=settings.host, port=settings.port, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=3,
                                proxy_headers=bool(trusted), forwarded_allow_ips=trusted)
        self.server = uvicorn.Server(config)
        return self

    def start(self, timeout: float = 30.0) -> "ArenaStack":
        """Prepare and run the web server in a background thread; return once it accepts requests."""
        self.prepare()
        self.server_thread = threading.Thread(target=self._run_server, name="uvicorn", daemon=True)
        self.server_thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.server_thread.is_alive():
                raise RuntimeError(f"the web server did not start on {self.url} (port in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url} within {timeout}s")
            time.sleep(0.05)
        return self

    def serve_forever(self) -> None:
        self.prepare()
        print(f"Arena is up: {self.url}  (API docs at {self.url}/api/docs; Ctrl-C stops)", flush=True)
        self._run_server()

    def _run_server(self) -> None:
        """uvicorn's Server.run, plus closing the endpoint clients on the same event loop: their
        connections belong to the loop that served the answers, and it is gone once run returns."""
        async def serve_then_close() -> None:
            try:
                await self.server.serve()
            finally:
                await self.endpoints.aclose()

        with asyncio.Runner(loop_factory=self.server.config.get_loop_factory()) as runner:
            runner.run(serve_then_close())

    def stop(self) -> None:
        """Stop everything that was started, in reverse order; safe to call more than once."""
        if self.server is not None:
            self.server.should_exit = True
        if self.server_thread is not None:
            self.server_thread.join(timeout=10)
        server_running = self.server_thread is not None and self.server_thread.is_alive()
        if self.endpoints is not None and not server_running:
            # the server closes them when it stops; this covers a stack prepared but never served
            # (aclose is idempotent, so a second stop() does nothing)
            asyncio.run(self.endpoints.aclose())
        self.worker_stop.set()
        if self.worker_thread is not None:
            self.worker_thread.join(timeout=10)
        if self.demo_server is not None:
            self.demo_server.stop()
        if self.embedded_redis is not None:
            self.embedded_redis.stop()

    def __enter__(self) -> "ArenaStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The HTTP clients log one line per model request at INFO: noise, and it names endpoint hosts.
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print("Arena settings:\n" + settings.describe(), flush=True)
    stack = ArenaStack(settings)
    try:
        stack.serve_forever()
    except (RedisUnavailableError, ModelConfigError) as error:
        print(f"arena: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


