"""One battle view for any K: K anonymous chat columns, a prompt box, and the vote controls
(four buttons for K = 2, a ranking for K > 2). The two-way and K-way tabs are both this view."""

from __future__ import annotations

import gradio as gr
import redis

from arena.battle_types import BattleError, position_labels
from arena.battles import BattleService
from arena.identity import VoterIdentity
from arena.self_identification import flags_explained
from arena.web.answer_safety import inert_markdown
from arena.web.context import client_address
from leaderboard.events import MODEL_A, MODEL_B, TIE, TIE_BOTHBAD

PAIRWISE_BUTTONS = (
    ("👈  A is better", MODEL_A, "You preferred **Model A**."),
    ("👉  B is better", MODEL_B, "You preferred **Model B**."),
    ("🤝  Tie", TIE, "You called it a **tie**."),
    ("👎  Both are bad", TIE_BOTHBAD, "You found **both bad**."),
)

STORE_DOWN = "⚠️ The arena's store is unreachable right now, so nothing was recorded. Try again in a few seconds."
# Redis failures become a message on the page, not Gradio's generic "Error" toast.
STORE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# The page's events are for the page; programs use the JSON API (/api/docs), which has the same rules.
PAGE_ONLY = {"api_visibility": "private"}

FAILED_ROUND = "⚠️ One model failed to answer, so this round cannot be voted on. Start a new round."


def deanonymised_note(flags) -> str:
    """What the voter is told after the vote when a model may have revealed itself."""
    if not flags:
        return ""
    return (f"ℹ️ Your vote is saved, but it does not count towards the anonymous leaderboard: "
            f"{flags_explained(flags)}, so the models may not have been anonymous.\n\n")


def session_id(request: gr.Request) -> str:
    return "ui:" + (request.session_hash or "")


def ranking_from_places(labels: list[str], places: list[str | None]) -> list[list[str]]:
    """Places chosen per label ("1", "2", ...; equal places tie) -> groups of labels, best first."""
    missing = [label for label, place in zip(labels, places) if not place]
    if missing:
        raise BattleError(f"give every answer a place: {', '.join(missing)} has none")
    by_place: dict[int, list[str]] = {}
    for label, place in zip(labels, places):
        by_place.setdefault(int(place), []).append(label)
    return [by_place[place] for place in sorted(by_place)]


def _elem(prefix: str, name: str) -> str:
    return f"{prefix}{name}"


class BattleView:
    """Builds the components of one battle tab and wires them to the battle engine."""

    def __init__(self, battles: BattleService, identity: VoterIdentity, k: int, elem_prefix: str = ""):
        self.battles = battles
        self.identity = identity
        self.k = k
        self.labels = position_labels(k)
        self.prefix = elem_prefix

    # -- layout ---------------------------------------------------------------------------

    def render(self) -> None:
        self.state = gr.State(None)  # {"id", "voted"}; Gradio keeps State on the server
        columns = 2 if self.k == 2 else min(self.k, 2)
        self.chats = []
        for row_start in range(0, self.k, columns):
            with gr.Row():
                for label in self.labels[row_start:row_start + columns]:
                    self.chats.append(gr.Chatbot(label=f"Model {label}", elem_id=_elem(self.prefix, f"chat-{label.lower()}"),
                                                 height=420 if self.k == 2 else 320, buttons=["copy"]))
        self.reveal = gr.Markdown("", elem_id=_elem(self.prefix, "reveal"))
        self.vote_controls: list[gr.components.Component] = []
        if self.k == 2:
            with gr.Row():
                self.vote_buttons = [
                    gr.Button(text, interactive=False, elem_id=_elem(self.prefix, f"vote-{outcome.replace(' (', '-').rstrip(')')}"))
                    for text, outcome, _ in PAIRWISE_BUTTONS
                ]
            self.vote_controls = list(self.vote_buttons)
        else:
            gr.Markdown("Rank the answers: 1 is best; give two answers the same place for a tie.")
            with gr.Row():
                self.places = [
                    gr.Dropdown(choices=[str(place) for place in range(1, self.k + 1)], value=None,
                                label=f"Model {label}", interactive=False,
                                elem_id=_elem(self.prefix, f"place-{label.lower()}"))
                    for label in self.labels
                ]
                self.submit_ranking = gr.Button("Submit ranking", interactive=False, variant="primary",
                                                elem_id=_elem(self.prefix, "submit-ranking"))
            self.vote_controls = [*self.places, self.submit_ranking]
        with gr.Row():
            self.prompt = gr.Textbox(placeholder="Type a prompt and press Enter", show_label=False, scale=8,
                                     elem_id=_elem(self.prefix, "prompt"), max_lines=8)
            self.send = gr.Button("Send", variant="primary", scale=1, elem_id=_elem(self.prefix, "send"))
        self.new_round = gr.Button("🎲 New round", elem_id=_elem(self.prefix, "new-round"))
        self.status = gr.Markdown("", elem_id=_elem(self.prefix, "status"))
        self._wire()

    def _controls(self, enabled: bool, reset: bool = False) -> list:
        updates = []
        for control in self.vote_controls:
            if reset and isinstance(control, gr.Dropdown):
                updates.append(gr.update(interactive=enabled, value=None))
            else:
                updates.append(gr.update(interactive=enabled))
        return updates

    # -- events ---------------------------------------------------------------------------

    def _wire(self) -> None:
        stream_outputs = [self.state, *self.chats, self.prompt, self.status, *self.vote_controls]
        for trigger in (self.send.click, self.prompt.submit):
            trigger(lambda: (gr.update(interactive=False), ""), None, [self.send, self.reveal], queue=False,
                    **PAGE_ONLY).then(
                self.on_send, [self.prompt, self.state, *self.chats], stream_outputs, **PAGE_ONLY,
            ).then(lambda: gr.update(interactive=True), None, [self.send], queue=False, **PAGE_ONLY)

        vote_outputs = [self.state, self.reveal, *self.vote_controls]
        if self.k == 2:
            for button, (_, outcome, verdict) in zip(self.vote_buttons, PAIRWISE_BUTTONS):
                button.click(self._pairwise_handler(outcome, verdict), [self.state], vote_outputs, **PAGE_ONLY)
        else:
            self.submit_ranking.click(self.on_ranking, [self.state, *self.places], vote_outputs, **PAGE_ONLY)

        self.new_round.click(self.clear, None, [self.state, *self.chats, self.prompt, self.reveal, *self.vote_controls],
                             queue=False, **PAGE_ONLY)

    # gr.Request comes first: Gradio injects it by position among the positional parameters.
    async def on_send(self, request: gr.Request, text, state, *histories):
        session = session_id(request)
        histories = [list(history or []) for history in histories]
        if state is None or state.get("voted"):
            try:
                battle = await self.battles.create(session, k=self.k, prompt=text,
                                                   voter_id=self.identity.voter_id(client_address(request)))
            except BattleError as error:
                yield state, *histories, text, f"⚠️ {error.page_message}", *self._controls(False)
                return
            except STORE_ERRORS:
                yield state, *histories, text, STORE_DOWN, *self._controls(False)
                return
            state = {"id": battle.battle_id, "voted": False}
            histories = [[] for _ in histories]
            first_turn = True
        else:
            first_turn = False
        histories = [h + [{"role": "user", "content": text}, {"role": "assistant", "content": ""}] for h in histories]
        try:
            async for progress in self.battles.stream_turn(state["id"], session, text):
                for history, answer in zip(histories, progress.answers):
                    history[-1] = {"role": "assistant", "content": inert_markdown(answer)}
                failed = progress.done and any(progress.failed)
                message = FAILED_ROUND if failed else ("" if progress.done else "Answering…")
                votable = progress.done and not failed
                yield state, *histories, "", message, *self._controls(votable, reset=first_turn)
        except BattleError as error:
            histories = [h[:-2] for h in histories]
            yield state, *histories, text, f"⚠️ {error.page_message}", *self._controls(False)
        except STORE_ERRORS:
            histories = [h[:-2] for h in histories]
            yield state, *histories, text, STORE_DOWN, *self._controls(False)

    def _pairwise_handler(self, outcome: str, verdict: str):
        async def handler(state, request: gr.Request):
            return await self._cast(state, request, verdict, outcome=outcome)

        return handler

    async def on_ranking(self, request: gr.Request, state, *places):
        try:
            ranking = ranking_from_places(self.labels, list(places))
        except BattleError as error:
            return state, f"⚠️ {error.page_message}", *self._controls(True)
        order = " > ".join(" = ".join(f"**{label}**" for label in group) for group in ranking)
        return await self._cast(state, request, f"Your ranking: {order}.", ranking=ranking)

    async def _cast(self, state, request: gr.Request, verdict: str, **vote):
        if state is None:
            return state, "⚠️ Send a prompt first.", *self._controls(False)
        try:
            receipt = await self.battles.vote(state["id"], session_id(request),
                                              self.identity.voter_id(client_address(request)), **vote)
        except BattleError as error:
            return state, f"⚠️ {error.page_message}", *self._controls(False)
        except STORE_ERRORS:
            return state, STORE_DOWN, *self._controls(True)
        names = " &nbsp;·&nbsp; ".join(f"**Model {label}:** `{name}`" for label, name in zip(self.labels, receipt.models))
        revealed = f"### {verdict}\n\n{names}\n\n{deanonymised_note(receipt.identity_flags)}Thanks! Send another prompt or press *New round*."
        return {**state, "voted": True}, revealed, *self._controls(False)

    def clear(self):
        return None, *[[] for _ in self.chats], "", "", *self._controls(False, reset=True)
