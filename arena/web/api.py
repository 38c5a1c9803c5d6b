"""The JSON API: thin handlers over the battle engine and the leaderboard snapshot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from arena.availability import ModelStatus
from arena.battle_types import TurnProgress, position_labels
from arena.votes import battle_result
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


def request_session(request: Request,
                    header: Annotated[str | None, Header(alias=SESSION_HEADER)] = None) -> str | None:
    """The caller's session: the header, else the cookie set when its first battle was created."""
    return header or request.cookies.get(SESSION_COOKIE)


Session = Annotated[str | None, Depends(request_session)]
Context = Annotated[ArenaContext, Depends(get_context)]


def _battle_response(battle_id: str, session: str, progress: TurnProgress) -> BattleResponse:
    labels = position_labels(len(progress.answers))
    return BattleResponse(
        battle_id=battle_id, session=session, turn=progress.turn, votable=not any(progress.failed),
        answers=[Answer(label=label, text=text) for label, text in zip(labels, progress.answers)],
    )


# BattleError -> its HTTP status is one exception handler in arena.web.app, not a try in each route.


@router.get("/healthz")
async def healthz(context: Context):
    try:
        await context.redis.ping()
    except Exception as exc:  # the health check reports, it does not raise
        raise HTTPException(status_code=503, detail=f"redis unreachable: {type(exc).__name__}") from exc
    models = await context.battles.available_models()
    return {"status": "ok", "models_available": len(models)}


@router.post("/api/battles", response_model=BattleResponse)
async def create_battle(body: BattleRequest, request: Request, response: Response, context: Context,
                        session: Session):
    session = session or new_session_id()
    battle = await context.battles.create(session, voter_id=context.identity.voter_id(client_address(request)))
    progress = await context.battles.run_turn(battle.battle_id, session, body.prompt)
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
    return _battle_response(battle.battle_id, session, progress)


@router.post("/api/battles/{battle_id}/turns", response_model=BattleResponse)
async def continue_battle(battle_id: str, body: TurnRequest, context: Context, session: Session):
    progress = await context.battles.run_turn(battle_id, session or "", body.prompt)
    return _battle_response(battle_id, session or "", progress)


@router.post("/api/battles/{battle_id}/vote", response_model=VoteResponse)
async def vote(battle_id: str, body: VoteRequest, request: Request, context: Context, session: Session):
    voter = context.identity.voter_id(client_address(request))
    receipt = await context.battles.vote(battle_id, session or "", voter, outcome=body.outcome, ranking=body.ranking)
    return VoteResponse(vote_id=receipt.vote_id, battle_id=battle_id, outcome=receipt.outcome,
                        ranking=receipt.ranking, models=battle_result(receipt))


@router.get("/api/leaderboard")
async def leaderboard(context: Context):
    snapshot = await context.snapshot()
    if snapshot is None:
        return {"generated_at": None, "total_votes": 0, "method": None, "models": [],
                "note": "no snapshot yet: the first appears a few seconds after the first vote"}
    return {"generated_at": snapshot.generated_at, "total_votes": snapshot.total_votes, "method": snapshot.method,
            "models": [row.model_dump() for row in snapshot.rows], "note": snapshot.note}


@router.get("/api/models")
async def models(context: Context):
    status = await context.battles.model_status()
    return {"models": [{"model": name, "available": state == ModelStatus.AVAILABLE, "status": state}
                       for name, state in status.items()]}
