"""Command line: ``python -m leaderboard worker ...``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from dataclasses import replace

import redis

from leaderboard.config import (
    DATA_DIR,
    FLAGGED_VOTER_WEIGHT,
    MIN_CATEGORY_VOTES,
    PREFIX,
    RATE_DEANONYMISED,
    REDIS_URL,
    REFIT_INTERVAL,
    VOTE_KEY,
    VOTER_FLAG_ALPHA,
    add_arguments,
    describe,
    parse_with_settings,
)
from leaderboard.store.urls import redact_url
from leaderboard.worker.consumer import VoteWorker

log = logging.getLogger("leaderboard.worker")


WORKER_SETTINGS = (replace(REDIS_URL, unset="required"), DATA_DIR, PREFIX, REFIT_INTERVAL, RATE_DEANONYMISED,
                   FLAGGED_VOTER_WEIGHT, VOTER_FLAG_ALPHA, MIN_CATEGORY_VOTES, VOTE_KEY)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m leaderboard worker",
        description="Consume accepted votes from Redis into the vote archive and publish leaderboard snapshots.",
    )
    add_arguments(parser, WORKER_SETTINGS)
    parser.add_argument("--consumer", default=None, help="consumer name in the group (default <hostname>-<pid>)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return parse_with_settings(build_parser(), argv, WORKER_SETTINGS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.redis_url:
        print("leaderboard worker: no Redis given: pass --redis-url redis://HOST:PORT/0 or set REDIS_URL",
              file=sys.stderr)
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
    log.info("settings: %s", "; ".join(line.strip() for line in describe(vars(args), WORKER_SETTINGS).splitlines()))
    worker = VoteWorker(client, args.data_dir, prefix=args.prefix, consumer=args.consumer,
                        refit_interval=args.refit_interval, rate_deanonymised=args.rate_deanonymised,
                        flagged_voter_weight=args.flagged_voter_weight, voter_alpha=args.voter_flag_alpha,
                        min_category_votes=args.min_category_votes, vote_key=args.vote_key)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    worker.run_forever(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
