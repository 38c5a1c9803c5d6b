"""Operator-only JSON: ``GET /api/operator/voters/flagged``, behind ``ARENA_OPERATOR_TOKEN`` (off,
404, when no token is set): the voters the anomaly test flagged, as ``python -m arena voters
flagged --json`` prints them."""

from __future__ import annotations

import hmac
import json

from fastapi import APIRouter, HTTPException, Request

from leaderboard.store.redis_keys import flagged_voters_key

router = APIRouter()


def require_operator(request: Request) -> None:
    token = request.app.state.arena.settings.operator_token
    if not token:
        raise HTTPException(status_code=404, detail="operator endpoints are off: set ARENA_OPERATOR_TOKEN to use them")
    sent = request.headers.get("authorization", "")
    if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        raise HTTPException(status_code=401, detail="send 'Authorization: Bearer <ARENA_OPERATOR_TOKEN>'",
                            headers={"WWW-Authenticate": "Bearer"})


@router.get("/api/operator/voters/flagged", include_in_schema=False)
async def flagged_voters(request: Request) -> dict:
    require_operator(request)
    context = request.app.state.arena
    stored = await context.redis.hgetall(flagged_voters_key(context.settings.prefix))
    voters = {voter.decode(): json.loads(why) for voter, why in stored.items()}
    return {"flagged": voters, "count": len(voters)}
