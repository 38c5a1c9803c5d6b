"""The Redis ACL users of a deployment, one table (``ACL_USERS``): what the web processes and the worker
may run, on which keys and channels. Compose and Kubernetes start Redis with the ``--user`` arguments
rendered from it, deploy/README.md describes it, and tests/test_redis_acl.py runs the real web side
and the real worker under it on a real redis-server.

Two users, least privilege, from what each process does (every command and key below is one the code
sends; the test fails if the real operations meet a refusal):

- ``arena-web``: its own keys (battles, API sessions, rate limits, the matchmaker's state, the models'
  health, pauses and quotas, owner accounts and models), read and write; the vote stream: XADD only
  through the vote script (with the battle and the rate limits), XRANGE for ``/api/votes`` and the
  stream's gauges; the published board, the worker's figures and the flagged voters: read only;
  SUBSCRIBE to the snapshot channel. No XACK, XGROUP, XREADGROUP, XTRIM or DEL on the stream, no write
  to a snapshot, a view or a voter flag.
- ``arena-worker``: the published board (snapshot, views, stats, history, index, the refit lease and
  figures) and the voter watch (evidence, flags), read and write; PUBLISH on the snapshot channel; the
  vote stream: read with its consumer group (XREADGROUP, XACK, XAUTOCLAIM, XPENDING, XGROUP CREATE,
  XRANGE), never XADD; the dead-letter stream: XADD only. No battle, session, rate limit, owner or
  matchmaker key.
- ``default`` stays the operator's (the password ``requirepass`` sets): the operator commands
  (``python -m arena matchmaker|models|owners|voters``), ``leaderboard rebuild`` and ``redis-cli`` run
  with it. Neither service user may run an administrative command (CONFIG, FLUSHALL, DEBUG, ACL, KEYS,
  SHUTDOWN, ...): every user starts from ``-@all`` and gets commands by name.

Redis 7 or newer: the rules use selectors (``(...)``) and read-only key patterns (``%R~``), and Redis
checks the commands a Lua script runs against the user calling it. Key patterns carry the prefix
(``--prefix``, ``arena`` by default), escaped for Redis's glob.

``python -m arena.ops.redis_acl [--prefix P]`` prints the rules, one user a line, as ACL-file lines.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    """One ACL selector: these commands, on keys matching these patterns (after ``<prefix>:``) and on
    these channels. A user's first grant is its root permissions, the others are selectors; Redis
    allows a command when one of them allows it whole (every key, every channel)."""

    why: str
    commands: tuple[str, ...]
    keys: tuple[str, ...] = ()
    read_only: bool = False  # %R~: the keys may be read, never written, whatever the command
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class AclUser:
    name: str
    password_variable: str  # the Compose variable / Kubernetes Secret key holding its password
    role: str
    grants: tuple[Grant, ...]


# Commands every service connection sends whatever it does (redis-py's PING health check, INFO for
# /healthz's memory figure and the start-up checks, MULTI/EXEC around pipelines that must be atomic,
# and the commands redis-py's Script objects use: EVALSHA, and SCRIPT LOAD / EXISTS after a restart).
CONNECTION = ("ping", "info", "multi", "exec", "discard", "evalsha", "eval", "script|load", "script|exists")

WEB_OWN_KEYS = (
    "battle:*",  # arena.keys.battle_key
    "session:*",  # api_session_key
    "secret:voter",  # voter_secret_key (deleted at start: the secret is no longer kept in Redis)
    "matchmaker:*",  # paused models, pins, pair battles, the online belief (arena.matchmaker.keys)
    "model:*",  # in flight, benched, failures, errors, latency, answered-at, daily battles, probe lock
    "rate:*",  # rate_limit_key
    "models:configured",
    "owners",
    "owner-token:*",
    "owner-models",
    "owner-models:contenders",  # owner_model_contenders_key: pending registrations of a held name
    "owner-models:version",
)

ARENA_WEB = AclUser(
    name="arena-web",
    password_variable="ARENA_REDIS_WEB_PASSWORD",
    role="the web processes (page and JSON API)",
    grants=(
        Grant(
            why="its own keys: battles, sessions, rate limits, matchmaker, model health, owners",
            commands=(*CONNECTION, "get", "set", "del", "unlink", "exists", "expire", "pexpire", "incr", "decr",
                      "incrby", "mget", "hget", "hset", "hsetnx", "hmget", "hgetall", "hvals", "hexists", "hdel",
                      "hincrby", "hkeys", "hlen", "sadd", "srem", "smembers", "sismember", "lpush", "ltrim", "lrange",
                      "zadd", "zrem", "zcard", "zcount", "zrange", "zremrangebyscore", "ttl", "pttl", "scan",
                      "time"),
            keys=WEB_OWN_KEYS,
        ),
        Grant(
            why="the vote script: marks the battle voted, spends the limits, XADDs the signed event",
            commands=("evalsha", "eval", "xadd"),
            keys=("battle:*", "rate:*", "votes"),
        ),
        Grant(
            why="read only: /api/votes (XRANGE), the stream's gauges, the published board, flagged voters; "
                "SUBSCRIBE to new snapshots",
            commands=("get", "mget", "lrange", "hget", "hgetall", "hlen", "exists", "xrange", "xlen",
                      "xinfo|groups", "xpending", "subscribe", "unsubscribe", "ping"),
            keys=("votes", "leaderboard:*", "voters:flagged"),
            read_only=True,
            channels=("leaderboard:updates",),
        ),
    ),
)

ARENA_WORKER = AclUser(
    name="arena-worker",
    password_variable="ARENA_REDIS_WORKER_PASSWORD",
    role="the leaderboard worker",
    grants=(
        Grant(
            why="its own keys: snapshot, views, stats, history, index, lease, refit figures, voter watch; "
                "PUBLISH a new snapshot",
            commands=(*CONNECTION, "get", "set", "del", "mget", "rpush", "ltrim", "lrange", "hget", "hset",
                      "hmget", "hgetall", "hdel", "hincrby", "expire", "pexpire", "publish", "time"),
            keys=("leaderboard:*", "voters:*"),
            channels=("leaderboard:updates",),
        ),
        Grant(
            why="the vote stream, read with the consumer group: never XADD, XTRIM or DEL",
            commands=("xreadgroup", "xack", "xautoclaim", "xpending", "xgroup|create", "xrange", "xlen",
                      "xinfo|groups", "xinfo|stream"),
            keys=("votes",),
        ),
        Grant(
            why="the dead-letter stream: XADD only",
            commands=("xadd",),
            keys=("votes:dead",),
        ),
    ),
)

ACL_USERS = (ARENA_WEB, ARENA_WORKER)


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern (a prefix may contain ``{`` for hash tags, or ``[``)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def grant_tokens(grant: Grant, prefix: str) -> list[str]:
    marker = "%R~" if grant.read_only else "~"
    return ([f"+{command}" for command in grant.commands]
            + [f"{marker}{glob_escape(prefix)}:{key}" for key in grant.keys]
            + [f"&{glob_escape(prefix)}:{channel}" for channel in grant.channels])


def user_rules(user: AclUser, prefix: str = "arena") -> list[str]:
    """The user's ACL rules, without its password: ``reset``-like start, root grant, then selectors."""
    root, *selectors = user.grants
    return (["on", "resetkeys", "resetchannels", "-@all", *grant_tokens(root, prefix)]
            + ["(" + " ".join(grant_tokens(selector, prefix)) + ")" for selector in selectors])


def server_arguments(passwords: dict[str, str], prefix: str = "arena") -> list[str]:
    """``redis-server`` arguments defining every user (``--user NAME on >PASSWORD ...``); ``passwords``
    maps a user's name to its password (or to a placeholder such as ``$(ARENA_REDIS_WEB_PASSWORD)``)."""
    arguments = []
    for user in ACL_USERS:
        rules = user_rules(user, prefix)
        arguments += ["--user", user.name, rules[0], f">{passwords[user.name]}", *rules[1:]]
    return arguments


def acl_file_lines(prefix: str = "arena") -> list[str]:
    """The users as ACL-file lines, the password left as ``>PASSWORD`` for the operator to replace."""
    return [" ".join(["user", user.name, "on", f">${user.password_variable}", *user_rules(user, prefix)[1:]])
            for user in ACL_USERS]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m arena.ops.redis_acl", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", default="arena", help="the arena's Redis key prefix (default: arena)")
    arguments = parser.parse_args(argv)
    for line in acl_file_lines(arguments.prefix):
        print(line)


if __name__ == "__main__":
    main()
