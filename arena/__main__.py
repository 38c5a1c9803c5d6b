"""``python -m arena serve|simulate|matchmaker|voters|owners|models``.

Each subcommand's module is imported only when that subcommand runs: importing them all up front
would make every command wait for the whole web stack to load (seconds on a busy machine).

May import: arena.cli, arena.ops, arena.sim, leaderboard.config.
"""

from __future__ import annotations

import argparse
import sys

from leaderboard.config import SettingError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m arena",
                                     description="Arena: anonymous model battles and a live leaderboard")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the arena (web page, API, worker; embedded Redis unless REDIS_URL)")
    # lazy, for start-up time (see the module docstring), like every subcommand import below
    from arena.ops.settings import add_serve_arguments, settings_from_args

    add_serve_arguments(serve_parser)
    commands.add_parser("simulate", help="compare matchmaking strategies in simulation (see --help)", add_help=False)
    commands.add_parser("matchmaker", add_help=False,
                        help="pause/resume models, pin pairs, show status of a running arena (see --help)")
    commands.add_parser("voters", help="voters flagged as anomalous; unflag one (see --help)", add_help=False)

    commands.add_parser("owners", help="model owners' accounts: add (prints a token), list, revoke (see --help)",
                        add_help=False)
    commands.add_parser("models", help="owners' registered models: list, approve, reject (see --help)", add_help=False)
    if argv[:1] in (["owners"], ["models"]):
        from arena.cli.owners import main as owner_main  # lazy: start-up time

        return owner_main(argv[0], argv[1:])
    if argv[:1] == ["simulate"]:
        from arena.sim.simulate import main as simulate_main  # lazy: start-up time

        return simulate_main(argv[1:])
    if argv[:1] == ["voters"]:
        from arena.cli.voters import main as voters_main  # lazy: start-up time

        return voters_main(argv[1:])
    if argv[:1] == ["matchmaker"]:
        from arena.cli.operator import main as operator_main  # lazy: start-up time

        return operator_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "serve":
        from arena.cli.serve import serve  # lazy: start-up time

        try:
            settings = settings_from_args(args)
        except SettingError as error:
            error.exit(serve_parser)
        return serve(settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
