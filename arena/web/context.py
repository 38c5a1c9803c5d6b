"""What every request handler needs, built once at start-up and injected (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis
from fastapi import Request

from arena.battles.engine import BattleService
from arena.metrics import ArenaMetrics, NoMetrics
from arena.ops.settings import Settings
from arena.owners.service import OwnerService
from arena.trust.client_address import client_network
from arena.trust.identity import ApiSessions, PageSessions, VoterIdentity
from leaderboard.views.reader import BoardReader


@dataclass
class ArenaContext:
    settings: Settings
    redis: aioredis.Redis
    battles: BattleService
    identity: VoterIdentity
    metrics: ArenaMetrics = field(default_factory=NoMetrics)
    owners: OwnerService | None = None  # model owners' registrations (arena.owners.service)
    page_sessions: PageSessions = field(default_factory=PageSessions)  # the page's cookie (arena.web.page_session)
    # The JSON API's sessions, in Redis: kept as long as a battle (--battle-ttl) after the last one started.
    sessions: ApiSessions = field(init=False)
    # The published board, read through one reader per process: the API and the page share its parsed documents.
    board: BoardReader = field(init=False)

    def __post_init__(self) -> None:
        self.board = BoardReader(self.redis, self.settings.prefix)
        self.sessions = ApiSessions(self.redis, self.settings.prefix, ttl=self.settings.battle_ttl)


async def get_context(request: Request) -> ArenaContext:
    # async: FastAPI runs a plain-def dependency in a worker thread, a thread hop per request
    return request.app.state.arena


def client_address(request) -> str:
    """The client network of a FastAPI or Gradio request (an IPv4 address or an IPv6 /64, see
    arena.trust.client_address), only ever passed to VoterIdentity.voter_id (never logged or stored).
    ``request.client`` is the peer, or the client a trusted proxy named (uvicorn's proxy headers
    middleware, configured from --trusted-proxies in arena.cli.serve)."""
    return client_network(request.client.host if request.client else None)
