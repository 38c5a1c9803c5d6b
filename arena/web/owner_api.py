"""The owners' JSON API: register, list, update and delete your models with your bearer token.

    POST   /api/owner/models            register (201: name, status "pending", the health check)
    GET    /api/owner/models            {"models": [{"name", "status", ...}, ...]}
    GET    /api/owner/models/{name}
    PATCH  /api/owner/models/{name}     update fields, rotate "api_key", "paused": true/false
    DELETE /api/owner/models/{name}     retire (votes stay)
    POST   /api/owner/signup            {"name"} -> a token, only with --owner-signup (limited per address,
                                        per /24 or /48 and per arena: --owner-signups-per-*)

Without a valid token: 401. Another owner's model: 404 (its existence is not confirmed).
Bodies are validated here rather than by FastAPI so that no error ever echoes the API key.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from arena.owners.service import ModelRegistration, ModelUpdate, describe_validation
from arena.owners.store import OwnerAccount, OwnerError
from arena.owners.view import model_views
from arena.trust.client_address import client_block
from arena.trust.rate_limit import DAY, HOUR, Limit, Rate, RateLimiter, subject
from arena.web.context import ArenaContext, client_address, get_context

router = APIRouter(prefix="/api/owner", tags=["owners"])
Context = Annotated[ArenaContext, Depends(get_context)]
MAX_BODY_BYTES = 64 * 1024


def _refusal(error: OwnerError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(status_code=error.status, content={"detail": str(error)}, headers=headers)


async def owner_errors(request: Request, exc: OwnerError) -> JSONResponse:
    return _refusal(exc)


async def current_owner(context: Context, authorization: Annotated[str | None, Header()] = None) -> OwnerAccount:
    token = None
    if authorization and authorization[:7].lower() == "bearer ":
        token = authorization[7:].strip()
    owner = await context.owners.store.authenticate(token) if context.owners else None
    if owner is None:
        raise OwnerError("missing or invalid owner token: send 'Authorization: Bearer <token>' with the token "
                         "`python -m arena owners add NAME` printed", 401)
    return owner


Owner = Annotated[OwnerAccount, Depends(current_owner)]


async def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise OwnerError(f"the request body has {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", 413)
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OwnerError("the body is not valid JSON: send a JSON object of fields", 400) from None
    if not isinstance(data, dict):
        raise OwnerError("the body must be a JSON object of fields", 422)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise OwnerError(describe_validation(exc), 422) from None


@router.post("/models", status_code=201)
async def register_model(request: Request, context: Context, owner: Owner):
    registration = await _body(request, ModelRegistration)
    model, report = await context.owners.register(owner, registration)
    [view] = await model_views(context.battles, [model])
    return {**view, "health_check": report.as_dict()}


@router.get("/models")
async def list_models(context: Context, owner: Owner):
    models = await context.owners.store.models(owner.name)
    return {"owner": owner.name, "models": await model_views(context.battles, models)}


@router.get("/models/{name:path}")
async def get_model(name: str, context: Context, owner: Owner):
    [view] = await model_views(context.battles, [await context.owners.owned(owner, name)])
    return view


@router.patch("/models/{name:path}")
async def update_model(name: str, request: Request, context: Context, owner: Owner):
    await context.owners.owned(owner, name)  # 404 before reading a body about someone else's model
    model, report = await context.owners.update(owner, name, await _body(request, ModelUpdate))
    [view] = await model_views(context.battles, [model])
    return {**view, "health_check": report.as_dict() if report else view["health_check"]}


@router.delete("/models/{name:path}")
async def delete_model(name: str, context: Context, owner: Owner):
    model = await context.owners.delete(owner, name)
    return {"name": model.name, "status": "retired",
            "note": "retired: out of every battle, key destroyed; past votes stay on the leaderboard, marked retired"}


class Signup(BaseModel):
    name: str


@router.post("/signup", status_code=201)
async def signup(request: Request, context: Context):
    settings = context.settings
    if not settings.owner_signup or context.owners is None:
        raise OwnerError("self-service sign-up is off on this arena: ask the operator for an owner token", 403)
    body = await _body(request, Signup)
    limiter = RateLimiter(context.redis, settings.prefix, "owner sign-ups")  # 429 RateLimited when spent
    network = client_address(request)
    # all or nothing, the address's limit first (so it is the one named when it binds): a party with
    # many addresses in one block counts once, and nobody gets past the arena's daily total
    await limiter.acquire([
        Limit(Rate(settings.owner_signups_per_hour, HOUR), subject("voter", context.identity.voter_id(network)),
              "from your address"),
        Limit(Rate(settings.owner_signups_per_network_per_day, DAY),
              subject("network", context.identity.voter_id(client_block(network))), "from your network"),
        Limit(Rate(settings.owner_signups_per_day, DAY), subject("arena", "all"), "on this arena"),
    ])
    token = await context.owners.store.add_owner(body.name, self_service=True)
    return {"owner": body.name, "token": token,
            "note": "keep the token: it is shown once; send it as 'Authorization: Bearer <token>'"}
