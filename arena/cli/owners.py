"""``python -m arena owners ...`` and ``python -m arena models ...``: the operator's hands on model owners.

    python -m arena owners add NAME [--max-models N]   # prints the owner's token once, on its own line
    python -m arena owners list
    python -m arena owners revoke NAME                  # the token stops working; their models stay out of battles
    python -m arena models list                         # registered models, status, why benched, last error
    python -m arena models approve NAME [--owner O]     # pending -> active: in battles within seconds (unless paused)
    python -m arena models reject NAME --why "..." [--owner O]  # the owner sees the reason

``--owner`` picks one when several owners registered a name before any was approved (until then
none of them learns of the others); once one is approved the others can only be rejected.

They find the running arena as ``matchmaker`` does: ``--redis-url`` / REDIS_URL, else the
embedded Redis a running ``serve`` started in ``--data-dir`` (accepted after the subcommand too);
errors and exit codes are ``matchmaker``'s too (``operator_cli.run_operator_command``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import re
import sys

import redis
import redis.asyncio as aioredis

from arena.cli.operator import operator_parser, parse_operator_args, redis_url_for, run_operator_command
from arena.models import availability
from arena.models.health import ModelHealth
from arena.owners.store import OwnerError, OwnerStore
from arena.trust.secret_box import mask_key
from leaderboard.config import command_description


def parse_args(group: str, argv: list[str]) -> argparse.Namespace:
    parser, command = operator_parser(f"python -m arena {group}", command_description(__doc__))
    if group == "owners":
        add = command("add", "create an owner account and print its token (once)")
        add.add_argument("name")
        add.add_argument("--max-models", type=int, default=None,
                         help="pending or active models this owner may have (default: the arena's --owner-max-models)")
        command("list", "owner accounts and their models")
        revoke = command("revoke", "delete an owner's token (their models stay out of battles; it says how, per model)")
        revoke.add_argument("name")
    else:
        command("list", "registered models with status, reason and last error")
        approve = command("approve", "let a pending model into battles")
        approve.add_argument("name")
        reject = command("reject", "refuse a pending model, saying why")
        reject.add_argument("name")
        for which in (approve, reject):
            which.add_argument("--owner", default=None,
                               help="whose model, when several owners registered the name before any was approved")
        reject.add_argument("--why", required=True, help="the reason, shown to the owner")
    return parse_operator_args(parser, argv)


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


async def _owners(store: OwnerStore, args) -> list[str]:
    if args.command == "add":
        token = await store.add_owner(args.name, args.max_models)
        return [f"owner {args.name} created; their token (shown only now, stored only as a hash):", token]
    if args.command == "revoke":
        _, effects = await store.revoke_owner(args.name)
        told = "; ".join(f"{model}: {effect}" for model, effect in effects.items()) or "they had no models"
        return [f"owner {args.name} revoked: the token no longer works. {told}"]
    models = await store.models()
    lines = []
    for account in await store.owners():
        theirs = [m.name for m in models if m.owner == account.name]
        quota = "default" if account.max_models is None else str(account.max_models)
        lines.append(f"{account.name:<24} max models {quota:<8} created {_when(account.created_at)}"
                     f"{' (self-service)' if account.self_service else ''}  models: {', '.join(theirs) or '-'}")
    return lines or ["no owners yet: `python -m arena owners add NAME`"]


async def _models(client: aioredis.Redis, store: OwnerStore, args, sync_client) -> list[str]:
    if args.command == "approve":
        model = await store.set_state(args.name, "active", owner=args.owner)  # refused if its owner was revoked
        held = ("paused (by its owner, or when they were revoked): it enters battles once they resume it"
                if model.paused
                else "paused by the operator: `matchmaker resume` lets it in"
                if model.name in availability.paused_models(sync_client, args.prefix) else None)
        if held:
            return [f"approved {model.name} (owner {model.owner}), but it stays out of battles: {held}"]
        return [f"approved {model.name} (owner {model.owner}): every web process seats it within seconds"]
    if args.command == "reject":
        if not args.why.strip():
            raise OwnerError("say why with --why: the owner sees it")
        model = await store.set_state(args.name, "rejected", args.why.strip(), owner=args.owner)
        return [f"rejected {model.name} (owner {model.owner}): {model.rejected_reason}"]
    health = ModelHealth(client, args.prefix)
    models = await store.models()
    conditions = availability.known_conditions(sync_client, args.prefix)
    benched = await health.benched(sorted({m.name for m in models} | conditions.benched))
    lines = []
    for model in models:
        status = model.state
        if status == "active":
            status = ("paused" if model.paused or model.name in conditions.paused
                      else "benched" if model.name in benched else "active")
        check = model.health_check or {}
        check_text = (f"check {check.get('first_token_ms')} ms to first token" if check.get("ok")
                      else f"check failed ({check.get('error_class')})")
        lines.append(f"{model.name:<28} {status:<9} owner {model.owner:<16} {model.provider:<11} {check_text}; "
                     f"registered {_when(model.created_at)}")
        if model.state == "rejected":
            lines.append(f"    rejected: {model.rejected_reason}")
        lines.extend(_last_error(await health.recent_errors(model.name, 1)))
    registered = {model.name for model in models}
    for name, record in benched.items():
        lines.append(f"benched {name}: {shown_reason(record.get('reason'))} (since {_when(record.get('since'))}, "
                     f"next probe {_when(record.get('next_probe'))}, probes failed {record.get('probes', 0)})")
        if name not in registered:  # a configured model's (a registered one's is on its line above)
            lines.extend(_last_error(await health.recent_errors(name, 1)))
    return lines or ["no registered models yet"]


def _last_error(errors: list[dict]) -> list[str]:
    """The newest of a model's recent errors (arena.models.health, what the owner sees too), as a line."""
    if not errors:
        return []
    error = errors[0]
    where = error.get("source", "battle") + (f", HTTP {error['status_code']}" if error.get("status_code") else "")
    return [f"    last error {_when(error.get('at'))} ({where}): {shown_reason(error.get('reason'))}"]


_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|hf|api|key)[-_][A-Za-z0-9_\-]{8,}|(?<=Bearer )\S+", re.IGNORECASE)
_ADDRESS_LIKE = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")


def shown_reason(reason) -> str:
    """An endpoint's error as the operator's terminal shows it: anything shaped like an API key and
    any IP address masked (an endpoint's message may carry either; endpoints already blank the
    model's own key)."""
    text = _KEY_LIKE.sub(lambda found: mask_key(found.group()), str(reason or "-"))
    return _ADDRESS_LIKE.sub(lambda found: "<address>" if _is_address(found.group()) else found.group(), text)


def _is_address(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


async def _run(group: str, args, sync_client: redis.Redis) -> list[str]:
    client = aioredis.Redis.from_url(redis_url_for(args))
    try:
        store = OwnerStore(client, args.prefix)
        if group == "owners":
            return await _owners(store, args)
        return await _models(client, store, args, sync_client)
    finally:
        await client.aclose()


def main(group: str, argv: list[str] | None = None) -> int:
    args = parse_args(group, list(sys.argv[2:] if argv is None else argv))

    def body(sync_client: redis.Redis, args: argparse.Namespace) -> int:
        # OwnerError is a ValueError: run_operator_command prints it as one line, exit code 2
        print("\n".join(asyncio.run(_run(group, args, sync_client))))
        return 0

    return run_operator_command(args, body)
