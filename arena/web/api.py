"""The JSON API: thin handlers over the battle engine and the leaderboard snapshot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from arena.battles.requests import InvalidBattleRequest, check_size, named_choice, public_statuses
from arena.battles.types import RegenerationProgress, TurnProgress, position_labels
from arena.battles.votes import battle_result
from arena.models.availability import ModelStatus
from arena.trust.identity import is_api_session
from arena.web.context import ArenaContext, client_address, get_context
from arena.web.store_memory import store_memory
from arena.web.strict_json import StrictJSONRoute
from leaderboard.data.events import MAX_FEEDBACK_CHARS

SESSION_HEADER = "X-Arena-Session"
SESSION_COOKIE = "arena_session"
# Stands in for a session of another shape: no battle ever has it (API sessions are hex, page ones "ui:...").
FOREIGN_SESSION = "not-an-api-session"

router = APIRouter(route_class=StrictJSONRoute)


class TurnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1)


class BattleRequest(TurnRequest):
    k: int | None = Field(default=None, strict=True, description=(
        "answers in the battle: 2 (the default), or one of the arena's K-way sizes (--kway-sizes); "
        "with 'models', their number"))
    models: list[str] | None = Field(default=None, description=(
        "named mode: the models to compare (two, or one of the K-way sizes), in display order; votes "
        "are recorded with mode 'named' and left out of the ratings"))


class Answer(BaseModel):
    label: str
    text: str


class BattleResponse(BaseModel):
    battle_id: str
    session: str = Field(description=(
        f"issued by the server: send it back as the {SESSION_HEADER} header (or the cookie) to continue, "
        "vote or start the next battle in the same session; one the server did not issue is replaced"))
    turn: int
    answers: list[Answer]
    votable: bool


class RegenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="the answer to ask for again: A, B, ... (display order)")


class RegenerateResponse(BattleResponse):
    label: str = Field(description="the answer that was regenerated")
    regenerations: list[int] = Field(description="per answer (display order), the times it has been regenerated")
    regenerations_left: int = Field(description="the times this answer may still be regenerated (--max-regenerations)")


class VoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str | None = Field(default=None, description="model_a | model_b | tie | tie (bothbad)")
    ranking: list[list[str]] | None = Field(default=None, description="K-way: groups of labels, best first")
    partial: bool = Field(default=False, strict=True, description=(
        "K-way: the ranking places only the best (or the best few); the labels it leaves out were "
        "shown but not ranked (recorded as the vote's 'unranked' models)"))
    feedback: str | None = Field(default=None, max_length=MAX_FEEDBACK_CHARS,
                                 description="optional: why, in the voter's words (stored with the vote)")


class VoteResponse(BaseModel):
    vote_id: str
    battle_id: str
    outcome: str | None
    ranking: list[list[str]] | None
    unranked: list[str] = Field(default_factory=list, description="a partial ranking's models left out (names)")
    models: dict[str, str] = Field(description="revealed names: model_a, model_b, ...")
    identity_flags: list[str] = Field(default_factory=list, description=(
        "non-empty when a model may have revealed itself before the vote ('prompt-asks-identity', "
        "'names-itself:<label>'): the vote is kept but left out of the anonymous leaderboard"))


async def request_session(request: Request,
                    header: Annotated[str | None, Header(alias=SESSION_HEADER)] = None) -> str | None:
    """The caller's session: the header, else the cookie set when its first battle was created.
    Only the API's shape counts: any other (a page's ``ui:...`` one, say) is replaced by one that
    matches no battle, so a page battle cannot be driven through the API (403, another session's
    battle). Whether the API issued it is asked where a session is adopted: a new battle."""
    session = header or request.cookies.get(SESSION_COOKIE)
    if session is not None and not is_api_session(session):
        return FOREIGN_SESSION
    return session


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
    if context.battles.drain.closed:  # stopping: a load balancer sends new voters elsewhere
        raise HTTPException(status_code=503, detail="shutting down")
    try:
        await context.redis.ping()
    except Exception as exc:  # the health check reports, it does not raise
        raise HTTPException(status_code=503, detail=f"redis unreachable: {type(exc).__name__}") from exc
    models = await context.battles.available_models()
    return {"status": "ok", "models_available": len(models), **await store_memory(context.redis)}


@router.post("/api/battles", response_model=BattleResponse)
async def create_battle(body: BattleRequest, request: Request, response: Response, context: Context,
                        session: Session):
    chooser = None
    if body.models is not None:  # named mode: checked before anything is created or spent
        chooser = named_choice(body.models, await context.battles.model_status(), context.settings.kway_sizes)
        k = len(chooser.models)
        if body.k is not None and body.k != k:
            raise InvalidBattleRequest(f"'k' is {body.k} but 'models' names {k}: send one of them, or both agreeing")
    else:
        k = check_size(2 if body.k is None else body.k, context.settings.kway_sizes)
    # a session the arena issued is kept; a made-up one (or none) gets a new one: see the response's "session"
    session = await context.sessions.session_for(None if session == FOREIGN_SESSION else session)
    battle = await context.battles.create(session, k=k, voter_id=context.identity.voter_id(client_address(request)),
                                          prompt=body.prompt, chooser=chooser)
    progress = await context.battles.run_turn(battle.battle_id, session, body.prompt)
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
    return _battle_response(battle.battle_id, session, progress)


@router.post("/api/battles/{battle_id}/turns", response_model=BattleResponse)
async def continue_battle(battle_id: str, body: TurnRequest, context: Context, session: Session):
    progress = await context.battles.run_turn(battle_id, session or "", body.prompt)
    return _battle_response(battle_id, session or "", progress)


@router.post("/api/battles/{battle_id}/regenerate", response_model=RegenerateResponse)
async def regenerate(battle_id: str, body: RegenerateRequest, request: Request, context: Context, session: Session):
    """Ask one side's model again for the latest turn (same conversation before it); its new answer
    replaces the old one, for follow-ups and for the vote. Only once every answer has finished and
    before the vote (else 409); each answer at most --max-regenerations times (409; 403 when 0);
    each regeneration counts as a new battle against the battle limits (429). A model failure is a
    502 that keeps the previous answer: the battle can still be voted on."""
    voter = context.identity.voter_id(client_address(request))
    progress = await context.battles.run_regeneration(battle_id, session or "", body.label, voter_id=voter)
    return _regenerate_response(battle_id, session or "", progress, context.battles.max_regenerations)


def _regenerate_response(battle_id: str, session: str, progress: RegenerationProgress, cap: int) -> RegenerateResponse:
    shown = _battle_response(battle_id, session, progress)
    label = position_labels(len(progress.answers))[progress.position]
    return RegenerateResponse(**shown.model_dump(), label=label, regenerations=progress.regenerations,
                              regenerations_left=max(0, cap - progress.regenerations[progress.position]))


@router.post("/api/battles/{battle_id}/vote", response_model=VoteResponse)
async def vote(battle_id: str, body: VoteRequest, request: Request, context: Context, session: Session):
    voter = context.identity.voter_id(client_address(request))
    receipt = await context.battles.vote(battle_id, session or "", voter, outcome=body.outcome, ranking=body.ranking,
                                        feedback=body.feedback, partial=body.partial)
    return VoteResponse(vote_id=receipt.vote_id, battle_id=battle_id, outcome=receipt.outcome,
                        ranking=receipt.ranking, unranked=list(receipt.unranked), models=battle_result(receipt),
                        identity_flags=list(receipt.identity_flags))


# /api/leaderboard and its views: arena.web.leaderboard_api


@router.get("/api/models")
async def models(context: Context):
    # why a model is benched names its endpoint: that is for the operator and the owner, not the public
    status = public_statuses(await context.battles.model_status())
    return {"models": [{"model": name, "available": state == ModelStatus.ACTIVE, "status": state}
                       for name, state in status.items()]}
