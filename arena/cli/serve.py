"""Start the whole arena in one process: Redis (embedded unless REDIS_URL), demo endpoints,
the leaderboard worker, and the web app (API + Gradio page) under uvicorn.

Start-up binds the listening port first (a taken port is one line and exit code 2, before any
Redis is started) and says "Arena is up" only once the server accepts requests. SIGTERM and
SIGINT stop it in order: new battles refused and answers in flight finished (``arena.battles.drain``),
the web server, the worker, the demo endpoints, and the embedded Redis last (its append-only
file flushed). A second signal ends the answers still streaming at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import signal
import socket
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import redis
import redis.asyncio as aioredis
import uvicorn

from arena.battles.drain import Drain
from arena.battles.engine import BattleService
from arena.battles.limits import BattleLimits
from arena.battles.prompt_profile import load_language_identifier
from arena.battles.store import BattleStore
from arena.matchmaker import build_matchmaker
from arena.metrics import ArenaMetrics
from arena.models.config import ModelConfigError, load_model_specs
from arena.models.demo_models import DEMO_MODELS, demo_model_specs
from arena.models.demo_server import DemoServer
from arena.models.health import BreakerPolicy, ModelHealth
from arena.models.names import announce_configured
from arena.ops.log_limit import limit_repeated_lines
from arena.ops.redis_server import EmbeddedRedis, RedisUnavailableError, connect
from arena.ops.settings import Settings, fairness_options, limit_options
from arena.owners.catalog import ModelCatalog
from arena.owners.service import OwnerService
from arena.owners.store import OwnerStore
from arena.trust.client_address import forwarded_allow_ips
from arena.trust.identity import VoterIdentity, VoterSecret, forget_secret_in_redis
from arena.trust.secret_box import load_secret_box
from arena.trust.ssrf import EndpointGuard
from arena.web.app import create_app
from arena.web.connection_guard import guarded_protocol
from arena.web.context import ArenaContext
from leaderboard.data.private_files import private_dir
from leaderboard.store.vote_signature import VoteSigner
from leaderboard.worker import VoteWorker

log = logging.getLogger("arena")

# Redis connections one web process's request handlers share, and how long a request waits for one.
REDIS_CONNECTIONS = 64
REDIS_POOL_WAIT_SECONDS = 10

# How long ended answers may take to store their failed turn once cancelled.
CANCELLED_TURNS_SECONDS = 5.0


class ListenError(RuntimeError):
    """The listening address is taken or not allowed; the message names it and what to do."""


def bind_listener(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn (which listens on it), or a ListenError in one line."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        listener = socket.socket(family, kind, proto)
    except OSError as error:
        raise ListenError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        listener.bind(address)
    except OSError as error:
        listener.close()
        reason = error.strerror or str(error)
        hint = (" (is another arena running? pass another --port / ARENA_PORT)"
                if error.errno == errno.EADDRINUSE else "")
        raise ListenError(f"cannot listen on {host}:{port}: {reason.lower()}{hint}") from None
    return listener


# Open files a process needs besides its client connections (Redis pool, model clients, logs, libraries).
OTHER_OPEN_FILES = 512


def warn_open_files(max_connections: int) -> None:
    """Say so at start-up if --max-connections would run the process out of open files first."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and max_connections + OTHER_OPEN_FILES > soft:
        log.warning("--max-connections %d is too close to this process's open-files limit (ulimit -n %d): "
                    "raise the limit or lower --max-connections below %d", max_connections, soft,
                    max(16, soft - OTHER_OPEN_FILES))


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(failures=settings.breaker_failures, voters=settings.breaker_voters,
                         window=settings.breaker_window, streak=settings.breaker_streak,
                         first_probe=settings.breaker_first_probe,
                         max_probe=settings.breaker_max_probe)


class ArenaStack:
    """Everything ``serve`` runs, started in dependency order and stopped in reverse.

    ``start()`` runs the web server in a background thread (tests, embedding) and returns once it
    accepts requests; ``serve_forever()`` starts it and waits for SIGTERM or SIGINT; ``stop()``
    drains and stops everything in reverse order.
    """

    def __init__(self, settings: Settings, endpoint_guard=None, limit_logs: bool = False):
        self.settings = settings
        # repeated log lines limited on the process's handlers (serve's own logging; not an embedding test's)
        self.limit_logs = limit_logs
        # the SSRF guard for owners' endpoints; tests inject one with their own resolver
        self.endpoint_guard = endpoint_guard
        self.embedded_redis: EmbeddedRedis | None = None
        self.redis_url: str | None = None
        self.demo_server = None
        self.endpoints = None
        self.matchmaker = None
        self.worker_stop = threading.Event()
        self.worker_thread: threading.Thread | None = None
        self.server: uvicorn.Server | None = None
        self.server_thread: threading.Thread | None = None
        self.server_done = threading.Event()
        self.listener: socket.socket | None = None
        self.drain = Drain()
        self.app = None

    @property
    def port(self) -> int:
        """The bound port (``--port 0`` binds a free one)."""
        return self.listener.getsockname()[1] if self.listener is not None else self.settings.port

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def prepare(self) -> ArenaStack:
        settings = self.settings
        # The model file first: a mistake there should stop us before anything is started.
        configured = load_model_specs(settings.models_file) if settings.models_file else []
        if len(configured) + (len(DEMO_MODELS) if settings.demo else 0) < 2:
            raise ModelConfigError(f"{settings.models_file}: {len(configured)} model(s) configured; "
                                   "a battle needs at least 2 (add models, or add --demo)")
        # The port next: a taken one must not start a Redis, a worker or the demo endpoints.
        self.listener = bind_listener(settings.host, settings.port)
        private_dir(settings.data_dir)  # 0700: archive, keys, the embedded Redis's files (docs/privacy.md)
        if settings.redis_url:
            self.redis_url = settings.redis_url
        else:
            self.embedded_redis = EmbeddedRedis(Path(settings.data_dir) / "redis",
                                                maxmemory=settings.redis_maxmemory).start()
            self.redis_url = self.embedded_redis.url
            if self.embedded_redis.took_over:
                log.warning("data dir %s: the arena that owned it was killed; its redis-server (pid %d) was still "
                            "running and has been stopped first (append-only file flushed)", settings.data_dir,
                            self.embedded_redis.took_over)
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

        # A blocking pool: past its size a request waits for a connection rather than failing with
        # "Too many connections" (redis-py's default pool raises at 100 under load, a 503 per vote).
        async_redis = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
            self.redis_url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_POOL_WAIT_SECONDS))
        secret_box = load_secret_box(settings.data_dir, settings.secret_key)
        guard = self.endpoint_guard or EndpointGuard(allow_private=settings.allow_private_endpoints)
        # configured models plus the owners' approved ones, reloaded from Redis when they change
        self.endpoints = ModelCatalog(specs, async_redis, settings.prefix, secret_box, guard,
                                      battles_per_day=settings.model_battles_per_day)
        announce_configured(sync_redis, settings.prefix, [spec.name for spec in specs])  # for operator commands
        self.matchmaker = matchmaker = build_matchmaker(settings.matchmaker, sync_redis, prefix=settings.prefix,
                                                        **fairness_options(vars(settings)))
        forget_secret_in_redis(sync_redis, settings.prefix)
        metrics = ArenaMetrics()
        identity = VoterIdentity(VoterSecret(configured=settings.voter_secret, data_dir=settings.data_dir,
                                             rotation_days=settings.voter_id_rotation_days))
        health = ModelHealth(async_redis, settings.prefix, breaker_policy(settings))
        limits = BattleLimits(max_prompt_chars=settings.max_prompt_chars, max_turns=settings.max_turns,
                              kway_sizes=settings.kway_sizes, **limit_options(vars(settings)))
        # each vote's stream entry signed with a key Redis never sees; the worker counts only signed ones
        signer = VoteSigner.load(settings.data_dir, settings.vote_key)
        if settings.redis_url and not settings.vote_key:
            log.warning("votes are signed with the key in %s: a worker on another machine (or container) needs "
                        "the same one; set ARENA_VOTE_KEY on every web process and the worker", signer.source)
        battles = BattleService(BattleStore(async_redis, settings.prefix, settings.battle_ttl, signer), self.endpoints,
                                matchmaker, limits=limits, metrics=metrics, drain=self.drain,
                                keep_text=settings.release_text, health=health)
        owners = OwnerService(OwnerStore(async_redis, settings.prefix), secret_box, guard,
                              configured_names=lambda: self.endpoints.configured,
                              default_max_models=settings.owner_max_models)
        self.app = create_app(ArenaContext(settings=settings, redis=async_redis, battles=battles, identity=identity,
                                           metrics=metrics, owners=owners))
        load_language_identifier()  # now, not inside the first vote (about half a second)

        if settings.run_worker:
            worker = VoteWorker(redis.Redis.from_url(self.redis_url), Path(settings.data_dir),
                                prefix=settings.prefix, refit_interval=settings.refit_interval,
                                rate_deanonymised=settings.rate_deanonymised,
                                flagged_voter_weight=settings.flagged_voter_weight,
                                voter_alpha=settings.voter_flag_alpha,
                                min_category_votes=settings.min_category_votes, vote_key=settings.vote_key)
            self.worker_thread = threading.Thread(target=worker.run_forever, args=(self.worker_stop,),
                                                  name="leaderboard-worker", daemon=True)
            self.worker_thread.start()

        # Proxy headers only from the operator's trusted proxies (none by default), never uvicorn's
        # own default trust of loopback (behind which any local process could name any address).
        trusted = forwarded_allow_ips(settings.trusted_proxies)
        # Connections capped (per client address and overall) and slow requests cut off, at the socket
        # (arena.web.connection_guard): uvicorn alone keeps an idle or trickling connection open for ever.
        protocol = guarded_protocol(total=settings.max_connections, per_client=settings.max_connections_per_client,
                                    request_timeout=settings.request_timeout, trusted_proxies=trusted)
        warn_open_files(settings.max_connections)
        config = uvicorn.Config(self.app, host=settings.host, port=settings.port, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=3, http=protocol,
                                proxy_headers=bool(trusted), forwarded_allow_ips=trusted)
        if self.limit_logs:
            limit_repeated_lines()  # now: uvicorn.Config has just set up uvicorn's own handlers
        self.server = uvicorn.Server(config)
        return self

    def start(self, timeout: float = 30.0) -> ArenaStack:
        """Prepare and run the web server in a background thread; return once it accepts requests."""
        self.prepare()
        self.server_thread = threading.Thread(target=self._run_server, name="uvicorn", daemon=True)
        self.server_thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.server_thread.is_alive():
                raise RuntimeError(f"the web server did not start on {self.url} (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url} within {timeout}s")
            time.sleep(0.05)
        return self

    def serve_forever(self) -> None:
        """Start, say so, wait for SIGTERM or SIGINT (or the web server ending), then stop in
        order. A second signal ends the answers still streaming (no more grace)."""
        signals = (signal.SIGINT, signal.SIGTERM)

        signalled = threading.Event()

        def stop_requested(signum, frame) -> None:
            if signalled.is_set():
                self.drain.cancel_in_flight()
            signalled.set()
            self.server_done.set()  # wakes the wait below

        previous = {signum: signal.signal(signum, stop_requested) for signum in signals}
        try:
            self.start()
            print(f"Arena is up: {self.url}  (API docs at {self.url}/api/docs; Ctrl-C stops)", flush=True)
            self.server_done.wait()
            if not signalled.is_set():
                raise RuntimeError("the web server stopped by itself (see the log above)")
        finally:
            self._stop_with(previous)

    def _stop_with(self, previous_handlers: dict) -> None:
        try:
            self.stop()
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)

    def _run_server(self) -> None:
        """uvicorn's Server.serve on the bound socket, plus closing the endpoint clients on the same
        event loop: their connections belong to the loop that served the answers, and it is gone
        once serve returns."""
        async def serve_then_close() -> None:
            try:
                await self.server.serve(sockets=[self.listener])
            finally:
                await self.endpoints.aclose()

        try:
            with asyncio.Runner(loop_factory=self.server.config.get_loop_factory()) as runner:
                runner.run(serve_then_close())
        finally:
            self.server_done.set()

    def _drain(self) -> None:
        """Refuse new battles; give the answers in flight the grace period, then end them."""
        grace = self.settings.shutdown_grace
        log.info("stopping: refusing new battles, %d answer(s) in flight, grace %g s", self.drain.close(), grace)
        if not self.drain.wait_idle(grace):
            log.warning("stopping: ended %d answer(s) still streaming after the %g s grace period; "
                        "their battles are marked failed (voters start a new round)", self.drain.cancel_in_flight(),
                        grace)
            self.drain.wait_idle(CANCELLED_TURNS_SECONDS)
        log.info("stopped: %d answer(s) finished, %d ended", *self.drain.since_close())

    def stop(self) -> None:
        """Stop everything that was started, in reverse order; safe to call more than once."""
        server_running = self.server_thread is not None and self.server_thread.is_alive()
        if server_running:
            self._drain()
        if self.server is not None:
            self.server.should_exit = True
        if self.server_thread is not None:
            self.server_thread.join(timeout=10)
        elif self.listener is not None:
            self.listener.close()  # prepared, never served (uvicorn closes it otherwise)
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

    def __enter__(self) -> ArenaStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The HTTP clients log one line per model request at INFO: noise, and it names endpoint hosts.
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print("Arena settings:\n" + settings.describe(), flush=True)
    stack = ArenaStack(settings, limit_logs=True)
    try:
        stack.serve_forever()
    except (RedisUnavailableError, ModelConfigError, ListenError) as error:
        print(f"arena: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed
        stack.stop()
    return 0


