"""The arena's settings, one table (``SERVE_SETTINGS``): the ``Settings`` dataclass, the flags of
``python -m arena serve`` with their environment variables, the start-up banner (secrets masked)
and the configuration table of docs/configuration.md (``python -m arena.ops.settings`` prints it) are all derived
from its rows. The rows shared with other command lines come from ``leaderboard.config``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import field, make_dataclass, replace
from pathlib import Path
from typing import Any

from arena.battles.requests import KwaySizes, kway_sizes
from arena.matchmaker.fairness import FairnessPolicy
from arena.matchmaker.policy import DEFAULT_STRATEGY, STRATEGIES
from arena.trust.client_address import parse_trusted_proxies
from leaderboard.config import (
    DATA_DIR,
    FLAGGED_VOTER_WEIGHT,
    MIN_CATEGORY_VOTES,
    PREFIX,
    RATE_DEANONYMISED,
    REDIS_URL,
    REFIT_INTERVAL,
    VOTE_KEY,
    VOTER_FLAG_ALPHA,
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


def _voter_secret(text: str) -> str:
    if len(text.encode()) < 16:
        raise argparse.ArgumentTypeError("the voter-id secret must be at least 16 bytes (e.g. `openssl rand -hex 32`)")
    return text


# The matchmaker's fairness knobs, shared with the simulator; their defaults are the policy's own.
MATCHMAKER_FLOOR = Setting("matchmaker_floor", FairnessPolicy.floor,
                           "every model keeps at least this times an equal share of battles "
                           "(a uniform part of the mixture)",
                           parse=bounded(float, 0.0, 1.0), flag="--matchmaker-floor", env="ARENA_MATCHMAKER_FLOOR")
MAX_PAIR_SHARE = Setting("max_pair_share", FairnessPolicy.max_pair_share,
                         "no pair gets more than this share of the strategy's battles (at least twice an equal share; "
                         "binds only in small arenas)",
                         parse=bounded(float, 0.0, 1.0, above=True), flag="--max-pair-share",
                         env="ARENA_MAX_PAIR_SHARE")
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


LIMIT_OPTIONS = ("battles_per_minute", "battles_per_day", "votes_per_minute", "votes_per_day", "pair_votes_per_day",
                 "max_concurrent_answers", "max_regenerations", "max_answer_chars", "named_battles_per_model_per_day",
                 "named_share")


def limit_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The rate limits, the answer budget, the regeneration cap and the answer size cap (of a Settings) as
    BattleService options."""
    return {name: values[name] for name in LIMIT_OPTIONS}


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
    RATE_DEANONYMISED,
    FLAGGED_VOTER_WEIGHT,
    VOTER_FLAG_ALPHA,
    Setting("shutdown_grace", 5.0, "seconds a stopping process (SIGTERM, Ctrl-C) lets the answers in flight finish "
            "(new battles are refused meanwhile); answers still streaming then are ended and their battles "
            "marked failed",
            parse=bounded(float, 0.0), flag="--shutdown-grace", env="ARENA_SHUTDOWN_GRACE"),
    Setting("leaderboard_min_votes", 50, "the leaderboard marks a model *preliminary* below this many votes (the "
            "page's minimum-votes box starts here)", parse=bounded(int, 0), flag="--leaderboard-min-votes",
            env="ARENA_LEADERBOARD_MIN_VOTES"),
    MIN_CATEGORY_VOTES,
    Setting("battles_per_minute", 60, "new battles one voter (client address) may start per minute, counted in Redis "
            "across processes; `0` turns it off", parse=int, flag="--battles-per-minute",
            env="ARENA_BATTLES_PER_MINUTE"),
    Setting("kway_sizes", KwaySizes((4,)), "the K of K-way battles voters may choose (comma-separated, each 3 "
            "to 6; a two-way battle is always offered)", parse=kway_sizes, flag="--kway-sizes",
            env="ARENA_KWAY_SIZES"),
    # Limits of the trust work (token buckets in Redis, arena.trust.rate_limit): each counts per voter
    # (client address; IPv6 per /64) and, separately, per session; `0` turns one off.
    Setting("battles_per_day", 1000, "new battles one voter may start per day (and per session)",
            parse=bounded(int, 0), flag="--battles-per-day", env="ARENA_BATTLES_PER_DAY"),
    Setting("votes_per_minute", 60, "votes one voter may cast per minute (and per session); `0` turns it off",
            parse=bounded(int, 0), flag="--votes-per-minute", env="ARENA_VOTES_PER_MINUTE"),
    Setting("votes_per_day", 1000, "votes one voter may cast per day (and per session)",
            parse=bounded(int, 0), flag="--votes-per-day", env="ARENA_VOTES_PER_DAY"),
    Setting("pair_votes_per_day", 20, "votes one voter may cast on one pair of models per day",
            parse=bounded(int, 0), flag="--pair-votes-per-day", env="ARENA_PAIR_VOTES_PER_DAY"),
    Setting("named_battles_per_model_per_day", 20, "named battles one voter may start against one model per day",
            parse=bounded(int, 0), flag="--named-battles-per-model-per-day",
            env="ARENA_NAMED_BATTLES_PER_MODEL_PER_DAY"),
    Setting("named_share", 0.5, "share of a model's `max_concurrent` answers and daily battle quota that named "
            "battles may take (a new named battle waits while it is used); the rest stays for anonymous battles",
            parse=bounded(float, 0.0, 1.0, above=True), flag="--named-share", env="ARENA_NAMED_SHARE"),
    Setting("max_concurrent_answers", 256, "answers this web process streams at once; past it a new battle or "
            "turn is refused (503, Retry-After) before anything is spent; `0`: no budget",
            parse=bounded(int, 0), flag="--max-concurrent-answers", env="ARENA_MAX_CONCURRENT_ANSWERS"),
    Setting("max_regenerations", 2, "times a voter may regenerate each answer of a battle before voting (each one "
            "counts as a new battle against the battle limits); `0` turns regeneration off",
            parse=bounded(int, 0), flag="--max-regenerations", env="ARENA_MAX_REGENERATIONS"),
    Setting("max_answer_chars", 20000, "characters kept of one model answer; past them (or past the model's "
            "`max_answer_seconds`) the stream is cut, the answer shown and recorded as truncated, and the cut "
            "counts as a failure for the circuit breaker", parse=bounded(int, 1), flag="--max-answer-chars",
            env="ARENA_MAX_ANSWER_CHARS"),
    Setting("max_body_bytes", 64 * 1024, "largest JSON API request body, in bytes (413 before it is read)",
            parse=bounded(int, 1024), flag="--max-body-bytes", env="ARENA_MAX_BODY_BYTES"),
    Setting("max_page_body_bytes", 1024 * 1024, "largest request body of the page's Gradio endpoints (they send "
            "the conversation back with each prompt), in bytes", parse=bounded(int, 1024),
            flag="--max-page-body-bytes", env="ARENA_MAX_PAGE_BODY_BYTES"),
    Setting("flood_refusals", 30, "a client (address, IPv6 /64) refused this many times (400/404/413/422/429) "
            "within 10 s is held off for 10 s: 429 after a 1 s delay, without reaching the app; `0` turns it off",
            parse=bounded(int, 0), flag="--flood-refusals", env="ARENA_FLOOD_REFUSALS"),
    Setting("page_joins_per_minute", 300, "events one client (address, IPv6 /64) may put into the page's queue "
            "per minute (`POST /gradio_api/queue/join`; a battle takes a handful, the leaderboard tab 30 a minute), "
            "counted in Redis across processes; past it 429; `0` turns it off",
            parse=bounded(int, 0), flag="--page-joins-per-minute", env="ARENA_PAGE_JOINS_PER_MINUTE"),
    Setting("page_streams_per_client", 32, "event streams (`GET /gradio_api/queue/data`) one client may hold open "
            "at once, counted in Redis across processes; past it 429; `0` turns it off",
            parse=bounded(int, 0), flag="--page-streams-per-client", env="ARENA_PAGE_STREAMS_PER_CLIENT"),
    Setting("page_queue_size", 1000, "sessions with events not yet delivered that this web process's page queue "
            "holds; past it a join is refused (503, Retry-After) and the queue keeps running; a session that "
            "joined but never opened its stream is dropped after 30 s",
            parse=bounded(int, 10, 1900), flag="--page-queue-size", env="ARENA_PAGE_QUEUE_SIZE"),
    Setting("max_connections", 4096, "open HTTP connections this web process accepts; past it a new connection "
            "is answered 503 and closed (keep it well under the open-files limit, `ulimit -n`)",
            parse=bounded(int, 16), flag="--max-connections", env="ARENA_MAX_CONNECTIONS"),
    Setting("max_connections_per_client", 64, "open HTTP connections one client address (IPv6 /64) may hold; "
            "past it a new one is answered 503 and closed (trusted proxies are exempt); `0` turns it off",
            parse=bounded(int, 0), flag="--max-connections-per-client", env="ARENA_MAX_CONNECTIONS_PER_CLIENT"),
    Setting("request_timeout", 30.0, "seconds a client has to send a whole request (headers and body) once it "
            "connects or its last answer ends; a slower one is disconnected",
            parse=bounded(float, 0.0, above=True), flag="--request-timeout", env="ARENA_REQUEST_TIMEOUT"),
    Setting("redis_maxmemory", "1gb", "embedded Redis only: its `maxmemory`, with the `noeviction` policy (a full "
            "store refuses new writes with a 503 and never drops a vote); `0`: no limit",
            flag="--redis-maxmemory", env="ARENA_REDIS_MAXMEMORY"),
    Setting("trusted_proxies", None, "addresses or CIDR networks of the reverse proxies (nginx) whose "
            "`X-Forwarded-For` names the client; from any other peer the header is ignored",
            parse=parse_trusted_proxies, flag="--trusted-proxies", env="ARENA_TRUSTED_PROXIES", metavar="CIDR,...",
            unset="none: proxy headers ignored, the peer is the client"),
    Setting("voter_secret", None, "HMAC key for pseudonymous voter ids (at least 16 bytes; give every web process "
            "the same one); never stored in Redis", parse=_voter_secret, env="ARENA_VOTER_SECRET",
            unset="random, in `<data-dir>/secrets/` (0600)", mask=_hidden),
    VOTE_KEY,
    Setting("voter_id_rotation_days", 30.0, "the voter-id key changes every this many days (ids change at each "
            "boundary, so per-voter limits and the anomaly test start afresh); `0` never",
            parse=bounded(float, 0.0), flag="--voter-id-rotation-days", env="ARENA_VOTER_ID_ROTATION_DAYS"),
    Setting("metrics_token", None, "bearer token `GET /metrics` requires (`Authorization: Bearer ...`)",
            env="ARENA_METRICS_TOKEN", unset="none: /metrics is open (keep it off the public internet)", mask=_hidden),
    Setting("operator_token", None, "bearer token for the operator's JSON (`GET /api/operator/voters/flagged`)",
            env="ARENA_OPERATOR_TOKEN", unset="none: operator endpoints off (404)", mask=_hidden),
    Setting("release_text", False, "put prompts and answers in the vote download (`/api/votes`); the text of "
            "votes cast while it is on is kept in the vote stream", parse=yes_no, flag="--release-text",
            env="ARENA_RELEASE_TEXT"),
    Setting("release_key", None, "HMAC key for the voter pseudonyms of the vote download (not the voter secret); "
            "set the same one on every web process", env="ARENA_RELEASE_KEY",
            unset="generated once in the data dir (`release.key`, mode 0600)", mask=_hidden),
    # model owners (docs/owners.md)
    Setting("allow_private_endpoints", False, "let owners register endpoints on loopback, private, link-local "
            "and other non-public addresses (the SSRF guard is off)", parse=yes_no, flag="--allow-private-endpoints",
            env="ARENA_ALLOW_PRIVATE_ENDPOINTS"),
    Setting("owner_signup", False, "let anyone create an owner account (`POST /api/owner/signup`), rate limited",
            parse=yes_no, flag="--owner-signup", env="ARENA_OWNER_SIGNUP"),
    Setting("owner_signups_per_hour", 3, "owner accounts one client address may create per hour (with --owner-signup)",
            parse=bounded(int, 1), flag="--owner-signups-per-hour", env="ARENA_OWNER_SIGNUPS_PER_HOUR"),
    Setting("owner_signups_per_network_per_day", 5, "owner accounts the clients of one network (an IPv4 /24, an IPv6 "
            "/48) may create per day, all addresses together; `0`: no limit", parse=bounded(int, 0),
            flag="--owner-signups-per-network-per-day", env="ARENA_OWNER_SIGNUPS_PER_NETWORK_PER_DAY"),
    Setting("owner_signups_per_day", 50, "owner accounts the whole arena creates by sign-up per day, whoever asks; "
            "`0`: no limit", parse=bounded(int, 0), flag="--owner-signups-per-day", env="ARENA_OWNER_SIGNUPS_PER_DAY"),
    Setting("owner_max_models", 3, "pending or active models an owner may have (unless `owners add --max-models`)",
            parse=bounded(int, 0), flag="--owner-max-models", env="ARENA_OWNER_MAX_MODELS"),
    Setting("model_battles_per_day", 0, "battles an owner's model may be seated in per UTC day; `0`: no limit",
            parse=bounded(int, 0), flag="--model-battles-per-day", env="ARENA_MODEL_BATTLES_PER_DAY"),
    Setting("secret_key", None, "Fernet key that encrypts owners' API keys at rest", env="ARENA_SECRET_KEY",
            unset="generated once into DATA_DIR/secret.key (mode 0600)", mask=_hidden),
    # the circuit breaker (arena.models.health)
    Setting("breaker_failures", 3, "failed answers within the window that bench a model...", parse=bounded(int, 1),
            flag="--breaker-failures", env="ARENA_BREAKER_FAILURES"),
    Setting("breaker_voters", 2, "...coming from at least this many different voters", parse=bounded(int, 1),
            flag="--breaker-voters", env="ARENA_BREAKER_VOTERS"),
    Setting("breaker_window", 300.0, "seconds the breaker looks back", parse=bounded(float, 0.0, above=True),
            flag="--breaker-window", env="ARENA_BREAKER_WINDOW"),
    Setting("breaker_streak", 6, "failed answers in a row within the window (none answered between) that bench a model "
            "whoever asked; `0` leaves benching to the two rows above", parse=bounded(int, 0),
            flag="--breaker-streak", env="ARENA_BREAKER_STREAK"),
    Setting("breaker_first_probe", 30.0,
            "seconds until a benched model is first probed; doubled after each failed probe",
            parse=bounded(float, 0.0, above=True), flag="--breaker-first-probe", env="ARENA_BREAKER_FIRST_PROBE"),
    Setting("breaker_max_probe", 900.0, "longest wait between probes of a benched model, seconds",
            parse=bounded(float, 0.0, above=True), flag="--breaker-max-probe", env="ARENA_BREAKER_MAX_PROBE"),
    Setting("battle_ttl", 24 * 3600, "seconds a battle stays votable (and in Redis) after it starts",
            parse=bounded(int, 1), flag="--battle-ttl", env="ARENA_BATTLE_TTL"),
    Setting("max_prompt_chars", 8000, "longest prompt accepted, in characters (a longer one is refused with 400)",
            parse=bounded(int, 1), flag="--max-prompt-chars", env="ARENA_MAX_PROMPT_CHARS"),
    Setting("max_turns", 8, "turns in one battle's conversation (then: vote, or a new round)",
            parse=bounded(int, 1), flag="--max-turns", env="ARENA_MAX_TURNS"),
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
    namespace={"describe": _describe, "__post_init__": _resolve_demo,
               "__doc__": "The arena's settings, one field per row of SERVE_SETTINGS."},
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
