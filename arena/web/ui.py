"""The Gradio page: tabs that build their components and wire events to domain code, nothing more.

The browser only ever holds answers by position (Model A, Model B, ...). The battle id lives in
a ``gr.State``, which Gradio keeps on the server; names arrive only in the vote's reply.
"""

from __future__ import annotations

import gradio as gr

from arena.web.battle_view import PAGE_ONLY, BattleView
from arena.web.context import ArenaContext
from arena.web.leaderboard_tab import LeaderboardTab, model_catalogue
from arena.web.owner_tab import OwnerTab

INTRO = """# ⚔️ Arena
Ask anything. Two anonymous models answer side by side; vote for the better answer and their names are revealed.
Keep chatting with both before you vote if you like. Your vote feeds the live leaderboard."""

KWAY_INTRO = """Ask once, read {k} anonymous answers, and rank them. One ranking tells the leaderboard more than
one pairwise vote (it is fitted with a Plackett-Luce model)."""

NAMED_INTRO = """Pick two models (or more, in the tabs below) and compare them with their names shown. These
votes are kept apart: they do not count towards the leaderboard's ratings (the voter knew who was who)."""

# The default K-way size (--kway-sizes): four answers, as in K-Sort Arena.
KWAY_SIZE = 4


def kway_tab_sizes(offered, model_count: int) -> list[int]:
    return [k for k in offered if k <= model_count]


def kway_tab_id(k: int) -> str:
    # the default size keeps the ids it always had ("kway", "kway-...")
    return "kway" if k == KWAY_SIZE else f"kway{k}"


def kway_prefix(k: int) -> str:
    return kway_tab_id(k) + "-"


def named_prefix(k: int) -> str:
    # the two-way named view keeps the ids it always had ("named-...")
    return "named-" if k == 2 else f"named{k}-"


def rotation_note(available: int) -> str:
    return f"<small>{available} models in rotation. Answers are anonymous until you vote.</small>"


def wrap_tabs(page: gr.Blocks) -> None:
    """Tabs that do not fit wrap onto a second row instead of hiding behind a "⋯" menu (a 390 px phone)."""
    for block in page.blocks.values():
        if isinstance(block, gr.Tabs):
            block.overflow_behavior = "wrap"


def build_page(context: ArenaContext) -> gr.Blocks:
    battles = context.battles
    model_count = len(battles.endpoints.names)

    with gr.Blocks(title="Arena") as page:
        with gr.Tab("⚔️ Battle", id="battle"):
            gr.Markdown(INTRO)
            BattleView(battles, context.identity, k=2).render()
            rotation = gr.Markdown(rotation_note(model_count), elem_id="rotation-note")

        # One tab per K-way size the operator offers (--kway-sizes) that the configured models can fill.
        for k in kway_tab_sizes(context.settings.kway_sizes, model_count):
            with gr.Tab(f"🔢 {k}-way battle", id=kway_tab_id(k)):
                gr.Markdown(KWAY_INTRO.format(k=k))
                BattleView(battles, context.identity, k=k, elem_prefix=kway_prefix(k)).render()

        with gr.Tab("👥 Side by side (named)", id="named") as named_tab:
            gr.Markdown(NAMED_INTRO)
            named_views = []
            with gr.Tabs():  # two models, and each K-way size on offer
                for k in [2, *kway_tab_sizes(context.settings.kway_sizes, model_count)]:
                    with gr.Tab("2 models" if k == 2 else f"{k} models", id=named_prefix(k) + "tab"):
                        view = BattleView(battles, context.identity, k=k, elem_prefix=named_prefix(k), named=True)
                        view.render()
                        named_views.append(view)

        async def named_choices():  # every named view's choices, sent only when the tab is opened
            updates = []
            for view in named_views:
                updates.extend(await view.named_choices())
            return updates

        named_tab.select(named_choices, None, [pick for view in named_views for pick in view.picks], **PAGE_ONLY)

        leaderboard = LeaderboardTab(context.board,
                                     model_catalogue(battles.endpoints),
                                     min_votes=context.settings.leaderboard_min_votes,
                                     refit_interval=context.settings.refit_interval)
        leaderboard.render(page)

        async def refresh_rotation():  # paused, benched or full models are out of rotation for now
            return rotation_note(len(await battles.available_models()))

        page.load(refresh_rotation, None, rotation, show_progress="hidden", **PAGE_ONLY)

        if context.owners is not None:
            with gr.Tab("🧑‍🔧 My models", id="owners"):
                OwnerTab(context).render()

    wrap_tabs(page)
    leaderboard.poll_while_shown(page)
    # Every voter's battle streams at once: lift Gradio's default of one running event per listener.
    page.queue(default_concurrency_limit=None)
    return page
