"""Every model a web process may serve: the operator's configured models merged with the models
owners registered (arena.owners.store), picked up from Redis without a restart.

``ModelCatalog`` is an EndpointPool whose ``refresh`` (called by the battle engine before every
status read) compares the registry's version counter with the one it last loaded, and on a
change reloads the records and brings the clients in line: an approved model gets a client
(its key decrypted here, its connections behind the SSRF guard), a changed endpoint or key gets
a new one, a deleted or rejected model loses its client. One GET per refresh when nothing changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from arena.keys import model_daily_battles_key, model_daily_named_battles_key
from arena.models.availability import ModelStatus, utc_day
from arena.models.config import ModelSpec
from arena.models.endpoints import EndpointPool
from arena.owners.store import OwnerModel, OwnerStore
from arena.trust.secret_box import SecretBox, SecretKeyError
from arena.trust.ssrf import EndpointGuard

log = logging.getLogger(__name__)

_LIFECYCLE = {"pending": ModelStatus.PENDING, "rejected": ModelStatus.REJECTED, "retired": ModelStatus.RETIRED}


class ModelCatalog(EndpointPool):
    def __init__(self, specs: Sequence[ModelSpec], redis_client, prefix: str, box: SecretBox, guard: EndpointGuard,
                 *, battles_per_day: int = 0):
        super().__init__(specs)
        self.configured = frozenset(spec.name for spec in specs)
        self.redis = redis_client
        self.prefix = prefix
        self.store = OwnerStore(redis_client, prefix)
        self.box = box
        self.guard = guard
        self.battles_per_day = battles_per_day
        self.records: dict[str, OwnerModel] = {}
        self._served: dict[str, int] = {}  # owner model -> revision its client was built for
        self._undecryptable: set[str] = set()
        self._version: int | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> dict[str, ModelStatus]:
        version = await self.store.version()
        if version != self._version:
            async with self._lock:
                if version != self._version:
                    records = {m.name: m for m in await self.store.holders() if m.name not in self.configured}
                    await self._sync(records)
                    self.records, self._version = records, version
        return self._standing()

    def _standing(self) -> dict[str, ModelStatus]:
        """Statuses that come from the registry alone (the live models' come from availability)."""
        standing = {}
        for name, record in self.records.items():
            if record.state == "retired" and not record.published:
                continue  # deleted before approval: its name was never public, and deleting it does not publish it
            if record.state in _LIFECYCLE:
                standing[name] = _LIFECYCLE[record.state]
            elif name in self._undecryptable:
                standing[name] = ModelStatus.BENCHED
            elif record.paused:
                standing[name] = ModelStatus.PAUSED
        return standing

    async def _sync(self, records: dict[str, OwnerModel]) -> None:
        for name in list(self._served):
            record = records.get(name)
            if record is None or record.state != "active" or record.revision != self._served[name]:
                await self.remove(name)
                del self._served[name]
        self._undecryptable = set()
        for name, record in records.items():
            if record.state != "active" or name in self._served:
                continue
            try:
                api_key = self.box.decrypt(record.api_key_cipher) if record.api_key_cipher else None
            except SecretKeyError as error:
                log.error("owner model %s is left out: %s", name, error)
                self._undecryptable.add(name)
                continue
            self.add(record.spec(), api_key, self.guard)
            self._served[name] = record.revision

    def battle_eligible(self, name: str) -> bool:
        record = self.records.get(name)
        return record is None or record.anonymous

    def daily_quotas(self) -> dict[str, int]:
        if self.battles_per_day <= 0:
            return {}
        return {name: self.battles_per_day for name in self._served}

    async def seated(self, models: Sequence[str], named: bool = False) -> None:
        counted = [name for name in models if name in self._served]
        if self.battles_per_day <= 0 or not counted:
            return
        day = utc_day()
        pipe = self.redis.pipeline(transaction=False)
        for name in counted:
            keys = [model_daily_battles_key(self.prefix, name, day)]
            if named:
                keys.append(model_daily_named_battles_key(self.prefix, name, day))
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, 2 * 24 * 3600)
        await pipe.execute()
