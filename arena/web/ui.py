"""The Gradio page: tabs that build their components and wire events to domain code, nothing more.

The browser only ever holds answers by position (Model A, Model B, ...). The battle id lives in
a ``gr.State``, which Gradio keeps on the server; names arrive only in the vote's reply.
"""

from __future__ import annotations

import datetime

import gradio as gr
import pandas as pd

from arena.web.battle_view import PAGE_ONLY, BattleView
from arena.web.context import ArenaContext

LEADERBOARD_COLUMNS = ("Rank", "Model", "Rating", "95% CI", "Rank range", "Votes")

INTRO = """# ⚔️ Arena
Ask anything. Two anonymous models answer side by side; vote for the better answer and their names are revealed.
Keep chatting with both before you vote if you like. Your vote feeds the live leaderboard."""

KWAY_INTRO = """Ask once, read {k} anonymous answers, and rank them. One ranking tells the leaderboard more than
one pairwise vote (it is fitted with a Plackett-Luce model)."""

# K for the K-way tab: four answers, as in K-Sort Arena, when enough models are configured.
KWAY_SIZE = 4


def leaderboard_frame(snapshot) -> tuple[pd.DataFrame, str]:
    if snapshot is None or not snapshot.rows:
        return (pd.DataFrame(columns=list(LEADERBOARD_COLUMNS)),
                "No votes yet: the leaderboard appears a few seconds after the first vote.")
    frame = pd.DataFrame(
        [
            [row.rank, row.model, round(row.rating), f"+{row.upper - row.rating:.0f} / -{row.rating - row.lower:.0f}",
             f"{row.rank}–{row.rank_lower}" if row.rank_lower != row.rank else str(row.rank), row.votes]
            for row in snapshot.rows
        ],
        columns=list(LEADERBOARD_COLUMNS),
    )
    when = datetime.datetime.fromtimestamp(snapshot.generated_at, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    votes = snapshot.total_votes
    note = f"{votes} vote{'' if votes == 1 else 's'} · {snapshot.method} · updated {when}"
    if snapshot.note:
        note += f" · {snapshot.note}"
    return frame, note


def rotation_note(available: int) -> str:
    return f"<small>{available} models in rotation. Answers are anonymous until you vote.</small>"


def build_page(context: ArenaContext) -> gr.Blocks:
    battles = context.battles
    model_count = len(battles.endpoints.names)

    with gr.Blocks(title="Arena") as page:
        with gr.Tab("⚔️ Battle", id="battle"):
            gr.Markdown(INTRO)
            BattleView(battles, context.identity, k=2).render()
            rotation = gr.Markdown(rotation_note(model_count), elem_id="rotation-note")

        if model_count >= KWAY_SIZE:
            with gr.Tab(f"🔢 {KWAY_SIZE}-way battle", id="kway"):
                gr.Markdown(KWAY_INTRO.format(k=KWAY_SIZE))
                BattleView(battles, context.identity, k=KWAY_SIZE, elem_prefix="kway-").render()

        with gr.Tab("🏆 Leaderboard", id="leaderboard") as leaderboard_tab:
            board_note = gr.Markdown("", elem_id="leaderboard-note")
            board = gr.Dataframe(headers=list(LEADERBOARD_COLUMNS), interactive=False, elem_id="leaderboard-table")
            refresh_timer = gr.Timer(3.0)

        async def refresh_board():
            return leaderboard_frame(await context.snapshot())

        refresh_timer.tick(refresh_board, None, [board, board_note], show_progress="hidden", **PAGE_ONLY)
        leaderboard_tab.select(refresh_board, None, [board, board_note], **PAGE_ONLY)
        page.load(refresh_board, None, [board, board_note], **PAGE_ONLY)

        async def refresh_rotation():  # paused, failing or full models are out of rotation for now
            return rotation_note(len(await battles.available_models()))

        page.load(refresh_rotation, None, rotation, show_progress="hidden", **PAGE_ONLY)

    # Every voter's battle streams at once: lift Gradio's default of one running event per listener.
    page.queue(default_concurrency_limit=None)
    return page
