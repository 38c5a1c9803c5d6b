"""One settings object, built from CLI flags and environment variables, printed (secrets masked) at start-up."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from arena.redis_server import redact_url

MATCHMAKER_STRATEGIES = ("active", "uniform", "ci-reduction", "top-k", "ucb")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    data_dir: Path = Path("data")
    redis_url: str | None = None          # None: start the embedded Redis in data_dir
    models_file: Path | None = None       # None: demo endpoints
    demo: bool = True
    demo_token_delay: float = 0.02        # seconds between demo tokens: answers visibly stream
    demo_first_token_delay: float = 0.0   # seconds before a demo answer starts (to mimic a slow model)
    prefix: str = "arena"                 # Redis key prefix (several arenas can share one Redis)
    matchmaker: str = "active"
    matchmaker_floor: float = 0.1         # every model keeps >= this x an equal share of battles
    max_pair_share: float = 0.2           # no pair gets more than this share of the strategy's battles
    new_model_votes: int = 300            # a new model is boosted until it has this many battles ...
    new_model_ci: float = 40.0            # ... or its 95% interval is within +- this many rating points
    run_worker: bool = True               # run the leaderboard worker in-process
    refit_interval: float = 2.0
    battle_ttl: int = 24 * 3600           # seconds a battle stays votable
    max_prompt_chars: int = 8000
    max_turns: int = 8
    battles_per_minute: int = 60          # new battles per voter (client address) per minute; 0: no limit
    voter_secret: str | None = field(default=None, repr=False)  # HMAC key for pseudonymous voter ids

    def describe(self) -> str:
        """One line per setting, secrets masked, for the start-up banner."""
        shown = asdict(self)
        shown["redis_url"] = redact_url(self.redis_url) if self.redis_url else "(embedded, started in data dir)"
        shown["voter_secret"] = "***" if self.voter_secret else "(generated, kept in Redis)"
        shown["models_file"] = str(self.models_file) if self.models_file else "(demo endpoints)"
        return "\n".join(f"  {name:24} {value}" for name, value in shown.items())


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _bounded(convert, low: float, high: float | None = None, *, above: bool = False):
    """An argparse type: ``convert(text)`` within [low, high] (or (low, high] with ``above``), so a
    bad flag or environment value stops start-up with one line naming it."""
    def parse(text: str):
        value = convert(text)
        if (value <= low if above else value < low) or (high is not None and value > high):
            bounds = f"{'>' if above else '>='} {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"{text} must be {bounds}")
        return value

    parse.__name__ = convert.__name__  # argparse names it in "invalid float value: 'x'"
    return parse


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ
    parser.add_argument("--host", default=env.get("ARENA_HOST", "127.0.0.1"), help="listen address [ARENA_HOST]")
    parser.add_argument("--port", type=int, default=int(env.get("ARENA_PORT", "7860")), help="listen port [ARENA_PORT]")
    parser.add_argument("--data-dir", type=Path, default=Path(env.get("ARENA_DATA_DIR", "data")),
                        help="embedded Redis files and the vote archive [ARENA_DATA_DIR]")
    parser.add_argument("--redis-url", default=env.get("REDIS_URL") or None,
                        help="use this Redis instead of starting one [REDIS_URL]")
    parser.add_argument("--models", dest="models_file", type=Path, default=env.get("ARENA_MODELS") or None,
                        help="YAML/JSON model config (see docs/models.md) [ARENA_MODELS]")
    parser.add_argument("--demo", dest="demo", action="store_true", default=None,
                        help="also start the built-in demo endpoints (default when no --models)")
    parser.add_argument("--no-demo", dest="demo", action="store_false")
    parser.add_argument("--demo-token-delay", type=float, default=float(env.get("ARENA_DEMO_TOKEN_DELAY", "0.02")),
                        help="seconds between demo tokens [ARENA_DEMO_TOKEN_DELAY]")
    parser.add_argument("--demo-first-token-delay", type=float,
                        default=float(env.get("ARENA_DEMO_FIRST_TOKEN_DELAY", "0")),
                        help="seconds before each demo answer starts [ARENA_DEMO_FIRST_TOKEN_DELAY]")
    parser.add_argument("--prefix", default=env.get("ARENA_PREFIX", "arena"), help="Redis key prefix [ARENA_PREFIX]")
    parser.add_argument("--matchmaker", choices=MATCHMAKER_STRATEGIES, default=env.get("ARENA_MATCHMAKER", "active"),
                        help="pair selection strategy [ARENA_MATCHMAKER]")
    parser.add_argument("--matchmaker-floor", type=_bounded(float, 0.0, 1.0),
                        default=env.get("ARENA_MATCHMAKER_FLOOR", "0.1"),
                        help="every model keeps at least this times an equal share of battles [ARENA_MATCHMAKER_FLOOR]")
    parser.add_argument("--max-pair-share", type=_bounded(float, 0.0, 1.0, above=True),
                        default=env.get("ARENA_MAX_PAIR_SHARE", "0.2"),
                        help="no pair gets more than this share of the strategy's battles [ARENA_MAX_PAIR_SHARE]")
    parser.add_argument("--new-model-votes", type=_bounded(int, 0), default=env.get("ARENA_NEW_MODEL_VOTES", "300"),
                        help="boost a new model until it has this many battles [ARENA_NEW_MODEL_VOTES]")
    parser.add_argument("--new-model-ci", type=_bounded(float, 0.0), default=env.get("ARENA_NEW_MODEL_CI", "40"),
                        help="... or its 95%% interval is within +- this many rating points [ARENA_NEW_MODEL_CI]")
    parser.add_argument("--no-worker", dest="run_worker", action="store_false",
                        default=_env_bool(env.get("ARENA_RUN_WORKER"), True),
                        help="do not run the leaderboard worker in this process [ARENA_RUN_WORKER=0]")
    parser.add_argument("--refit-interval", type=float, default=float(env.get("ARENA_REFIT_INTERVAL", "2.0")),
                        help="seconds between leaderboard refits [ARENA_REFIT_INTERVAL]")
    parser.add_argument("--battles-per-minute", type=int, default=int(env.get("ARENA_BATTLES_PER_MINUTE", "60")),
                        help="new battles one voter may start per minute, 0 for no limit [ARENA_BATTLES_PER_MINUTE]")


def settings_from_args(args: argparse.Namespace) -> Settings:
    demo = args.demo if args.demo is not None else args.models_file is None
    return Settings(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir),
        redis_url=args.redis_url,
        models_file=Path(args.models_file) if args.models_file else None,
        demo=demo,
        demo_token_delay=args.demo_token_delay,
        demo_first_token_delay=args.demo_first_token_delay,
        prefix=args.prefix,
        matchmaker=args.matchmaker,
        matchmaker_floor=args.matchmaker_floor,
        max_pair_share=args.max_pair_share,
        new_model_votes=args.new_model_votes,
        new_model_ci=args.new_model_ci,
        run_worker=args.run_worker,
        refit_interval=args.refit_interval,
        voter_secret=os.environ.get("ARENA_VOTER_SECRET") or None,
        battles_per_minute=args.battles_per_minute,
    )
