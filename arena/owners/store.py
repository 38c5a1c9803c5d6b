"""Model owners and the models they register, kept in Redis (asyncio client) so every web process
and the operator's command line see one registry without a restart.

- An owner account (``OwnerAccount``) holds the SHA-256 of its bearer token, never the token:
  a token is shown once, by ``python -m arena owners add``. Tokens carry 256 random bits, so a
  plain hash is enough (no password stretching needed).
- A registered model (``OwnerModel``) holds its API key only as ciphertext (arena.trust.secret_box)
  and a masked hint for display. Every change bumps ``owner_models_version_key``; web
  processes reload the registry when the counter moves (arena.owners.catalog).
- A name is only claimed by approval. Until then it is nobody's public business: an owner who
  registers a name that another owner's unapproved model holds gets the same answer as for a
  free name (else anyone could probe for unreleased models), and the registration waits beside
  it as a *contender* (``owner_model_contenders_key``). The registry hash keeps one model per
  name, the one battles and the public list use; approving a contender swaps it in. Once a
  model under a name has been approved, the name is held for good: a second approval is refused
  with the operator told what to do.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from arena.keys import (
    owner_model_contenders_key,
    owner_models_key,
    owner_models_version_key,
    owner_token_key,
    owners_key,
)
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

    @property
    def published(self) -> bool:
        """Whether the name is public and held for good: the model is, or once was, approved."""
        return self.state == "active" or self.approved_at is not None

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


# A holder record claims its name against another owner when it is (or was) approved.
_CLAIMS_LUA = """
local function claims(raw, owner)
  local holder = cjson.decode(raw)
  return holder.owner == owner or holder.state == 'active'
    or (holder.approved_at ~= nil and holder.approved_at ~= cjson.null)
end
"""
# KEYS: registry, contenders, version. ARGV: name, owner, model JSON, contender field. 1 if stored.
_CREATE = _CLAIMS_LUA + """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
elseif claims(held, ARGV[2]) or redis.call('HSETNX', KEYS[2], ARGV[4], ARGV[3]) == 0 then
  return 0
end
redis.call('INCR', KEYS[3])
return 1
"""
# The same keys and ARGV: write the model where it lives (the registry if it holds the name).
_SAVE = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held and cjson.decode(held).owner == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
else
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[3])
end
redis.call('INCR', KEYS[3])
"""
# Approving, only if the name's holder is still the one read (else a concurrent approval could
# leave two approved models under one name). KEYS as above; ARGV: name, the holder as read, the
# approved model, and for a contender its field and the field the holder moves to ('' and '' when
# the holder itself is approved). 0 if the holder changed meanwhile.
_APPROVE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HDEL', KEYS[2], ARGV[4])
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[2])
end
redis.call('INCR', KEYS[3])
return 1
"""


def contender_field(owner: str, name: str) -> str:
    """Where a contender is kept: owner names have no '/', so the first one splits it."""
    return f"{owner}/{name}"


class OwnerStore:
    """Accounts and registered models in Redis (asyncio client)."""

    def __init__(self, redis_client, prefix: str):
        self.redis = redis_client
        self.prefix = prefix
        self._create = redis_client.register_script(_CREATE)
        self._save = redis_client.register_script(_SAVE)
        self._approve = redis_client.register_script(_APPROVE)

    def _model_keys(self) -> list[str]:
        return [owner_models_key(self.prefix), owner_model_contenders_key(self.prefix),
                owner_models_version_key(self.prefix)]

    def _model_args(self, model: OwnerModel) -> list[str]:
        return [model.name, model.owner, model.model_dump_json(), contender_field(model.owner, model.name)]

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
        """Every registration (the owner's, if named): the name holders and the contenders."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hvals(owner_models_key(self.prefix))
        pipe.hvals(owner_model_contenders_key(self.prefix))
        holders, contenders = await pipe.execute()
        models = [OwnerModel.model_validate_json(value) for value in [*holders, *contenders]]
        return sorted((m for m in models if owner is None or m.owner == owner), key=lambda m: m.created_at)

    async def holders(self) -> list[OwnerModel]:
        """The model that holds each name: the one battles, the public list and the board know."""
        raw = await self.redis.hvals(owner_models_key(self.prefix))
        return [OwnerModel.model_validate_json(value) for value in raw]

    async def model(self, name: str) -> OwnerModel | None:
        """The model holding ``name`` (whoever's)."""
        raw = await self.redis.hget(owner_models_key(self.prefix), name)
        return OwnerModel.model_validate_json(raw) if raw else None

    async def model_of(self, owner: str, name: str) -> OwnerModel | None:
        """``owner``'s model ``name``, holder or contender; None if they have none."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(owner_models_key(self.prefix), name)
        pipe.hget(owner_model_contenders_key(self.prefix), contender_field(owner, name))
        held, contender = await pipe.execute()
        for raw in (held, contender):
            model = OwnerModel.model_validate_json(raw) if raw else None
            if model is not None and model.owner == owner:
                return model
        return None

    async def name_free_for(self, owner: str, name: str) -> bool:
        """Whether ``owner`` may register ``name``: the same reads, and the same answer, whether the
        name is free or held by another owner's unapproved model (``create`` decides for good)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(owner_models_key(self.prefix), name)
        pipe.hexists(owner_model_contenders_key(self.prefix), contender_field(owner, name))
        held, own_contender = await pipe.execute()
        if own_contender:
            return False
        holder = OwnerModel.model_validate_json(held) if held else None
        return holder is None or not (holder.owner == owner or holder.published)

    async def create(self, model: OwnerModel) -> bool:
        """Store a new model; False if the name is taken for this owner (atomic: owners racing for a
        name). Taken means: configured names aside, held by an approved model or by one of theirs."""
        return bool(await self._create(keys=self._model_keys(), args=self._model_args(model)))

    async def save(self, model: OwnerModel) -> None:
        await self._save(keys=self._model_keys(), args=self._model_args(model))

    async def version(self) -> int:
        return int(await self.redis.get(owner_models_version_key(self.prefix)) or 0)

    async def registrations(self, name: str) -> list[OwnerModel]:
        """Every model registered as ``name``: its holder first, then any contenders."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(owner_models_key(self.prefix), name)
        pipe.hgetall(owner_model_contenders_key(self.prefix))
        held, contenders = await pipe.execute()
        found = [OwnerModel.model_validate_json(held)] if held else []
        return found + [OwnerModel.model_validate_json(raw) for field, raw in sorted(contenders.items())
                        if text(field).split("/", 1)[1] == name]

    async def set_state(self, name: str, state: Lifecycle, reason: str | None = None,
                        owner: str | None = None) -> OwnerModel:
        """The operator's approve (``active``) or reject (``rejected``, with the reason). ``owner``
        says which, when several owners registered the name before any was approved."""
        found = [m for m in await self.registrations(name) if owner is None or m.owner == owner]
        if not found:
            known = ", ".join(sorted({m.name for m in await self.models()})) or "none"
            of = f" of owner {owner!r}" if owner else ""
            raise OwnerError(f"no registered model {name!r}{of} (registered: {known})", 404)
        if len(found) > 1:
            owners = ", ".join(m.owner for m in found)
            raise OwnerError(f"{len(found)} owners registered a model named {name!r} ({owners}); say which with "
                             f"--owner: only one of them can have the name", 409)
        [model] = found
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
        approved = model.model_copy(update=update)
        raw_holder = await self.redis.hget(owner_models_key(self.prefix), name)
        holder = OwnerModel.model_validate_json(raw_holder) if raw_holder else None
        if state != "active" or holder is None:
            await self.save(approved)
            return approved
        if holder.owner == model.owner:
            fields = ["", ""]
        elif holder.published:
            raise OwnerError(f"the name {name!r} already belongs to owner {holder.owner!r}'s approved model "
                             f"({holder.state}); two models never share a name, so owner {model.owner!r}'s cannot be "
                             f"approved: reject it (`models reject {name} --owner {model.owner} --why \"the name is "
                             f"taken; register it under another name\"`)", 409)
        else:
            fields = [contender_field(model.owner, name), contender_field(holder.owner, name)]
        args = [name, raw_holder, approved.model_dump_json(), *fields]
        if not await self._approve(keys=self._model_keys(), args=args):
            raise OwnerError(f"the model holding {name!r} changed while approving; run the command again", 409)
        return approved
