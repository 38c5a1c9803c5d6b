"""``python -m arena voters ...``: the operator's view of voters the anomaly test flagged.

    python -m arena voters flagged            # table: voter, model, direction, evidence, votes, when
    python -m arena voters flagged --json     # the same as JSON
    python -m arena voters unflag VOTER_ID    # count them again (their evidence starts afresh)

Flagging is the worker's (leaderboard.worker.voters, docs/anomalous-voters.md); what the fit
does with a flagged voter is ``--flagged-voter-weight`` (default 0: left out). Finds Redis like
``python -m arena matchmaker``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

import redis

from arena.operator_cli import OPERATOR_SETTINGS, redis_url_for
from arena.redis_server import RedisUnavailableError, connect
from leaderboard.config import add_arguments, parse_with_settings
from leaderboard.worker.voters import VoterWatch


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m arena voters", description=__doc__.split("\n\n")[0])
    add_arguments(parser, OPERATOR_SETTINGS)
    commands = parser.add_subparsers(dest="command", required=True)
    flagged = commands.add_parser("flagged", help="voters flagged as anomalous, strongest evidence first")
    flagged.add_argument("--json", action="store_true", help="print JSON instead of a table")
    unflag = commands.add_parser("unflag", help="count a flagged voter again")
    unflag.add_argument("voter")
    for sub in (flagged, unflag):
        add_arguments(sub, OPERATOR_SETTINGS)
    return parse_with_settings(parser, argv, OPERATOR_SETTINGS)


def flagged_lines(flagged: dict[str, dict]) -> list[str]:
    if not flagged:
        return ["no flagged voters"]
    lines = [f"{len(flagged)} flagged voter(s) (log evidence >= threshold = log(models / alpha)):",
             f"  {'voter':<24} {'model':<28} {'direction':<9} {'log E':>7} {'thresh':>7} {'votes':>6}  flagged at (UTC)"]
    for voter, why in sorted(flagged.items(), key=lambda item: -item[1]["log_evidence"]):
        when = datetime.datetime.fromtimestamp(why["flagged_at"], tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        direction = "for" if why["delta"] > 0 else "against"
        lines.append(f"  {voter:<24} {str(why['model']):<28} {direction:<9} {why['log_evidence']:>7.1f} "
                     f"{why['threshold']:>7.1f} {why['votes']:>6}  {when}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        client = connect(redis_url_for(args))
    except RedisUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    watch = VoterWatch(client, args.prefix)
    try:
        if args.command == "flagged":
            flagged = watch.flagged()
            print(json.dumps(flagged, indent=2, sort_keys=True) if args.json else "\n".join(flagged_lines(flagged)))
        elif args.command == "unflag":
            if not watch.unflag(args.voter):
                print(f"error: {args.voter!r} is not flagged (see `python -m arena voters flagged`)", file=sys.stderr)
                return 2
            print(f"unflagged {args.voter}: their votes count again from the next refit")
    except redis.exceptions.ConnectionError as error:
        print(f"error: Redis went away: {error}", file=sys.stderr)
        return 2
    return 0
