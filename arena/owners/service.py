"""What an owner may do with their models: register, update (rotate the key, pause, resume),
delete; and what the operator does with them: approve, reject. Thin web handlers and the CLI
call these; the rules and their exact messages live here.

Registration validates every field, refuses a name that is public (configured, or approved for
another owner) or the owner's own already, and answers a name another owner's unapproved model
holds exactly as a free one (arena.owners.store: the operator approves one of them); checks the
owner's quota, runs the SSRF guard on the base URL, then a live health check through the same guarded
client battles use; only a healthy endpoint is stored, ``pending`` until the operator approves.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from arena.models.config import ModelSpec, Provider
from arena.models.health_check import HealthReport, check_endpoint
from arena.owners.store import OwnerAccount, OwnerError, OwnerModel, OwnerStore
from arena.trust.secret_box import SecretBox, mask_key
from arena.trust.ssrf import EndpointGuard, EndpointRefused, split_url

log = logging.getLogger(__name__)

MAX_OWNER_TIMEOUT = 120.0
MAX_OWNER_CONCURRENCY = 64
# Changing any of these points the name at another endpoint or model: it needs approval again.
REAPPROVAL_FIELDS = frozenset({"provider", "base_url", "model_id"})
# Changing any of these needs a fresh client, and a live check first.
CLIENT_FIELDS = REAPPROVAL_FIELDS | {"api_key"}


class ModelRegistration(BaseModel):
    """``POST /api/owner/models``: the models file's field names, plus the key and the owner's say
    on anonymous battles."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    provider: Provider = "openai"
    base_url: str = Field(max_length=2000)
    model_id: str = Field(min_length=1, max_length=300)
    api_key: str | None = Field(default=None, max_length=4096, repr=False)
    max_tokens: int = Field(default=1024, gt=0, le=32768)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    timeout: float = Field(default=60.0, gt=0, le=MAX_OWNER_TIMEOUT)
    max_concurrent: int = Field(default=4, ge=1, le=MAX_OWNER_CONCURRENCY)
    system_prompt: str | None = Field(default=None, max_length=4000)
    organisation: str = Field(default="", max_length=200)
    license: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    anonymous: bool = Field(default=True, description="may the model enter anonymous battles")


class ModelUpdate(BaseModel):
    """``PATCH /api/owner/models/{name}``: any registration field but the name, and ``paused``."""

    model_config = ConfigDict(extra="forbid")

    provider: Provider | None = None
    base_url: str | None = Field(default=None, max_length=2000)
    model_id: str | None = Field(default=None, min_length=1, max_length=300)
    api_key: str | None = Field(default=None, max_length=4096, repr=False)
    max_tokens: int | None = Field(default=None, gt=0, le=32768)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    timeout: float | None = Field(default=None, gt=0, le=MAX_OWNER_TIMEOUT)
    max_concurrent: int | None = Field(default=None, ge=1, le=MAX_OWNER_CONCURRENCY)
    system_prompt: str | None = Field(default=None, max_length=4000)
    organisation: str | None = Field(default=None, max_length=200)
    license: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    anonymous: bool | None = None
    paused: bool | None = None


def describe_validation(exc: ValidationError) -> str:
    """Pydantic's errors as one line per field; the key is never echoed, other inputs at most 80 chars."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(body)"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "missing":
            problems.append(f"field {field!r}: missing (required)")
        elif error["type"] == "extra_forbidden":
            problems.append(f"field {field!r}: unknown field")
        elif field == "api_key" or "api_key" in field:
            problems.append(f"field 'api_key': {message}")
        else:
            shown = repr(error.get("input"))
            problems.append(f"field {field!r}: {message} (got {shown[:80]}{'…' if len(shown) > 80 else ''})")
    return "; ".join(problems)


def _spec_problem(fields: Mapping[str, Any]) -> str | None:
    """What the guard's URL rule, then ModelSpec (the models file's own rules), say about these fields."""
    try:
        split_url(fields["base_url"])
    except EndpointRefused as refused:
        return f"field 'base_url': {refused}"
    try:
        ModelSpec(**{key: value for key, value in fields.items() if key in ModelSpec.model_fields})
    except ValidationError as exc:
        return describe_validation(exc)
    return None


class OwnerService:
    def __init__(self, store: OwnerStore, box: SecretBox, guard: EndpointGuard, *,
                 configured_names: Callable[[], Iterable[str]], default_max_models: int = 3,
                 health_check=check_endpoint):
        self.store = store
        self.box = box
        self.guard = guard
        self.configured_names = configured_names
        self.default_max_models = default_max_models
        self.health_check = health_check

    # -- owner's side ----------------------------------------------------------------------

    async def register(self, owner: OwnerAccount, registration: ModelRegistration) -> tuple[OwnerModel, HealthReport]:
        fields = registration.model_dump()
        problem = _spec_problem(fields)
        if problem:
            raise OwnerError(problem, 422)
        name = registration.name
        if name in set(self.configured_names()) or not await self.store.name_free_for(owner.name, name):
            raise OwnerError(f"the name {name!r} is taken by another model; pick another display name", 409)
        await self._check_quota(owner)
        report = await self._check_endpoint(fields)
        now = time.time()
        model = OwnerModel(
            **{key: value for key, value in fields.items() if key in OwnerModel.model_fields and key != "api_key"},
            owner=owner.name, api_key_cipher=self.box.encrypt(registration.api_key) if registration.api_key else None,
            api_key_hint=mask_key(registration.api_key), state="pending", created_at=now, updated_at=now,
            health_check=report.as_dict(),
        )
        if not await self.store.create(model):
            raise OwnerError(f"the name {name!r} is taken by another model; pick another display name", 409)
        log.info("owner %s registered model %s (%s), pending approval: `python -m arena models approve %s --owner %s`",
                 owner.name, name, model.provider, name, owner.name)
        return model, report

    async def owned(self, owner: OwnerAccount, name: str) -> OwnerModel:
        """The owner's model ``name``; 404 for another owner's (whose existence is not confirmed)."""
        model = await self.store.model_of(owner.name, name)
        if model is None:
            raise OwnerError(f"you have no model named {name!r}", 404)
        return model

    async def update(self, owner: OwnerAccount, name: str,
                     update: ModelUpdate) -> tuple[OwnerModel, HealthReport | None]:
        model = await self.owned(owner, name)
        if model.state == "retired":
            raise OwnerError(f"model {name!r} was deleted (retired); register a new one", 409)
        changes = update.model_dump(exclude_unset=True)
        paused = changes.pop("paused", None)
        current = model.model_dump()
        merged = {**current, **{k: v for k, v in changes.items() if k != "api_key"}}
        problem = _spec_problem(merged)
        if problem:
            raise OwnerError(problem, 422)
        report = None
        new_values: dict[str, Any] = {k: v for k, v in changes.items() if k != "api_key"}
        if CLIENT_FIELDS & changes.keys():
            api_key = changes["api_key"] if "api_key" in changes else self._key_of(model)
            report = await self._check_endpoint({**merged, "api_key": api_key})
            new_values["revision"] = model.revision + 1
            new_values["health_check"] = report.as_dict()
            if "api_key" in changes:
                new_values["api_key_cipher"] = self.box.encrypt(api_key) if api_key else None
                new_values["api_key_hint"] = mask_key(api_key)
            if any(changes.get(f, current[f]) != current[f] for f in REAPPROVAL_FIELDS) and model.state == "active":
                new_values["state"] = "pending"  # a new endpoint behind an approved name needs approval again
        elif {"max_tokens", "temperature", "top_p", "timeout", "max_concurrent", "system_prompt"} & changes.keys():
            new_values["revision"] = model.revision + 1
        if paused is not None:
            new_values["paused"] = paused
        new_values["updated_at"] = time.time()
        model = model.model_copy(update=new_values)
        await self.store.save(model)
        changed = ", ".join(sorted(update.model_dump(exclude_unset=True)))
        log.info("owner %s updated model %s (%s)", owner.name, name, changed)
        return model, report

    async def delete(self, owner: OwnerAccount, name: str) -> OwnerModel:
        """Retire the model: out of every battle, key destroyed; its votes stay in the archive and
        on the leaderboard, marked retired."""
        model = await self.owned(owner, name)
        now = time.time()
        model = model.model_copy(update={"state": "retired", "retired_at": now, "updated_at": now,
                                         "api_key_cipher": None, "revision": model.revision + 1})
        await self.store.save(model)
        return model

    def _key_of(self, model: OwnerModel) -> str | None:
        return self.box.decrypt(model.api_key_cipher) if model.api_key_cipher else None

    async def _check_quota(self, owner: OwnerAccount) -> None:
        limit = owner.max_models if owner.max_models is not None else self.default_max_models
        live = [m for m in await self.store.models(owner=owner.name) if m.state in ("pending", "active")]
        if len(live) >= limit:
            raise OwnerError(f"quota: owner {owner.name!r} may register at most {limit} model(s) and has {len(live)} "
                             "pending or active; delete one, or ask the operator for a higher --max-models", 403)

    async def _check_endpoint(self, fields: Mapping[str, Any]) -> HealthReport:
        try:
            await self.guard.check_url(fields["base_url"])
        except EndpointRefused as refused:
            raise OwnerError(f"field 'base_url': {refused}", 422) from None
        except socket.gaierror as exc:
            raise OwnerError(f"field 'base_url': health check failed (dns): {exc.strerror or exc}; check the host name",
                             422) from None
        spec = ModelSpec(**{key: value for key, value in fields.items() if key in ModelSpec.model_fields
                            and key not in ("api_key_env", "max_answer_seconds")} | {"max_retries": 0})
        report = await self.health_check(spec, fields.get("api_key"), self.guard)
        if not report.ok:
            raise OwnerError(f"health check failed ({report.error_class}): {report.error}; nothing was saved: fix the "
                             "endpoint and submit again", 422)
        return report

    # -- operator's side -------------------------------------------------------------------

    async def approve(self, name: str, owner: str | None = None) -> OwnerModel:
        return await self.store.set_state(name, "active", owner=owner)

    async def reject(self, name: str, why: str, owner: str | None = None) -> OwnerModel:
        if not why or not why.strip():
            raise OwnerError("say why with --why: the owner sees it")
        return await self.store.set_state(name, "rejected", why.strip(), owner=owner)
