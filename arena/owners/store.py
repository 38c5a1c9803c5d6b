"""Model owners and the models they register, kept in Redis (asyncio client) so every web process
and the operator's command line see one registry without a restart.

- An owner account (``OwnerAccount``) holds the SHA-256 of its bearer token, never the token:
  a token is shown once, by ``python -m arena owners add``. Tokens carry 256 random bits, so a
  plain hash is enough (no password stretching needed).
- A registered model (``OwnerModel``) holds its API key only as ciphertext (arena.trust.secret_box)
  and a masked hint for display. Every change bumps ``owner_models_version_key``; web
  processes reload the registry when the counter moves (arena.owners.catalog).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from arena.keys import owner_models_key, owner_models_version_key, owner_token_key, owners_key
from arena.models.config import ModelSpec, Provider
from leaderboard.store.stream import text

TOKEN_PREFIX = "arena_owner_"
OWNER_NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
Lifecycle = Literal["pending", "active", "rejected", "retired"]


class OwnerError(ValueError):
    """A request about owners or their models that is refused; ``status`` is the HTTP status."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OwnerAccount(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    token_hash: str = Field(repr=False)
    max_models: int | None = None  # None: the operator's default (--owner-max-models)
    created_at: float
    self_service: bool = False


class OwnerModel(BaseModel):
    """One owner-registered model as stored (the key only encrypted)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    owner: str
    provider: Provider
    base_url: str
    model_id: str
    max_tokens: int
    temperature: float
    top_p: float | None = None
    timeout: float
    max_concurrent: int
    system_prompt: str | None = None
    organisation: str = ""
    license: str = ""
    description: str = ""
    anonymous: bool = True
    api_key_cipher: str | None = Field(default=None, repr=False)
    api_key_hint: str = "(none)"
    state: Lifecycle = "pending"
    paused: bool = False
    rejected_reason: str | None = None
    created_at: float
    updated_at: float
    approved_at: float | None = None
    retired_at: float | None = None
    revision: int = 1  # bumped whenever the client must be rebuilt (endpoint or key changed)
    health_check: dict | None = None  # the last live check at registration or update

    def spec(self) -> ModelSpec:
        """The ModelSpec the endpoint clients use (the key travels separately, decrypted)."""
        return ModelSpec(name=self.name, provider=self.provider, base_url=self.base_url, model_id=self.model_id,
                         max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                         timeout=self.timeout, max_answer_seconds=max(self.timeout * 5, 60.0),
                         max_concurrent=self.max_concurrent, max_retries=0, system_prompt=self.system_prompt,
                         description=self.description, organisation=self.organisation, license=self.license)


def revocation_effect(model: OwnerModel) -> str:
    """What revoking its owner means for a model (the owner's pause is set on every live one)."""
    if model.state == "active":
        return "paused"
    if model.state == "pending":
        return "pending, will stay out of battles (owner revoked)"
    return f"{model.state}, out of battles already"


class OwnerStore:
    """Accounts and registered models in Redis (asyncio client)."""

    def __init__(self, redis_client, prefix: str):
        self.redis = redis_client
        self.prefix = prefix

    # -- accounts ---------------------------------------------------------------------------

    async def add_owner(self, name: str, max_models: int | None = None, *, self_service: bool = False) -> str:
        """Create an account and return its token (shown once; only its hash is kept)."""
        if not name or len(name) > 64 or set(name) - OWNER_NAME_CHARACTERS:
            raise OwnerError(f"owner name {name[:80]!r} must be 1-64 letters, digits, '-', '_' or '.'")
        if max_models is not None and max_models < 0:
            raise OwnerError("--max-models must be 0 or more")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        account = OwnerAccount(name=name, token_hash=token_hash(token), max_models=max_models, created_at=time.time(),
                               self_service=self_service)
        if not await self.redis.hsetnx(owners_key(self.prefix), name, account.model_dump_json()):
            raise OwnerError(f"an owner named {name!r} already exists; revoke it first or pick another name", 409)
        await self.redis.set(owner_token_key(self.prefix, account.token_hash), name)
        return token

    async def owners(self) -> list[OwnerAccount]:
        raw = await self.redis.hgetall(owners_key(self.prefix))
        return sorted((OwnerAccount.model_validate_json(value) for value in raw.values()), key=lambda a: a.name)

    async def owner(self, name: str) -> OwnerAccount | None:
        raw = await self.redis.hget(owners_key(self.prefix), name)
        return OwnerAccount.model_validate_json(raw) if raw else None

    async def revoke_owner(self, name: str) -> tuple[OwnerAccount, dict[str, str]]:
        """Delete the account and its token. Its models stay, paused, until the operator decides;
        returns, per model, what that means for it (``revocation_effects``)."""
        account = await self.owner(name)
        if account is None:
            raise OwnerError(f"no owner named {name!r} (see `owners list`)", 404)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(owner_token_key(self.prefix, account.token_hash))
        pipe.hdel(owners_key(self.prefix), name)
        await pipe.execute()
        models = await self.models(owner=name)
        for model in models:
            if model.state != "retired" and not model.paused:
                await self.save(model.model_copy(update={"paused": True, "updated_at": time.time()}))
        return account, {model.name: revocation_effect(model) for model in models}
    async def authenticate(self, token: str | None) -> OwnerAccount | None:
        """The account a bearer token belongs to, or None."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        name = await self.redis.get(owner_token_key(self.prefix, token_hash(token)))
        if name is None:
            return None
        account = await self.owner(text(name))
        if account is None or not secrets.compare_digest(account.token_hash, token_hash(token)):
            return None
        return account

    # -- registered models -----------------------------------------------------------------

    async def models(self, owner: str | None = None) -> list[OwnerModel]:
        raw = await self.redis.hgetall(owner_models_key(self.prefix))
        models = [OwnerModel.model_validate_json(value) for value in raw.values()]
        return sorted((m for m in models if owner is None or m.owner == owner), key=lambda m: m.created_at)

    async def model(self, name: str) -> OwnerModel | None:
        raw = await self.redis.hget(owner_models_key(self.prefix), name)
        return OwnerModel.model_validate_json(raw) if raw else None

    async def create(self, model: OwnerModel) -> bool:
        """Store a new model; False if the name is taken (atomic: two owners racing for a name)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(owner_models_key(self.prefix), model.name, model.model_dump_json())
        pipe.incr(owner_models_version_key(self.prefix))
        created, _ = await pipe.execute()
        return bool(created)

    async def save(self, model: OwnerModel) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(owner_models_key(self.prefix), model.name, model.model_dump_json())
        pipe.incr(owner_models_version_key(self.prefix))
        await pipe.execute()

    async def version(self) -> int:
        return int(await self.redis.get(owner_models_version_key(self.prefix)) or 0)

    async def set_state(self, name: str, state: Lifecycle, reason: str | None = None) -> OwnerModel:
        """The operator's approve (``active``) or reject (``rejected``, with the reason)."""
        model = await self.model(name)
        if model is None:
            known = ", ".join(m.name for m in await self.models()) or "none"
            raise OwnerError(f"no registered model {name!r} (registered: {known})", 404)
        if model.state == "retired":
            raise OwnerError(f"model {name!r} was deleted by its owner (retired); it cannot be {state}", 409)
        if state == "active" and await self.owner(model.owner) is None:
            raise OwnerError(f"model {name!r} belongs to owner {model.owner!r}, whose account was revoked: approved, "
                             f"it would stay paused with nobody to resume it. Reject it (--why), or add the owner "
                             f"again (`owners add {model.owner}`) so they can resume it, then approve", 409)
        now = time.time()
        update = {"state": state, "updated_at": now, "rejected_reason": reason if state == "rejected" else None}
        if state == "active":
            update["approved_at"] = now
        model = model.model_copy(update=update)
        await self.save(model)
        return model
