"""``python -m arena matchmaker ...``: the operator's hands on a running arena's matchmaking.

    python -m arena matchmaker status
    python -m arena matchmaker pause MODEL        # out of every new battle at once, in every process
    python -m arena matchmaker resume MODEL
    python -m arena matchmaker pin MODEL [MODEL ...] --share 0.1   # that set gets >= 10% of battles
    python -m arena matchmaker unpin MODEL [MODEL ...]

Everything lives in the arena's Redis, so a change reaches every web process with their next
choice. The Redis is ``--redis-url`` / REDIS_URL, or else the embedded one a running
``python -m arena serve`` started in ``--data-dir`` (it leaves its address there).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import redis

from arena import availability
from arena.availability import ModelStatus
from arena.matchmaker import build_matchmaker
from arena.redis_server import RedisUnavailableError, connect, embedded_url_file
from leaderboard.config import DATA_DIR, PREFIX, REDIS_URL, add_arguments, parse_with_settings
from leaderboard.redis_keys import snapshot_key
from leaderboard.snapshot import Snapshot


# Accepted before the subcommand and after it (``matchmaker status --data-dir X``).
OPERATOR_SETTINGS = (replace(REDIS_URL, unset="the embedded Redis of a running `serve` in the data dir"), DATA_DIR,
                     PREFIX)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m arena matchmaker", description=__doc__.split("\n\n")[0])
    add_arguments(parser, OPERATOR_SETTINGS)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text)
        add_arguments(sub, OPERATOR_SETTINGS)
        return sub

    command("status", "paused, failing and pinned models, and the latest ratings")
    for name, text in (("pause", "exclude a model from new battles"), ("resume", "undo pause")):
        command(name, text).add_argument("models", nargs=1, metavar="MODEL")
    pin = command("pin", "give a set of models a minimum share of battles")
    pin.add_argument("models", nargs="+")
    pin.add_argument("--share", type=float, required=True, help="fraction of all battles, e.g. 0.1")
    command("unpin", "remove a pin").add_argument("models", nargs="+")
    return parse_with_settings(parser, argv, OPERATOR_SETTINGS)


def redis_url_for(args: argparse.Namespace) -> str:
    if args.redis_url:
        return args.redis_url
    url_file = embedded_url_file(args.data_dir / "redis")
    try:
        return url_file.read_text().strip()
    except FileNotFoundError:
        raise RedisUnavailableError(
            f"no running arena found: {url_file} does not exist; start `python -m arena serve` "
            f"(with --data-dir {args.data_dir}) or pass --redis-url"
        ) from None


def status_lines(client: redis.Redis, prefix: str, matchmaker) -> list[str]:
    conditions = availability.known_conditions(client, prefix)
    paused, failing = sorted(conditions.paused), sorted(conditions.failing)
    lines = [f"paused: {', '.join(paused) or '-'}", f"failing (out for a cool-down): {', '.join(failing) or '-'}"]
    pins = matchmaker.pins()
    lines.append("pins: " + ("; ".join(f"{' + '.join(members)} >= {share:.0%}" for members, share in sorted(pins.items()))
                             if pins else "-"))
    raw = client.get(snapshot_key(prefix))
    if not raw:
        lines.append("leaderboard: no snapshot yet (no votes counted)")
        return lines
    snapshot = Snapshot.model_validate_json(raw)
    lines.append(f"leaderboard: {snapshot.total_votes} votes, {snapshot.method} (rank range, rating, 95% interval)")
    for row in snapshot.rows:
        flags = [status for status, members in ((ModelStatus.PAUSED, paused), (ModelStatus.FAILING, failing))
                 if row.model in members]
        ranks = f"{row.rank}" if row.rank == row.rank_lower else f"{row.rank}-{row.rank_lower}"
        lines.append(f"  {ranks:>7}  {row.model:<32} {row.rating:>7.0f} ({row.lower:.0f} to {row.upper:.0f})"
                     f"  {row.votes:>7} votes  {' '.join(flags)}")
    return lines


def unknown_models(client: redis.Redis, prefix: str, models: list[str]) -> list[str]:
    """Names not on the latest leaderboard (a typo, or a model with no votes yet)."""
    raw = client.get(snapshot_key(prefix))
    known = {row.model for row in Snapshot.model_validate_json(raw).rows} if raw else set()
    return [m for m in models if m not in known]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        client = connect(redis_url_for(args))
    except RedisUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    matchmaker = build_matchmaker("uniform", client, prefix=args.prefix)
    try:
        for model in unknown_models(client, args.prefix, getattr(args, "models", [])):
            print(f"note: {model!r} is not on the leaderboard (no votes yet, or a typo?): "
                  "names must match the configured model names exactly", file=sys.stderr)
        if args.command == "status":
            print("\n".join(status_lines(client, args.prefix, matchmaker)))
        elif args.command == "pause":
            availability.pause(client, args.prefix, args.models[0])
            print(f"paused {args.models[0]}: it is left out of every new battle")
        elif args.command == "resume":
            availability.resume(client, args.prefix, args.models[0])
            print(f"resumed {args.models[0]}")
        elif args.command == "pin":
            matchmaker.pin(args.models, args.share)
            print(f"pinned {' + '.join(args.models)} to at least {args.share:.0%} of battles")
        elif args.command == "unpin":
            matchmaker.unpin(args.models)
            print(f"unpinned {' + '.join(args.models)}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except redis.exceptions.ConnectionError as error:
        print(f"error: Redis went away: {error}", file=sys.stderr)
        return 2
    return 0
