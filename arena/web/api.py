"""The JSON API: thin handlers over the battle engine and the leaderboard snapshot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from arena.battles import Battle, BattleError, TurnProgress, battle_result
from arena.identity import new_session_id
from arena.web.context import ArenaContext, client_address, get_context

SESSION_HEADER = "X-Arena-Session"
SESSION_COOKIE = "arena_session"

router = APIRouter()


class BattleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)


class TurnRequest(BattleRequest):
    pass


class Answer(BaseModel):
    label: str
    text: str


class BattleResponse(BaseModel):
    battle_id: str
    session: str = Field(description=f"send it back as the {SESSION_HEADER} header (or the cookie) to vote")
    turn: int
    answers: list[Answer]
    votable: bool


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str | None = Field(default=None, description="model_a | model_b | tie | tie (bothbad)")
    ranking: list[list[str]] | None = Field(default=None, description="K-way: groups of labels, best first")


class VoteResponse(BaseModel):
    vote_id: str
    battle_id: str
    outcome: str | None
    ranking: list[list[str]] | None
    models: dict[str, str] = Field(description="revealed names: model_a, model_b, ...")


def _session(request: Request, header: str | None) -> str | None:
    return header or request.cookies.get(SESSION_COOKIE)


def _battle_response(battle: Battle, session: str, turn: int, progress: TurnProgress) -> BattleResponse:
    return BattleResponse(
        battle_id=battle.battle_id, session=session, turn=turn, votable=not any(progress.failed),
        answers=[Answer(label=label, text=text) for label, text in zip(battle.labels, progress.answers)],
    )


def _as_http(error: BattleError) -> HTTPException:
    return HTTPException(status_code=error.status, detail=str(error))


@router.get("/healthz")
async def healthz(context: Annotated[ArenaContext, Depends(get_context)]):
    try:
        await context.redis.ping()
    except Exception as exc:  # the health check reports, it does not raise
        raise HTTPException(status_code=503, detail=f"redis unreachable: {type(exc).__name__}") from exc
    models = await context.battles.available_models()
    return {"status": "ok", "models_available": len(models)}


@router.post("/api/battles", response_model=BattleResponse)
async def create_battle(body: BattleRequest, request: Request, response: Response,
                        context: Annotated[ArenaContext, Depends(get_context)],
                        session_header: Annotated[str | None, Header(alias=SESSION_HEADER)] = None):
    session = _session(request, session_header) or new_session_id()
    voter = context.identity.voter_id(client_address(request))
    try:
        battle = await context.battles.create(session, voter_id=voter)
        progress = await context.battles.run_turn(battle.battle_id, session, body.prompt)
    except BattleError as error:
        raise _as_http(error) from error
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
    return _battle_response(battle, session, 1, progress)


@router.post("/api/battles/{battle_id}/turns", response_model=BattleResponse)
async def continue_battle(battle_id: str, body: TurnRequest, request: Request,
                          context: Annotated[ArenaContext, Depends(get_context)],
                          session_header: Annotated[str | None, Header(alias=SESSION_HEADER)] = None):
    session = _session(request, session_header) or ""
    try:
        progress = await context.battles.run_turn(battle_id, session, body.prompt)
        battle, _ = await context.battles.load(battle_id, session)
    except BattleError as error:
        raise _as_http(error) from error
    return _battle_response(battle, session, len(battle.turns), progress)


@router.post("/api/battles/{battle_id}/vote", response_model=VoteResponse)
async def vote(battle_id: str, body: VoteRequest, request: Request,
               context: Annotated[ArenaContext, Depends(get_context)],
               session_header: Annotated[str | None, Header(alias=SESSION_HEADER)] = None):
    session = _session(request, session_header) or ""
    voter = context.identity.voter_id(client_address(request))
    try:
        receipt = await context.battles.vote(battle_id, session, voter, outcome=body.outcome, ranking=body.ranking)
    except BattleError as error:
        raise _as_http(error) from error
    return VoteResponse(vote_id=receipt.vote_id, battle_id=battle_id, outcome=receipt.outcome,
                        ranking=receipt.ranking, models=battle_result(receipt))


@router.get("/api/leaderboard")
async def leaderboard(context: Annotated[ArenaContext, Depends(get_context)]):
    snapshot = await context.snapshot()
    if snapshot is None:
        return {"generated_at": None, "total_votes": 0, "method": None, "models": [],
                "note": "no snapshot yet: the first appears a few seconds after the first vote"}
    return {"generated_at": snapshot.generated_at, "total_votes": snapshot.total_votes, "method": snapshot.method,
            "models": [row.model_dump() for row in snapshot.rows], "note": snapshot.note}


@router.get("/api/models")
async def models(context: Annotated[ArenaContext, Depends(get_context)]):
    available = set(await context.battles.available_models())
    return {"models": [{"model": name, "available": name in available} for name in context.battles.endpoints.names]}
