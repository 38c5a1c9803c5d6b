"""The leaderboard's JSON and CSV API: thin reads of the views the worker publishes (leaderboard.views.published),
through the web process's one reader (``ArenaContext.board``, a leaderboard.views.reader.BoardReader).

Nothing is fitted here. ``category`` names a published category (``/api/leaderboard/categories``);
``style_control=true`` picks its style-controlled view. An unknown category is a 404 naming the
known ones. Before the worker's first publish, ``/api/leaderboard`` answers an empty board (as it
always has); the overall view falls back to ``snapshot_key`` when no view was written (a worker
older than the views).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import JSONResponse

from arena.web.context import ArenaContext, get_context
from leaderboard.views.published import OVERALL, ViewIndex, view_id

router = APIRouter(tags=["leaderboard"])
Context = Annotated[ArenaContext, Depends(get_context)]
Category = Annotated[str, Query(description="a category name from /api/leaderboard/categories (default overall)")]
StyleControl = Annotated[bool, Query(description="the style-controlled view (answer length and markdown held equal)")]

CSV_FIELDS = ("rank", "rank_lower", "model", "rating", "lower", "upper", "votes", "rank_change")


def _check_category(index: ViewIndex | None, category: str) -> None:
    known = [info.name for info in index.categories] if index is not None else [OVERALL]
    if category not in known:
        raise HTTPException(status_code=404, detail=(
            f"unknown category {category!r}: the leaderboard has {', '.join(known)} "
            f"(a category is published once it has {index.min_category_votes if index else 'enough'} votes)"))


async def _board(context: ArenaContext, category: str, style_control: bool) -> dict:
    index = await context.board.index()
    _check_category(index, category)
    view = view_id(category, style_control)
    snapshot = await context.board.snapshot(view)
    common = {"category": category, "style_control": style_control, "view": view,
              "next_refit_at": index.next_refit_at if index else None}
    if snapshot is None:
        if style_control and index is not None:
            raise HTTPException(status_code=404, detail=f"no style-controlled view for {category!r} yet")
        return {"generated_at": None, "total_votes": 0, "method": None, "models": [],
                "note": "no snapshot yet: the first appears a few seconds after the first vote", **common}
    rows = [row.model_dump() for row in snapshot.rows]
    if style_control:
        plain = await context.board.snapshot(view_id(category))
        if plain is not None:
            # positive: the model ranks better once style is held equal (as fit --style-control reports it)
            plain_rank = {row.model: row.rank for row in plain.rows}
            for row in rows:
                if row["model"] in plain_rank:
                    row["rank_change"] = plain_rank[row["model"]] - row["rank"]
    return {"generated_at": snapshot.generated_at, "total_votes": snapshot.total_votes,
            "method": snapshot.method, "models": rows, "note": snapshot.note, **common}


@router.get("/api/leaderboard")
async def leaderboard(context: Context, category: Category = OVERALL, style_control: StyleControl = False):
    """The published leaderboard of one view: rows best first, with 95% intervals and rank intervals."""
    return JSONResponse(await _board(context, category, style_control))


@router.get("/api/leaderboard.csv")
async def leaderboard_csv(context: Context, category: Category = OVERALL, style_control: StyleControl = False):
    """The same rows as /api/leaderboard, as CSV."""
    board = await _board(context, category, style_control)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(board["models"])
    filename = f"leaderboard-{board['view'].replace(':', '-').replace('+', '-')}.csv"
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/api/leaderboard/categories")
async def leaderboard_categories(context: Context):
    """The published categories (overall first) with their vote counts."""
    index = await context.board.index()
    if index is None:
        return {"generated_at": None,
                "categories": [{"name": OVERALL, "label": "Overall", "kind": "overall", "votes": 0}],
                "style_control": False, "min_category_votes": None, "next_refit_at": None}
    return index.model_dump()


@router.get("/api/models/{name}/stats")
async def model_stats(name: str, context: Context):
    """One model's record: per opponent, its votes over time, its style, its rating in every category."""
    stats = await context.board.stats(OVERALL)
    if stats is None or name not in stats.models:
        models = stats.models if stats else []
        known = "no leaderboard has been published yet" if stats is None else \
            f"models on the leaderboard: {', '.join(models[:20])}{' ...' if len(models) > 20 else ''}"
        raise HTTPException(status_code=404, detail=f"unknown model {name!r}: {known}")
    me = stats.models.index(name)
    opponents = []
    for other, opponent in enumerate(stats.models):
        battles = stats.battles[me][other]
        if other == me or not battles:
            continue
        wins, ties = stats.wins[me][other], stats.ties[me][other]
        opponents.append({"opponent": opponent, "battles": battles, "wins": wins, "losses": battles - wins - ties,
                          "ties": ties, "win_rate": (wins + 0.5 * ties) / battles})
    opponents.sort(key=lambda row: (-row["battles"], row["opponent"]))
    styled = await context.board.stats(view_id(OVERALL, True))
    index = await context.board.index()
    ratings = {}
    for info in (index.categories if index else []):
        for style_control in (False, True):
            snapshot = await context.board.snapshot(view_id(info.name, style_control))
            row = next((row for row in snapshot.rows if row.model == name), None) if snapshot else None
            if row is not None:
                ratings[view_id(info.name, style_control)] = {
                    "category": info.name, "style_control": style_control, **row.model_dump(exclude={"model"})}
    return JSONResponse({
        "model": name, "generated_at": stats.generated_at,
        "battles": sum(row["battles"] for row in opponents),
        "win_rate": (sum(row["wins"] + 0.5 * row["ties"] for row in opponents)
                     / max(1, sum(row["battles"] for row in opponents))),
        "opponents": opponents,
        "days": stats.days, "votes_by_day": stats.votes_by_day[me] if stats.votes_by_day else [],
        "style_means": (styled.style_means.get(name, {}) if styled else {}),
        "style_coefficients": (styled.style_coefficients if styled else {}),
        "ratings": ratings,
    })
