"""The arena's settings, one table (``SERVE_SETTINGS``): the ``Settings`` dataclass, the flags of
``python -m arena serve`` with their environment variables, the start-up banner (secrets masked)
and the README's configuration table (``python -m arena.settings`` prints it) are all derived
from its rows. The rows shared with other command lines come from ``leaderboard.config``.
"""

from __future__ import annotations

import argparse
from dataclasses import field, make_dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from arena.matchmaker.fairness import FairnessPolicy
from arena.matchmaker.policy import DEFAULT_STRATEGY, STRATEGIES
from leaderboard.config import (
    DATA_DIR,
    PREFIX,
    REDIS_URL,
    REFIT_INTERVAL,
    Setting,
    add_arguments,
    bounded,
    describe,
    markdown_table,
    read_values,
    yes_no,
)


def _hidden(value: str) -> str:
    return "***"


# The matchmaker's fairness knobs, shared with the simulator; their defaults are the policy's own.
MATCHMAKER_FLOOR = Setting("matchmaker_floor", FairnessPolicy.floor,
                           "every model keeps at least this times an equal share of battles (a uniform part of the mixture)",
                           parse=bounded(float, 0.0, 1.0), flag="--matchmaker-floor", env="ARENA_MATCHMAKER_FLOOR")
MAX_PAIR_SHARE = Setting("max_pair_share", FairnessPolicy.max_pair_share,
                         "no pair gets more than this share of the strategy's battles (at least twice an equal share; "
                         "binds only in small arenas)",
                         parse=bounded(float, 0.0, 1.0, above=True), flag="--max-pair-share", env="ARENA_MAX_PAIR_SHARE")
NEW_MODEL_VOTES = Setting("new_model_votes", FairnessPolicy.new_model_votes,
                          "a new model is boosted (seated in half of the strategy's battles) until it has this many "
                          "battles...", parse=bounded(int, 0), flag="--new-model-votes", env="ARENA_NEW_MODEL_VOTES")
NEW_MODEL_CI = Setting("new_model_ci", FairnessPolicy.new_model_ci,
                       "...or its 95% interval is within +- this many rating points",
                       parse=bounded(float, 0.0), flag="--new-model-ci", env="ARENA_NEW_MODEL_CI")
MATCHMAKER_FAIRNESS = (MATCHMAKER_FLOOR, MAX_PAIR_SHARE, NEW_MODEL_VOTES, NEW_MODEL_CI)


def fairness_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``MATCHMAKER_FAIRNESS`` values (of a Settings or a parsed command line) as the
    matchmaker's fairness options (``FairnessPolicy`` fields, ``build_matchmaker`` options)."""
    return dict(floor=values["matchmaker_floor"], max_pair_share=values["max_pair_share"],
                new_model_votes=values["new_model_votes"], new_model_ci=values["new_model_ci"])


SERVE_SETTINGS = (
    Setting("host", "127.0.0.1", "listen address", flag="--host", env="ARENA_HOST"),
    Setting("port", 7860, "listen port (page, API and docs)", parse=int, flag="--port", env="ARENA_PORT"),
    DATA_DIR,
    replace(REDIS_URL, unset="embedded, started in the data dir"),
    Setting("models_file", None, "YAML or JSON model list, see `docs/models.md`", parse=Path, flag="--models",
            env="ARENA_MODELS", metavar="FILE", unset="unset (demo endpoints)"),
    Setting("demo", None, "start the built-in demo endpoints", parse=yes_no, flag="--demo", off_flag="--no-demo",
            unset="on when no `--models`"),
    Setting("demo_token_delay", 0.02, "seconds between demo tokens", parse=float, flag="--demo-token-delay",
            env="ARENA_DEMO_TOKEN_DELAY"),
    Setting("demo_first_token_delay", 0.0, "seconds before each demo answer starts (mimics a slow model)", parse=float,
            flag="--demo-first-token-delay", env="ARENA_DEMO_FIRST_TOKEN_DELAY"),
    PREFIX,
    Setting("matchmaker", DEFAULT_STRATEGY, "pair selection strategy", flag="--matchmaker", env="ARENA_MATCHMAKER",
            choices=STRATEGIES),
    *MATCHMAKER_FAIRNESS,
    Setting("run_worker", True, "run the leaderboard worker in this process", parse=yes_no,
            off_flag="--no-worker", env="ARENA_RUN_WORKER"),
    REFIT_INTERVAL,
    Setting("battles_per_minute", 60, "new battles one voter (client address) may start per minute, counted in Redis "
            "across processes; `0` turns it off", parse=int, flag="--battles-per-minute", env="ARENA_BATTLES_PER_MINUTE"),
    Setting("voter_secret", None, "HMAC key for pseudonymous voter ids", env="ARENA_VOTER_SECRET",
            unset="generated, kept in Redis", mask=_hidden),
    # fixed for now: in the banner, not configurable
    Setting("battle_ttl", 24 * 3600, "seconds a battle stays votable", parse=int),
    Setting("max_prompt_chars", 8000, "longest prompt accepted, in characters", parse=int),
    Setting("max_turns", 8, "turns in one battle's conversation", parse=int),
)


def _resolve_demo(self) -> None:
    # the demo endpoints come with no model file, unless asked for either way (flag or field)
    if self.demo is None:
        object.__setattr__(self, "demo", self.models_file is None)


def _describe(self) -> str:
    """One line per setting, secrets masked, for the start-up banner."""
    return describe(vars(self), SERVE_SETTINGS)


Settings = make_dataclass(
    "Settings",
    [(setting.name, Any, field(default=setting.default, repr=not setting.secret)) for setting in SERVE_SETTINGS],
    frozen=True,
    namespace={"describe": _describe, "__post_init__": _resolve_demo, "__doc__": "The arena's settings, one field per row of SERVE_SETTINGS."},
)
Settings.__module__ = __name__


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, SERVE_SETTINGS)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Flags over environment over defaults; raises ``SettingError`` for a bad environment value."""
    values = read_values(args, SERVE_SETTINGS, environ)
    return Settings(**values)


if __name__ == "__main__":
    print(markdown_table(SERVE_SETTINGS))
