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

from arena.cli.operator import OperatorError, operator_parser, parse_operator_args, run_operator_command
from leaderboard.config import command_description
from leaderboard.worker.voters import VoterWatch


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser, command = operator_parser("python -m arena voters", command_description(__doc__))
    flagged = command("flagged", "voters flagged as anomalous, strongest evidence first")
    flagged.add_argument("--json", action="store_true", help="print JSON instead of a table")
    command("unflag", "count a flagged voter again").add_argument("voter")
    return parse_operator_args(parser, argv)


def flagged_lines(flagged: dict[str, dict]) -> list[str]:
    if not flagged:
        return ["no flagged voters"]
    lines = [f"{len(flagged)} flagged voter(s) (log evidence >= threshold = log(models / alpha)):",
             f"  {'voter':<24} {'model':<28} {'direction':<9} {'log E':>7} {'thresh':>7} {'votes':>6}"
             "  flagged at (UTC)"]
    for voter, why in sorted(flagged.items(), key=lambda item: -item[1]["log_evidence"]):
        when = datetime.datetime.fromtimestamp(why["flagged_at"], tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        direction = "for" if why["delta"] > 0 else "against"
        lines.append(f"  {voter:<24} {str(why['model']):<28} {direction:<9} {why['log_evidence']:>7.1f} "
                     f"{why['threshold']:>7.1f} {why['votes']:>6}  {when}")
    return lines


def _voters_command(client: redis.Redis, args: argparse.Namespace) -> int:
    watch = VoterWatch(client, args.prefix)
    if args.command == "flagged":
        flagged = watch.flagged()
        print(json.dumps(flagged, indent=2, sort_keys=True) if args.json else "\n".join(flagged_lines(flagged)))
    elif args.command == "unflag":
        if not watch.unflag(args.voter):
            raise OperatorError(f"{args.voter!r} is not flagged (see `python -m arena voters flagged`)")
        print(f"unflagged {args.voter}: their votes count again from the next refit")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_operator_command(parse_args(list(sys.argv[1:] if argv is None else argv)), _voters_command)
