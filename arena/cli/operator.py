"""``python -m arena matchmaker ...``: the operator's hands on a running arena's matchmaking.

    python -m arena matchmaker status
    python -m arena matchmaker pause MODEL        # out of every new battle at once, in every process
    python -m arena matchmaker resume MODEL
    python -m arena matchmaker pin MODEL [MODEL ...] --share 0.1   # that set gets >= 10% of battles
    python -m arena matchmaker unpin MODEL [MODEL ...]

Everything lives in the arena's Redis, so a change reaches every web process with their next
choice. The Redis is ``--redis-url`` / REDIS_URL, or else the embedded one a running
``python -m arena serve`` started in ``--data-dir`` (it leaves its address there).

A model name must be one the arena knows (configured in a web process, or on the leaderboard):
anything else is an error, exit code 2, and nothing is changed.

What every operator command shares is here for the others to reuse (``owners``, ``models``):
``operator_parser`` (the shared flags, before or after the subcommand), ``connect_to_arena``
(finds the running arena, rides out a Redis restart) and ``run_operator_command`` (exit codes,
one-line errors, quiet on a closed pipe such as ``| head``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import redis

from arena.matchmaker import build_matchmaker
from arena.models import availability
from arena.models.availability import ModelStatus
from arena.models.names import known_models
from arena.ops.redis_server import RedisUnavailableError, connect
from leaderboard.config import RUNNING_ARENA_SETTINGS, add_arguments, command_description, parse_with_settings
from leaderboard.store.urls import embedded_url_file, running_arena_redis_url
from leaderboard.views.reader import latest_snapshot

# Accepted before the subcommand and after it (``matchmaker status --data-dir X``).
OPERATOR_SETTINGS = RUNNING_ARENA_SETTINGS
# How long a command keeps trying a Redis that is restarting (the embedded one keeps its port).
RECONNECT_SECONDS = 5.0


class OperatorError(ValueError):
    """An operator's request that cannot be carried out; the message says why and what to do."""


def operator_parser(prog: str, description: str) -> tuple[argparse.ArgumentParser,
                                                           Callable[[str, str], argparse.ArgumentParser]]:
    """A parser with the shared flags, and ``command(name, help)`` adding a subcommand that accepts
    them too (after the subcommand wins over before it); parse with ``parse_operator_args``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_arguments(parser, OPERATOR_SETTINGS)
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        add_arguments(sub, OPERATOR_SETTINGS)
        return sub

    return parser, command


def parse_operator_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The parsed command line with the shared settings resolved (flag, else environment, else default)."""
    return parse_with_settings(parser, list(sys.argv[1:] if argv is None else argv), OPERATOR_SETTINGS)


def connect_to_arena(args: argparse.Namespace) -> redis.Redis:
    """A client for the running arena's Redis that reconnects if it restarts; RedisUnavailableError if none."""
    return connect(redis_url_for(args), reconnect_seconds=RECONNECT_SECONDS)


def run_operator_command(args: argparse.Namespace,
                         body: Callable[[redis.Redis, argparse.Namespace], int | None]) -> int:
    """Connect, run ``body(client, args)``, and turn what can go wrong into one line on stderr and
    exit code 2 (no arena, Redis gone, an OperatorError or ValueError); a reader that stopped
    reading (``| head``) ends the command quietly."""
    try:
        try:
            client = connect_to_arena(args)
            return body(client, args) or 0
        except (RedisUnavailableError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except redis.exceptions.ConnectionError as error:
            print(f"error: Redis went away: {error}", file=sys.stderr)
            return 2
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point it at /dev/null
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser, command = operator_parser("python -m arena matchmaker", command_description(__doc__))
    command("status", "paused, benched and pinned models, and the latest ratings")
    for name, text in (("pause", "exclude a model from new battles"), ("resume", "undo pause")):
        command(name, text).add_argument("models", nargs=1, metavar="MODEL")
    pin = command("pin", "give a set of models a minimum share of battles")
    pin.add_argument("models", nargs="+")
    pin.add_argument("--share", type=float, required=True, help="fraction of all battles, e.g. 0.1")
    command("unpin", "remove a pin").add_argument("models", nargs="+")
    return parse_operator_args(parser, argv)


def redis_url_for(args: argparse.Namespace) -> str:
    url = running_arena_redis_url(args.redis_url, args.data_dir)
    if url is None:
        raise RedisUnavailableError(
            f"no running arena found: {embedded_url_file(args.data_dir / 'redis')} does not exist; start "
            f"`python -m arena serve` (with --data-dir {args.data_dir}) or pass --redis-url")
    return url


def status_lines(client: redis.Redis, prefix: str, matchmaker) -> list[str]:
    conditions = availability.known_conditions(client, prefix)
    paused, benched = sorted(conditions.paused), sorted(conditions.benched)
    lines = [f"paused: {', '.join(paused) or '-'}",
             f"benched (circuit breaker; `models list` says why): {', '.join(benched) or '-'}"]
    pins = matchmaker.pins()
    lines.append("pins: " + ("; ".join(f"{' + '.join(members)} >= {share:.0%}"
                                       for members, share in sorted(pins.items())) if pins else "-"))
    snapshot = latest_snapshot(client, prefix)
    if snapshot is None:
        lines.append("leaderboard: no snapshot yet (no votes counted)")
        return lines
    lines.append(f"leaderboard: {snapshot.total_votes} votes, {snapshot.method} (rank range, rating, 95% interval)")
    for row in snapshot.rows:
        flags = [status for status, members in ((ModelStatus.PAUSED, paused), (ModelStatus.BENCHED, benched))
                 if row.model in members]
        ranks = f"{row.rank}" if row.rank == row.rank_lower else f"{row.rank}-{row.rank_lower}"
        lines.append(f"  {ranks:>7}  {row.model:<32} {row.rating:>7.0f} ({row.lower:.0f} to {row.upper:.0f})"
                     f"  {row.votes:>7} votes  {' '.join(flags)}")
    return lines


def check_known(client: redis.Redis, prefix: str, models: list[str], *, also: set[str] = frozenset()) -> None:
    """OperatorError naming every model the arena does not know (``also``: more accepted names)."""
    known = known_models(client, prefix) | set(also)
    unknown = [model for model in models if model not in known]
    if not unknown:
        return
    listed = ", ".join(sorted(known)) if known else "none yet (no web process has started with this Redis and prefix)"
    raise OperatorError(f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                        f"names must match the configured model names exactly; known: {listed}")


def _matchmaker_command(client: redis.Redis, args: argparse.Namespace) -> int:
    matchmaker = build_matchmaker("uniform", client, prefix=args.prefix)
    if args.command == "status":
        print("\n".join(status_lines(client, args.prefix, matchmaker)))
    elif args.command == "pause":
        check_known(client, args.prefix, args.models)
        availability.pause(client, args.prefix, args.models[0])
        print(f"paused {args.models[0]}: it is left out of every new battle")
    elif args.command == "resume":
        # a paused model can always be resumed, even one no longer configured
        check_known(client, args.prefix, args.models, also=availability.paused_models(client, args.prefix))
        availability.resume(client, args.prefix, args.models[0])
        print(f"resumed {args.models[0]}")
    elif args.command == "pin":
        check_known(client, args.prefix, args.models)
        matchmaker.pin(args.models, args.share)
        print(f"pinned {' + '.join(args.models)} to at least {args.share:.0%} of battles")
    elif args.command == "unpin":
        matchmaker.unpin(args.models)
        print(f"unpinned {' + '.join(args.models)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_operator_command(parse_args(list(sys.argv[1:] if argv is None else argv)), _matchmaker_command)
