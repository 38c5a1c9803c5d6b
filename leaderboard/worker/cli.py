"""Command line: ``python -m leaderboard worker ...``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import redis

from leaderboard.redis_keys import DEFAULT_PREFIX
from leaderboard.urls import redact_url
from leaderboard.worker.consumer import VoteWorker

log = logging.getLogger("leaderboard.worker")


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard worker",
        description="Consume accepted votes from Redis into the vote archive and publish leaderboard snapshots.",
    )
    parser.add_argument("--redis-url", default=env.get("REDIS_URL"), help="Redis to read votes from [REDIS_URL]")
    parser.add_argument("--data-dir", type=Path, default=Path(env.get("ARENA_DATA_DIR", "data")),
                        help="directory of the vote archive votes.jsonl [ARENA_DATA_DIR, default ./data]")
    parser.add_argument("--prefix", default=env.get("ARENA_PREFIX", DEFAULT_PREFIX), help="Redis key prefix [ARENA_PREFIX]")
    parser.add_argument("--refit-interval", type=float, default=2.0, help="seconds between refits (default 2)")
    parser.add_argument("--consumer", default=None, help="consumer name in the group (default <hostname>-<pid>)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.redis_url:
        print("leaderboard worker: no Redis given: pass --redis-url redis://HOST:PORT/0 or set REDIS_URL", file=sys.stderr)
        return 2
    try:
        client = redis.Redis.from_url(args.redis_url, socket_connect_timeout=3.0, socket_timeout=30.0,
                                      health_check_interval=30)
        client.ping()
    except (redis.exceptions.RedisError, ValueError, OSError) as error:
        print(f"leaderboard worker: cannot reach Redis at {redact_url(args.redis_url)}: {error}. "
              "Start Redis or pass the right --redis-url / REDIS_URL.", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("settings: redis_url=%s data_dir=%s prefix=%s refit_interval=%s", redact_url(args.redis_url),
             args.data_dir, args.prefix, args.refit_interval)
    worker = VoteWorker(client, args.data_dir, prefix=args.prefix, consumer=args.consumer,
                        refit_interval=args.refit_interval)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    worker.run_forever(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
