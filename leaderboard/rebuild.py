"""``python -m leaderboard rebuild``: every count and the leaderboard views again, from the archive.

    python -m leaderboard rebuild --data-dir DATA [--redis-url URL] [--prefix P] [--out SNAPSHOT.json [--no-publish]]
        [--rate-deanonymised] [--flagged-voter-weight W] [--min-category-votes N]

The archive (``<data dir>/votes.jsonl``) is the record; everything else is derived from it. This
reads it whole (without taking the worker's lock: a live worker may keep appending), counts the
votes exactly as the worker does at start-up (leaderboard.live.view_fit.LiveVotes), fits and
publishes every view the way the worker does (leaderboard.live.policy.build_snapshot,
leaderboard.worker.publish.ViewPublisher) to Redis whenever it finds one (``--redis-url`` /
REDIS_URL, else the embedded Redis of a ``serve`` running on the data dir), ``--out`` or not;
``--out`` also writes the overall snapshot to a file (the Snapshot document: its rows under
``rows``). ``--out FILE --no-publish`` writes the file only: nothing is written to Redis (a Redis
it finds is only read, for the flagged voters). The worker's settings mean the same here (give it
the same ones, or the same environment, to get the same board): votes with ``identity_flags`` are rated only with
``--rate-deanonymised``; the votes of the voters flagged as anomalous (the list lives in Redis,
so without a Redis nobody is flagged) weigh ``--flagged-voter-weight``. Use it after restoring an
archive, after moving to a new Redis, or to check that the live leaderboard is what the archive
says. A running worker keeps its own counts in memory (rebuilt from the archive whenever it
starts): restart it after replacing the archive under it.

May import: leaderboard.config, leaderboard.data, leaderboard.live, leaderboard.store, leaderboard.views,
leaderboard.worker.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import redis

from leaderboard.config import (
    FLAGGED_VOTER_WEIGHT,
    MIN_CATEGORY_VOTES,
    RATE_DEANONYMISED,
    RUNNING_ARENA_SETTINGS,
    add_arguments,
    command_description,
    parse_with_settings,
)
from leaderboard.data.archive import archive_path
from leaderboard.data.archive_reader import archive_events
from leaderboard.live.policy import build_snapshot
from leaderboard.live.view_fit import LiveVotes
from leaderboard.store.urls import redact_url, running_arena_redis_url
from leaderboard.views.snapshot import Snapshot
from leaderboard.worker.publish import ViewPublisher
from leaderboard.worker.voters import VoterWatch

# The worker's settings that change what it publishes mean the same here (leaderboard.worker.cli).
REBUILD_SETTINGS = (*RUNNING_ARENA_SETTINGS, RATE_DEANONYMISED, FLAGGED_VOTER_WEIGHT, MIN_CATEGORY_VOTES)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m leaderboard rebuild", description=command_description(__doc__))
    add_arguments(parser, REBUILD_SETTINGS)
    parser.add_argument("--out", type=Path, default=None, metavar="SNAPSHOT.json",
                        help="also write the overall snapshot here (its rows under \"rows\"); the views are still "
                             "published to the Redis found (--redis-url, REDIS_URL or a serve running on the data "
                             "dir) unless --no-publish; with no Redis found, the file is all it writes")
    parser.add_argument("--no-publish", action="store_true",
                        help="with --out: write the file only, nothing to Redis (a Redis found is only read, for "
                             "the voters flagged as anomalous)")
    return parser


def rebuild_votes(data_dir: Path, *, rate_deanonymised: bool = False) -> tuple[LiveVotes, list[str]]:
    """The worker's counts from the archive, and warnings (a torn last line is reported, not counted)."""
    path = archive_path(data_dir)
    if not path.exists():
        raise FileNotFoundError(f"no vote archive at {path}: pass the --data-dir the worker wrote to")
    warnings: list[str] = []
    live = LiveVotes.from_events(
        archive_events(path, on_torn_tail=lambda offset, line, length: warnings.append(
            f"{path}, line {line}: an unfinished last line ({length} bytes) is not a vote; skipped")),
        rate_deanonymised=rate_deanonymised)
    return live, warnings


def summary(live: LiveVotes, snapshot: Snapshot) -> list[str]:
    tally = live.overall
    lines = [f"{tally.archived} archived vote(s): {tally.rated} rated, {tally.named} named (not rated); "
             f"{len(snapshot.rows)} model(s); {snapshot.method}" + (f" ({snapshot.note})" if snapshot.note else "")]
    lines += [f"  {row.rank:>4}  {row.model:<32} {row.rating:>7.1f} ({row.lower:.1f} to {row.upper:.1f})"
              f"  {row.votes:>7} votes" for row in snapshot.rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_settings(parser, argv, REBUILD_SETTINGS)
    if args.no_publish and args.out is None:
        print("error: --no-publish writes the snapshot to a file only: add --out SNAPSHOT.json", file=sys.stderr)
        return 2
    url = running_arena_redis_url(args.redis_url, args.data_dir)
    if url is None and args.out is None:
        print(f"error: no Redis to publish to: pass --redis-url (or REDIS_URL), start `python -m arena serve "
              f"--data-dir {args.data_dir}`, or write the snapshot with --out", file=sys.stderr)
        return 2
    try:
        live, warnings = rebuild_votes(args.data_dir, rate_deanonymised=args.rate_deanonymised)
    except (OSError, ValueError) as error:  # missing or damaged archive: the message names the file and line
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    client, flagged = None, {}
    if url is not None:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=3.0)
            flagged = VoterWatch(client, args.prefix).flagged()  # as the worker reads them before each fit
        except (redis.exceptions.RedisError, ValueError) as error:
            print(f"error: cannot reach Redis at {redact_url(url)}: {error}", file=sys.stderr)
            return 2
    elif args.flagged_voter_weight < 1:
        print("warning: without a Redis the flagged voters (kept there) are unknown: every vote counts in full",
              file=sys.stderr)
    snapshot = build_snapshot(live.overall, flagged_voters=list(flagged),
                              flagged_voter_weight=args.flagged_voter_weight)
    print("\n".join(summary(live, snapshot)))
    if args.out is not None:
        args.out.write_text(snapshot.model_dump_json(indent=2) + "\n", encoding="utf-8")
        print(f"wrote the snapshot to {args.out}")
    if client is not None and args.no_publish:
        print(f"not published (--no-publish): Redis at {redact_url(url)} was only read, for the flagged voters")
    elif client is not None:
        try:
            index = ViewPublisher(client, args.prefix, min_category_votes=args.min_category_votes).publish(
                live, snapshot, flagged_voters=list(flagged), flagged_voter_weight=args.flagged_voter_weight)
        except redis.exceptions.RedisError as error:
            print(f"error: cannot publish to Redis at {redact_url(url)}: {error}", file=sys.stderr)
            return 2
        print(f"published the snapshot to {redact_url(url)} (prefix {args.prefix}) with every view: "
              f"{len(index.categories)} categor{'y' if len(index.categories) == 1 else 'ies'}, "
              "each with and without style control")
    return 0
