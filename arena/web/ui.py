"""The Gradio page: builds the components and wires events to the battle engine, nothing more.

The browser only ever holds answers by position (Model A, Model B). The battle id lives in a
``gr.State``, which Gradio keeps on the server; the names arrive only in the vote's reply.
"""

from __future__ import annotations

import datetime
import logging

import gradio as gr
import pandas as pd

from arena.battles import BattleError
from arena.web.context import ArenaContext
from leaderboard.events import MODEL_A, MODEL_B, TIE, TIE_BOTHBAD

log = logging.getLogger(__name__)

LEADERBOARD_COLUMNS = ["Rank", "Model", "Rating", "95% CI", "Votes"]

VOTE_BUTTONS = (
    ("👈  A is better", MODEL_A),
    ("👉  B is better", MODEL_B),
    ("🤝  Tie", TIE),
    ("👎  Both are bad", TIE_BOTHBAD),
)

INTRO = """# ⚔️ Arena
Ask anything. Two anonymous models answer side by side; vote for the better answer and their names are revealed.
Keep chatting with both before you vote if you like. Your vote feeds the live leaderboard."""


def _session_id(request: gr.Request) -> str:
    return "ui:" + (request.session_hash or "")


def _client_address(request: gr.Request) -> str | None:
    return request.client.host if request.client else None


def leaderboard_frame(snapshot) -> tuple[pd.DataFrame, str]:
    if snapshot is None or not snapshot.rows:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS), "No votes yet: the leaderboard appears a few seconds after the first vote."
    frame = pd.DataFrame(
        [
            [row.rank, row.model, round(row.rating), f"+{row.upper - row.rating:.0f} / -{row.rating - row.lower:.0f}", row.votes]
            for row in snapshot.rows
        ],
        columns=LEADERBOARD_COLUMNS,
    )
    when = datetime.datetime.fromtimestamp(snapshot.generated_at, tz=datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    votes = snapshot.total_votes
    note = f"{votes} vote{'' if votes == 1 else 's'} · {snapshot.method} · updated {when}"
    if snapshot.note:
        note += f" · {snapshot.note}"
    return frame, note


def build_page(context: ArenaContext) -> gr.Blocks:
    battles = context.battles
    names = len(battles.endpoints.names)

    with gr.Blocks(title="Arena") as page:
        battle_state = gr.State(None)  # {"id": str, "voted": bool}; server-side only
        with gr.Tab("⚔️ Battle", id="battle"):
            gr.Markdown(INTRO)
            with gr.Row():
                chat_a = gr.Chatbot(label="Model A", elem_id="chat-a", height=420, buttons=["copy"])
                chat_b = gr.Chatbot(label="Model B", elem_id="chat-b", height=420, buttons=["copy"])
            reveal = gr.Markdown("", elem_id="reveal")
            with gr.Row():
                vote_buttons = [
                    gr.Button(label, interactive=False, elem_id=f"vote-{outcome.replace(' ', '-').replace('(', '').replace(')', '')}")
                    for label, outcome in VOTE_BUTTONS
                ]
            with gr.Row():
                prompt = gr.Textbox(placeholder="Type a prompt and press Enter", show_label=False, scale=8,
                                    elem_id="prompt", max_lines=8)
                send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
            with gr.Row():
                new_round = gr.Button("🎲 New round", elem_id="new-round")
            status = gr.Markdown("", elem_id="status")
            gr.Markdown(f"<small>{names} models in rotation. Answers are anonymous until you vote.</small>")

        with gr.Tab("🏆 Leaderboard", id="leaderboard") as leaderboard_tab:
            board_note = gr.Markdown("", elem_id="leaderboard-note")
            board = gr.Dataframe(headers=LEADERBOARD_COLUMNS, interactive=False, elem_id="leaderboard-table")
            refresh_timer = gr.Timer(3.0)

        def vote_buttons_state(enabled: bool):
            return [gr.update(interactive=enabled) for _ in vote_buttons]

        async def on_send(text, state, history_a, history_b, request: gr.Request):
            session = _session_id(request)
            history_a = list(history_a or [])
            history_b = list(history_b or [])
            if state is None or state.get("voted"):
                try:
                    battle = await battles.create(session)
                except BattleError as error:
                    yield state, history_a, history_b, "", f"⚠️ {error}", *vote_buttons_state(False)
                    return
                state = {"id": battle.battle_id, "voted": False}
                history_a, history_b = [], []
            history_a = history_a + [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            history_b = history_b + [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            try:
                async for progress in battles.stream_turn(state["id"], session, text):
                    history_a[-1] = {"role": "assistant", "content": progress.answers[0]}
                    history_b[-1] = {"role": "assistant", "content": progress.answers[1]}
                    done = progress.done
                    message = "" if done else "Answering…"
                    if done and any(progress.failed):
                        message = "⚠️ One model failed to answer, so this round cannot be voted on. Start a new round."
                    votable = done and not any(progress.failed)
                    yield state, history_a, history_b, "", message, *vote_buttons_state(votable)
            except BattleError as error:
                history_a, history_b = history_a[:-2], history_b[:-2]
                yield state, history_a, history_b, text, f"⚠️ {error}", *vote_buttons_state(False)

        async def cast(outcome, state, request: gr.Request):
            if state is None:
                return state, "⚠️ Send a prompt first.", *vote_buttons_state(False)
            try:
                receipt = await battles.vote(state["id"], _session_id(request),
                                             context.identity.voter_id(_client_address(request)), outcome=outcome)
            except BattleError as error:
                return state, f"⚠️ {error}", *vote_buttons_state(False)
            state = {**state, "voted": True}
            verdict = {MODEL_A: "You preferred **Model A**.", MODEL_B: "You preferred **Model B**.",
                       TIE: "You called it a **tie**.", TIE_BOTHBAD: "You found **both bad**."}[outcome]
            revealed = (f"### {verdict}\n\n**Model A:** `{receipt.models[0]}` &nbsp;·&nbsp; "
                        f"**Model B:** `{receipt.models[1]}`\n\nThanks! Send another prompt or press *New round*.")
            return state, revealed, *vote_buttons_state(False)

        def clear():
            return None, [], [], "", "", *vote_buttons_state(False)

        stream_outputs = [battle_state, chat_a, chat_b, prompt, status, *vote_buttons]
        for trigger in (send.click, prompt.submit):
            trigger(lambda: (gr.update(interactive=False), ""), None, [send, reveal], queue=False).then(
                on_send, [prompt, battle_state, chat_a, chat_b], stream_outputs,
            ).then(lambda: gr.update(interactive=True), None, [send], queue=False)

        for button, (_, outcome) in zip(vote_buttons, VOTE_BUTTONS):
            button.click(_bind_outcome(cast, outcome), [battle_state], [battle_state, reveal, *vote_buttons])

        new_round.click(clear, None, [battle_state, chat_a, chat_b, prompt, reveal, *vote_buttons], queue=False)

        async def refresh_board():
            return leaderboard_frame(await context.snapshot())

        refresh_timer.tick(refresh_board, None, [board, board_note], show_progress="hidden")
        leaderboard_tab.select(refresh_board, None, [board, board_note])
        page.load(refresh_board, None, [board, board_note])

    # Every voter's battle streams at once: lift Gradio's default of one running event per listener.
    page.queue(default_concurrency_limit=None)
    return page


def _bind_outcome(cast, outcome: str):
    async def handler(state, request: gr.Request):
        return await cast(outcome, state, request)

    return handler
