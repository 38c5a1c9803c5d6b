"""Settings written once, as rows of a table.

A ``Setting`` holds everything about one setting: its flag, environment variable, default, type
(the function that reads a flag's or a variable's text, validation included), help, and whether
it is secret. The rest is derived from the rows: argparse arguments (``add_arguments``), values
(``read_values``: flag, else environment, else default), the start-up banner with secrets masked
(``describe``) and the configuration table of docs/configuration.md (``markdown_table``).

The rows several command lines share live here, on the leaderboard side, because the worker's
command line is on this side and never imports ``arena``: ``REDIS_URL``, ``DATA_DIR``, ``PREFIX``
and ``REFIT_INTERVAL``. The arena's own table (``arena.ops.settings``) adds its rows to these.

May import: leaderboard.store.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from leaderboard.store.redis_keys import DEFAULT_PREFIX
from leaderboard.store.urls import redact_url

_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


class SettingError(ValueError):
    """An environment variable holds a value its setting refuses; the message names both."""

    def exit(self, parser: argparse.ArgumentParser):
        """Stop the command with this one line (no usage: the command line itself was fine)."""
        parser.exit(2, f"{parser.prog}: error: {self}\n")


def bounded(convert: Callable[[str], float], low: float, high: float | None = None, *, above: bool = False):
    """A setting's type: ``convert(text)`` within [low, high] (or (low, high] with ``above``), so a
    bad flag or environment value stops start-up with one line naming it."""
    def parse(text: str):
        value = convert(text)
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} must be a finite number")
        if (value <= low if above else value < low) or (high is not None and value > high):
            bounds = f"{'>' if above else '>='} {low}" + (f" and <= {high}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"{text} must be {bounds}")
        return value

    parse.__name__ = convert.__name__  # argparse names it in "invalid float value: 'x'"
    return parse


def yes_no(text: str) -> bool:
    """A switch's type: how an environment variable turns it on or off."""
    word = text.strip().lower()
    if word in _YES or word in _NO:
        return word in _YES
    raise argparse.ArgumentTypeError(f"{text} is not one of {'/'.join(_YES)} or {'/'.join(_NO)}")


@dataclass(frozen=True)
class Setting:
    """One row of a settings table.

    A switch (``parse=yes_no``) has ``flag`` to turn it on and/or ``off_flag`` to turn it off; any
    other setting has at most ``flag``, which takes a value. A row with neither flag nor ``env``
    is fixed: shown in the banner, not configurable. ``unset`` says what a ``None`` value means;
    ``mask`` (secrets only) is how the value is shown.
    """

    name: str                                   # the attribute (and argparse dest)
    default: Any
    help: str                                   # what it is or does (a switch: what "on" does), for --help, docs
    parse: Callable[[str], Any] = str           # flag or variable text -> value; raises on a bad value
    flag: str | None = None
    env: str | None = None
    off_flag: str | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    unset: str = "unset"
    mask: Callable[[str], str] | None = None

    @property
    def secret(self) -> bool:
        return self.mask is not None

    @property
    def is_switch(self) -> bool:
        return self.parse is yes_no

    @property
    def configurable(self) -> bool:
        return bool(self.flag or self.off_flag or self.env)

    @property
    def env_text(self) -> str:
        """The variable as documented; for a switch, with the value that changes its default."""
        if self.env and self.is_switch:
            return f"{self.env}={0 if self.default else 1}"
        return self.env or ""

    @property
    def default_text(self) -> str:
        return self.shown(self.default)

    def shown(self, value: Any, *, literal: str = "{}") -> str:
        """``value`` as the banner or the docs show it (``literal`` frames a plain value)."""
        if value is None:
            return self.unset
        if self.secret:
            return self.mask(str(value))
        if isinstance(value, bool):
            return "on" if value else "off"
        return literal.format(f"{value:g}" if isinstance(value, float) else value)

    def from_env(self, text: str) -> Any:
        """The variable's text as a value, checked as a flag's would be."""
        try:
            value = self.parse(text)
        except argparse.ArgumentTypeError as error:
            reason = str(error)
        except (TypeError, ValueError):
            reason = f"invalid {getattr(self.parse, '__name__', 'value')} value"
        else:
            if self.choices is None or value in self.choices:
                return value
            reason = f"invalid choice (choose from {', '.join(self.choices)})"
        raise SettingError(f"{self.env}={text!r}: {reason}")


REDIS_URL = Setting("redis_url", None,
                    "use this Redis (redis://HOST:PORT/DB); unreachable: one clear line, exit code 2",
                    flag="--redis-url", env="REDIS_URL", mask=redact_url)
DATA_DIR = Setting("data_dir", Path("data"),
                   "embedded Redis files (`redis/`) and the durable vote archive (`votes.jsonl`)",
                   parse=Path, flag="--data-dir", env="ARENA_DATA_DIR")
PREFIX = Setting("prefix", DEFAULT_PREFIX, "Redis key prefix, so several arenas can share one Redis",
                 flag="--prefix", env="ARENA_PREFIX")
def _signing_key(text: str) -> str:
    if len(text.encode()) < 16:
        raise argparse.ArgumentTypeError("the vote-signing key must be at least 16 bytes (e.g. `openssl rand -hex 32`)")
    return text


VOTE_KEY = Setting("vote_key", None, "HMAC key the web processes sign each vote event with and the worker checks "
                   "(an unsigned or wrongly signed stream entry is dead-lettered, never counted); give every web "
                   "process and the worker the same one, at least 16 bytes; never stored in Redis",
                   parse=_signing_key, env="ARENA_VOTE_KEY", unset="random, in `<data-dir>/secrets/vote.key` (0600)",
                   mask=lambda value: "***")
# Commands that act on a running arena on this machine (the operator's, ``leaderboard rebuild``):
# without --redis-url they use the embedded Redis its ``serve`` started in the data dir
# (leaderboard.store.urls.running_arena_redis_url).
RUNNING_ARENA_SETTINGS = (replace(REDIS_URL, unset="the embedded Redis of a running `serve` in the data dir"),
                          DATA_DIR, PREFIX)
REFIT_INTERVAL = Setting("refit_interval", 2.0, "seconds between leaderboard refits",
                         parse=bounded(float, 0.0, above=True),
                         flag="--refit-interval", env="ARENA_REFIT_INTERVAL")
MIN_CATEGORY_VOTES = Setting("min_category_votes", 50, "a category leaderboard (language, coding, a tag, ...) is "
                             "published once it has this many rated votes", parse=bounded(int, 1),
                             flag="--min-category-votes", env="ARENA_MIN_CATEGORY_VOTES")

RATE_DEANONYMISED = Setting("rate_deanonymised", False, "rate votes on battles where a prompt asked the models who "
                            "they are or an answer named its own model (flagged `identity_flags` in the vote event; "
                            "archived either way)", parse=yes_no, flag="--rate-deanonymised",
                            env="ARENA_RATE_DEANONYMISED")

FLAGGED_VOTER_WEIGHT = Setting("flagged_voter_weight", 0.0, "weight in the fit of each vote of a voter flagged as "
                               "anomalous, in every view (`0` leaves them out, `1` counts them; each view's note "
                               "says how many)",
                               parse=bounded(float, 0.0, 1.0), flag="--flagged-voter-weight",
                               env="ARENA_FLAGGED_VOTER_WEIGHT")
VOTER_FLAG_ALPHA = Setting("voter_flag_alpha", 1e-3, "an honest voter is flagged with at most this probability over "
                           "their whole history (the anomalous-voter test, docs/anomalous-voters.md)",
                           parse=bounded(float, 0.0, 1.0, above=True), flag="--voter-flag-alpha",
                           env="ARENA_VOTER_FLAG_ALPHA")


def command_description(docstring: str) -> str:
    """A command's ``--help`` description from its module docstring: the first paragraph, as plain
    text (the docstring's RST double backticks dropped; argparse prints them as they are)."""
    return docstring.split("\n\n")[0].replace("``", "")


def _flag_help(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help with %


def add_arguments(parser: argparse.ArgumentParser, settings: Iterable[Setting]) -> None:
    """The settings' flags. An argument is set only when given (``SUPPRESS``), so ``read_values``
    can tell a flag from the environment, and a flag given before a subcommand survives the
    subcommand's parser having the same flag."""
    for setting in settings:
        common = dict(dest=setting.name, default=argparse.SUPPRESS)
        where = f"{setting.env_text}; " if setting.env else ""
        described = _flag_help(f"{setting.help} [{where}default: {setting.default_text}]")
        if not setting.is_switch:
            if setting.flag:
                parser.add_argument(setting.flag, type=setting.parse, choices=setting.choices,
                                    metavar=setting.metavar, help=described, **common)
            continue
        if setting.flag:
            parser.add_argument(setting.flag, action="store_const", const=True, help=described, **common)
        if setting.off_flag:
            off_help = f"do not {setting.help}" + (f" [{setting.env_text}]" if setting.env and not setting.flag else "")
            parser.add_argument(setting.off_flag, action="store_const", const=False, help=_flag_help(off_help),
                                **common)


def read_values(args: argparse.Namespace, settings: Iterable[Setting],
                environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Each setting's value: its flag if given, else its environment variable if set and not
    empty, else its default. Raises ``SettingError`` for a variable its setting refuses."""
    environ = os.environ if environ is None else environ
    given = vars(args)
    values = {}
    for setting in settings:
        if setting.name in given and (setting.flag or setting.off_flag):
            values[setting.name] = given[setting.name]
        elif setting.env and environ.get(setting.env, ""):
            values[setting.name] = setting.from_env(environ[setting.env])
        else:
            values[setting.name] = setting.default
    return values


def parse_with_settings(parser: argparse.ArgumentParser, argv: list[str] | None,
                        settings: Iterable[Setting]) -> argparse.Namespace:
    """``parser.parse_args(argv)`` with every setting's value filled in (``read_values``); a bad
    environment value stops the command with one line naming it."""
    args = parser.parse_args(argv)
    try:
        values = read_values(args, settings)
    except SettingError as error:
        error.exit(parser)
    return argparse.Namespace(**{**vars(args), **values})


def describe(values: Mapping[str, Any], settings: Iterable[Setting]) -> str:
    """One line per setting, secrets masked, for the start-up banner."""
    return "\n".join(f"  {setting.name:24} {setting.shown(values[setting.name])}" for setting in settings)


def markdown_table(settings: Iterable[Setting]) -> str:
    """The configurable settings as docs/configuration.md's table (flag, environment, default, meaning)."""
    lines = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for setting in settings:
        if not setting.configurable:
            continue
        value_flag = f"{setting.flag} {setting.metavar}" if setting.flag and setting.metavar else setting.flag
        flags = " / ".join(f"`{flag}`" for flag in (value_flag, setting.off_flag) if flag)
        env = f"`{setting.env_text}`" if setting.env else ""
        meaning = setting.help + (": " + ", ".join(f"`{c}`" for c in setting.choices) if setting.choices else "")
        lines.append(f"| {flags} | {env} | {setting.shown(setting.default, literal='`{}`')} | {meaning} |")
    return "\n".join(lines)
