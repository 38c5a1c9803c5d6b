"""``python -m leaderboard rebuild``: every count and the leaderboard snapshot again, from the archive.

    python -m leaderboard rebuild --data-dir DATA [--redis-url URL] [--prefix P] [--out SNAPSHOT.json]

The archive (``<data dir>/votes.jsonl``) is the record; everything else is derived from it. This
reads it whole (without taking the worker's lock: a live worker may keep appending), counts the
votes per pair exactly as the worker does at start-up, fits the same way, and publishes the
snapshot to Redis (``--redis-url`` / REDIS_URL, else the embedded Redis of a ``serve`` running
on the data dir) and/or writes it to ``--out``. Use it after restoring an archive, after moving to
a new Redis, or to check that the live leaderboard is what the archive says. A running worker
keeps its own counts in memory (rebuilt from the archive whenever it starts): restart it after
replacing the archive under it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import redis

from leaderboard.archive import archive_path
from leaderboard.archive_reader import archive_events
from leaderboard.config import DATA_DIR, PREFIX, REDIS_URL, add_arguments, parse_with_settings
from leaderboard.snapshot import Snapshot, publish_snapshot
from leaderboard.urls import embedded_url_file, redact_url
from leaderboard.worker.policy import build_snapshot
from leaderboard.worker.tally import VoteTally

REBUILD_SETTINGS = (replace(REDIS_URL, unset="the embedded Redis of a running `serve` in the data dir"), DATA_DIR,
                    PREFIX)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m leaderboard rebuild", description=__doc__.split("\n\n")[0])
    add_arguments(parser, REBUILD_SETTINGS)
    parser.add_argument("--out", type=Path, default=None, metavar="SNAPSHOT.json",
                        help="also write the snapshot here (with --out alone, Redis is not needed)")
    return parser


def rebuild_tally(data_dir: Path) -> tuple[VoteTally, list[str]]:
    """The worker's counts from the archive, and warnings (a torn last line is reported, not counted)."""
    path = archive_path(data_dir)
    if not path.exists():
        raise FileNotFoundError(f"no vote archive at {path}: pass the --data-dir the worker wrote to")
    warnings: list[str] = []
    tally = VoteTally()
    for event in archive_events(path, on_torn_tail=lambda offset, line, length: warnings.append(
            f"{path}, line {line}: an unfinished last line ({length} bytes) is not a vote; skipped")):
        tally.add(event)
    return tally, warnings


def redis_url_for(args: argparse.Namespace) -> str | None:
    if args.redis_url:
        return args.redis_url
    url_file = embedded_url_file(Path(args.data_dir) / "redis")
    return url_file.read_text().strip() if url_file.exists() else None


def summary(tally: VoteTally, snapshot: Snapshot) -> list[str]:
    lines = [f"{tally.archived} archived vote(s): {tally.rated} rated, {tally.named} named (not rated); "
             f"{len(snapshot.rows)} model(s); {snapshot.method}" + (f" ({snapshot.note})" if snapshot.note else "")]
    lines += [f"  {row.rank:>4}  {row.model:<32} {row.rating:>7.1f} ({row.lower:.1f} to {row.upper:.1f})  {row.votes:>7} votes"
              for row in snapshot.rows]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_with_settings(parser, argv, REBUILD_SETTINGS)
    url = redis_url_for(args)
    if url is None and args.out is None:
        print(f"error: no Redis to publish to: pass --redis-url (or REDIS_URL), start `python -m arena serve "
              f"--data-dir {args.data_dir}`, or write the snapshot with --out", file=sys.stderr)
        return 2
    try:
        tally, warnings = rebuild_tally(args.data_dir)
    except (OSError, ValueError) as error:  # missing or damaged archive: the message names the file and line
        print(f"error: {error}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    snapshot = build_snapshot(tally)
    print("\n".join(summary(tally, snapshot)))
    if args.out is not None:
        args.out.write_text(snapshot.model_dump_json(indent=2) + "\n", encoding="utf-8")
        print(f"wrote the snapshot to {args.out}")
    if url is not None:
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=3.0)
            publish_snapshot(client, args.prefix, snapshot)
        except (redis.exceptions.RedisError, ValueError) as error:
            print(f"error: cannot publish to Redis at {redact_url(url)}: {error}", file=sys.stderr)
            return 2
        print(f"published the snapshot to {redact_url(url)} (prefix {args.prefix})")
    return 0
