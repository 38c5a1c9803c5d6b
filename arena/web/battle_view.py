"""One battle view for any K: K anonymous chat columns, a Regenerate button per answer, a prompt
box, and the vote controls (four buttons for K = 2, a ranking for K > 2). The two-way and K-way
tabs are both this view."""

from __future__ import annotations

import gradio as gr
import redis

from arena.battles.engine import BattleService
from arena.battles.requests import named_choice
from arena.battles.types import position_labels
from arena.errors import BattleError
from arena.trust.identity import VoterIdentity
from arena.trust.self_identification import flags_explained
from arena.web.answer_safety import inert_markdown
from arena.web.context import client_address
from arena.web.ranking_control import (
    complete,
    implied,
    order_text,
    place,
    placed,
    ranking_text,
    submittable,
    submitted_text,
    undo,
)
from arena.web.reveal import reveal_lines
from leaderboard.data.events import MAX_FEEDBACK_CHARS, MODEL_A, MODEL_B, TIE, TIE_BOTHBAD

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


def _elem(prefix: str, name: str) -> str:
    return f"{prefix}{name}"


def rank_button_text(label: str, name: str | None = None) -> str:
    """A rank button's text: ``Model A``, or in named mode (the voter chose the models, so knows
    them) ``A · demo-terse``. Never called with a name in an anonymous view."""
    return f"{label} · {name}" if name else f"Model {label}"


class BattleView:
    """Builds the components of one battle tab and wires them to the battle engine."""

    def __init__(self, battles: BattleService, identity: VoterIdentity, k: int, elem_prefix: str = "",
                 named: bool = False):
        self.battles = battles
        self.identity = identity
        self.k = k
        self.named = named  # the voter picks the models (named side-by-side mode); else the matchmaker does
        self.picks: list[gr.Dropdown] = []
        self.labels = position_labels(k)
        self.prefix = elem_prefix

    # -- layout ---------------------------------------------------------------------------

    def render(self) -> None:
        self.state = gr.State(None)  # {"id", "voted"}; Gradio keeps State on the server
        # Above the answers, so a refusal ("needs 4 working models", a rejected prompt) is seen
        # where the voter is looking, not below the fold under New round.
        self.status = gr.Markdown("", elem_id=_elem(self.prefix, "status"), elem_classes=["arena-status"])
        if self.named:
            with gr.Row():  # choices arrive when the tab is opened (see named_choices), never before
                self.picks = [gr.Dropdown(choices=[], value=None, label=f"Model {label}",
                                          elem_id=_elem(self.prefix, f"pick-{label.lower()}"))
                              for label in self.labels]
        self.chats = []
        # K = 2: two columns side by side; K > 2: a grid as wide as the screen allows (one column on a phone).
        with gr.Row(elem_classes=["arena-chats"] + ([] if self.k == 2 else ["arena-grid", f"arena-k{self.k}"])):
            for label in self.labels:
                self.chats.append(gr.Chatbot(label=f"Model {label}", elem_id=_elem(self.prefix, f"chat-{label.lower()}"),
                                             elem_classes=["arena-chat"], height=420 if self.k == 2 else 320,
                                             buttons=["copy"], feedback_options=None))
        # One per answer, under the answers; enabled once every answer has finished, until the vote
        # or the answer's --max-regenerations (hidden when the operator turned regeneration off).
        with gr.Row(visible=self.battles.max_regenerations > 0, elem_classes=["arena-regenerate"]):
            self.regen_buttons = [gr.Button(self._regenerate_text(label, 0), interactive=False, size="sm",
                                            elem_id=_elem(self.prefix, f"regen-{label.lower()}"))
                                  for label in self.labels]
        self.reveal = gr.Markdown("", elem_id=_elem(self.prefix, "reveal"))
        self.vote_controls: list[gr.components.Component] = []
        if self.k == 2:
            with gr.Row(elem_classes=["arena-votes"]):
                self.vote_buttons = [
                    gr.Button(text, interactive=False, elem_id=_elem(self.prefix, f"vote-{outcome.replace(' (', '-').rstrip(')')}"))
                    for text, outcome, _ in PAIRWISE_BUTTONS
                ]
            self.vote_controls = list(self.vote_buttons)
            gr.Markdown("<small>Keyboard: <kbd>1</kbd> A is better · <kbd>2</kbd> B is better · <kbd>3</kbd> tie · "
                        "<kbd>4</kbd> both bad · <kbd>Enter</kbd> sends, <kbd>Shift</kbd>+<kbd>Enter</kbd> a new line</small>",
                        elem_id=_elem(self.prefix, "shortcuts"), elem_classes=["arena-shortcuts"])
        else:
            gr.Markdown("Click the answers from best to worst. **Tie** puts the next answer level with the one "
                        "before; **Undo** takes the last click back. **Best only** sends just what you have "
                        "placed: the other answers are recorded as not ranked.")
            with gr.Row():
                self.rank_buttons = [gr.Button(rank_button_text(label), interactive=False, min_width=90,
                                               elem_id=_elem(self.prefix, f"rank-{label.lower()}"))
                                     for label in self.labels]
            with gr.Row():
                self.tie_next = gr.Button("🟰 Tie", interactive=False, elem_id=_elem(self.prefix, "rank-tie"))
                self.undo = gr.Button("↩ Undo", interactive=False, elem_id=_elem(self.prefix, "rank-undo"))
                self.best_only = gr.Button("🏅 Best only", interactive=False,
                                           elem_id=_elem(self.prefix, "submit-best"))
                self.submit_ranking = gr.Button("Submit ranking", interactive=False, variant="primary",
                                                elem_id=_elem(self.prefix, "submit-ranking"))
            self.ranking = gr.State([])  # groups of labels, best first, as built so far
            self.tie_pending = gr.State(False)
            self.ranking_shown = gr.Markdown(ranking_text([], self.labels), elem_id=_elem(self.prefix, "ranking"))
            self.vote_controls = [*self.rank_buttons, self.tie_next, self.undo, self.best_only, self.submit_ranking,
                                  self.ranking, self.ranking_shown]
        self.vote_controls += self.regen_buttons  # they go on and off with the vote
        self.feedback = gr.Textbox(placeholder="Why? (optional; stored with your vote)", show_label=False,
                                   max_length=MAX_FEEDBACK_CHARS, elem_id=_elem(self.prefix, "feedback"))
        with gr.Row():
            self.prompt = gr.Textbox(placeholder="Type a prompt and press Enter", show_label=False, scale=8,
                                     elem_id=_elem(self.prefix, "prompt"), max_lines=8)
            self.send = gr.Button("Send", variant="primary", scale=1, elem_id=_elem(self.prefix, "send"))
        self.new_round = gr.Button("🎲 New round", elem_id=_elem(self.prefix, "new-round"))
        self._wire()

    def _regenerate_text(self, label: str, count: int) -> str:
        left = self.battles.max_regenerations - count
        return f"🔄 Regenerate {label} ({left} left)" if left > 0 else f"🔄 Regenerate {label} (none left)"

    def _controls(self, enabled: bool, reset: bool = False, regenerations=None, rank_texts=None,
                  shown=None) -> list:
        """Updates of the vote controls and the Regenerate buttons: enabled or not (a Regenerate
        button only while its answer is under the cap, counted in ``regenerations``, which also
        sets its "(n left)"; without them, and without ``reset``, its text is left as it is);
        ``reset`` also empties a K-way ranking; ``rank_texts`` relabels the rank buttons;
        ``shown`` replaces the line under them."""
        counts = regenerations or [0] * self.k
        relabel = regenerations is not None or reset
        regenerate = [gr.update(interactive=enabled and count < self.battles.max_regenerations,
                                **({"value": self._regenerate_text(label, count)} if relabel else {}))
                      for label, count in zip(self.labels, counts)]
        if self.k == 2:
            return [*[gr.update(interactive=enabled) for _ in self.vote_buttons], *regenerate]
        ranking = [] if reset else gr.skip()
        if shown is None:
            shown = ranking_text([], self.labels) if reset else gr.skip()
        texts = rank_texts or [None] * self.k
        return [*[gr.update(interactive=enabled, **({"value": text} if text else {})) for text in texts],
                gr.update(interactive=enabled), gr.update(interactive=enabled), gr.update(interactive=False),
                gr.update(interactive=enabled and not reset), ranking, shown, *regenerate]

    def _unchanged_controls(self) -> list:
        return [gr.skip() for _ in self.vote_controls]

    def _picks_enabled(self, enabled: bool) -> list:
        """The named mode's pick dropdowns: off from Send until the vote or New round, so what
        they show is always the battle's models (a change mid-battle would not reach it)."""
        return [gr.update(interactive=enabled) for _ in self.picks]

    def _picks_unchanged(self) -> list:
        return [gr.skip() for _ in self.picks]

    def _ranking_controls(self, ranking) -> list:
        """After a click on the ranking control: what is placed, and which buttons are left."""
        done = complete(ranking, self.labels)
        return [ranking, False, ranking_text(ranking, self.labels),
                *[gr.update(interactive=label not in placed(ranking)) for label in self.labels],
                gr.update(interactive=bool(ranking) and not done), gr.update(interactive=bool(ranking)),
                gr.update(interactive=bool(ranking) and not done),
                gr.update(interactive=submittable(ranking, self.labels))]

    # -- events ---------------------------------------------------------------------------

    def _wire(self) -> None:
        stream_outputs = [self.state, *self.chats, self.prompt, self.status, *self.vote_controls, self.feedback,
                          *self.picks]
        answering = []  # the streaming events, which New round cancels
        for trigger in (self.send.click, self.prompt.submit):
            # Off at once, before the queue: Send, the vote (a shortcut pressed just after Send would
            # otherwise meet the battle answering and be refused) and the named picks.
            started = trigger(lambda: (gr.update(interactive=False), "", *self._controls(False),
                                       *self._picks_enabled(False)),
                              None, [self.send, self.reveal, *self.vote_controls, *self.picks], queue=False,
                              **PAGE_ONLY)
            streaming = started.then(self.on_send, [self.prompt, self.state, *self.chats, *self.picks], stream_outputs,
                                     **PAGE_ONLY)
            answering.append(streaming)
            streaming.then(lambda: gr.update(interactive=True), None, [self.send], queue=False, **PAGE_ONLY)

        # Regenerate: the vote, the other Regenerate buttons and Send are off at once (before the
        # queue), until the new answer is in; New round cancels it like a turn.
        for position, button in enumerate(self.regen_buttons):
            started = button.click(lambda: (gr.update(interactive=False), *self._controls(False)), None,
                                   [self.send, *self.vote_controls], queue=False, **PAGE_ONLY)
            regenerating = started.then(self._regenerate_handler(position), [self.state, *self.chats],
                                        [self.state, *self.chats, self.status, *self.vote_controls], **PAGE_ONLY)
            answering.append(regenerating)
            regenerating.then(lambda: gr.update(interactive=True), None, [self.send], queue=False, **PAGE_ONLY)

        vote_outputs = [self.state, self.reveal, *self.vote_controls, self.feedback, *self.picks]
        if self.k == 2:
            for button, (_, outcome, verdict) in zip(self.vote_buttons, PAIRWISE_BUTTONS):
                button.click(self._pairwise_handler(outcome, verdict), [self.state, self.feedback], vote_outputs,
                             **PAGE_ONLY)
        else:
            rank_outputs = [self.ranking, self.tie_pending, self.ranking_shown, *self.rank_buttons, self.tie_next,
                            self.undo, self.best_only, self.submit_ranking]
            for button, label in zip(self.rank_buttons, self.labels):
                button.click(lambda ranking, tie, label=label: self._ranking_controls(place(ranking, label, tie)),
                             [self.ranking, self.tie_pending], rank_outputs, queue=False, **PAGE_ONLY)
            self.undo.click(lambda ranking: self._ranking_controls(undo(ranking)), [self.ranking], rank_outputs,
                            queue=False, **PAGE_ONLY)
            self.tie_next.click(lambda ranking: (True, gr.update(interactive=False),
                                                 ranking_text(ranking, self.labels, tie=True)),
                                [self.ranking], [self.tie_pending, self.tie_next, self.ranking_shown],
                                queue=False, **PAGE_ONLY)
            self.submit_ranking.click(self.on_ranking, [self.state, self.ranking, self.tie_pending, self.feedback],
                                      vote_outputs, **PAGE_ONLY)
            self.best_only.click(self.on_best_only, [self.state, self.ranking, self.feedback], vote_outputs,
                                 **PAGE_ONLY)

        # New round first cancels a turn still streaming (on the server the cancelled turn ends the
        # old battle as failed, so nothing of it can be voted on), then clears the page through the
        # queue: the clearing arrives on the same event stream after the cancelled turn's last
        # message, so no late answer can refill the chats or enable the vote.
        self.new_round.click(None, None, None, cancels=answering, queue=False, **PAGE_ONLY).then(
            self.clear, None, [self.state, *self.chats, self.prompt, self.reveal, self.status, self.send,
                               self.feedback, *self.vote_controls, *self.picks], **PAGE_ONLY)

    # gr.Request comes first: Gradio injects it by position among the positional parameters.
    async def on_send(self, request: gr.Request, text, state, *chats_and_picks):
        session = session_id(request)
        histories = [list(history or []) for history in chats_and_picks[:self.k]]
        picks = list(chats_and_picks[self.k:])  # named mode: the models the voter chose
        # Empty chats mean a new round, whatever the state says: a turn cancelled by New round may
        # still hand its (now failed) battle back to the state after the page was cleared.
        if state is None or state.get("voted") or not any(histories):
            try:
                chooser = await self._named_chooser(picks) if self.named else None
                battle = await self.battles.create(session, k=self.k, prompt=text, chooser=chooser,
                                                   voter_id=self.identity.voter_id(client_address(request)))
            except (BattleError, *STORE_ERRORS) as error:  # no battle: the picks may be changed again
                message = f"⚠️ {error.page_message}" if isinstance(error, BattleError) else STORE_DOWN
                yield (state, *histories, text, message, *self._controls(False), gr.skip(),
                       *self._picks_enabled(True))
                return
            state = {"id": battle.battle_id, "voted": False}
            histories = [[] for _ in histories]
            first_turn = True
            # named mode only: the voter chose these models, so the rank buttons may say who is who
            rank_texts = ([rank_button_text(label, name) for label, name in zip(self.labels, battle.models)]
                          if self.named else None)
        else:
            first_turn, rank_texts = False, None
        # a new battle starts with an empty reason box: the last battle's reason is not this one's
        feedback = "" if first_turn else gr.skip()
        histories = [h + [{"role": "user", "content": text}, {"role": "assistant", "content": ""}] for h in histories]
        try:
            async for progress in self.battles.stream_turn(state["id"], session, text):
                for history, answer in zip(histories, progress.answers):
                    history[-1] = {"role": "assistant", "content": inert_markdown(answer)}
                failed = progress.done and any(progress.failed)
                message = FAILED_ROUND if failed else ("" if progress.done else "Answering…")
                votable = progress.done and not failed
                yield (state, *histories, "", message,
                       *self._controls(votable, reset=first_turn, regenerations=state.get("regenerations"),
                                       rank_texts=rank_texts),
                       feedback, *self._picks_unchanged())
                feedback, rank_texts = gr.skip(), None
        except (BattleError, *STORE_ERRORS) as error:
            histories = [h[:-2] for h in histories]
            message = f"⚠️ {error.page_message}" if isinstance(error, BattleError) else STORE_DOWN
            # a refused follow-up leaves the battle as it was (still votable if it was); a refused
            # first turn leaves no battle on the page, so the picks come back
            votable = not first_turn and await self._votable(state, request)
            yield (state, *histories, text, message,
                   *self._controls(votable, regenerations=state.get("regenerations")), gr.skip(),
                   *(self._picks_enabled(True) if first_turn else self._picks_unchanged()))

    def _regenerate_handler(self, position: int):
        async def handler(request: gr.Request, state, *chats):
            async for update in self.on_regenerate(request, position, state, chats):
                yield update

        return handler

    async def on_regenerate(self, request: gr.Request, position: int, state, chats):
        """Stream a new answer at ``position`` in place of the old one; on a refusal or a failure the
        old answer is shown again (the battle keeps it) and the controls fit the battle's state."""
        histories = [list(history or []) for history in chats]
        if state is None or state.get("voted") or not histories[position]:
            yield state, *histories, "⚠️ Send a prompt first.", *self._controls(False)
            return
        label, counts = self.labels[position], state.get("regenerations")
        previous = histories[position][-1]
        try:
            async for progress in self.battles.stream_regeneration(
                    state["id"], session_id(request), label,
                    voter_id=self.identity.voter_id(client_address(request))):
                histories[position][-1] = {"role": "assistant", "content": inert_markdown(progress.answers[position])}
                counts = progress.regenerations
                if not progress.done:
                    yield state, *histories, f"Regenerating answer {label}…", *self._controls(False)
        except (BattleError, *STORE_ERRORS) as error:
            histories[position][-1] = previous
            message = f"⚠️ {error.page_message}" if isinstance(error, BattleError) else STORE_DOWN
            yield state, *histories, message, *self._controls(await self._votable(state, request), reset=True,
                                                              regenerations=counts)
            return
        # the battle was stored ready before the last update: the vote may be enabled now
        state = {**state, "regenerations": counts}
        yield state, *histories, "", *self._controls(True, reset=True, regenerations=counts)

    async def _votable(self, state, request: gr.Request) -> bool:
        """Can the battle still take its vote? (After a refused regeneration: a cap or a failed model
        leaves it votable, a vote from another tab does not.)"""
        try:
            _, battle_state = await self.battles.load(state["id"], session_id(request))
        except (BattleError, *STORE_ERRORS):
            return False
        return battle_state == "ready"

    async def _named_chooser(self, picks):
        if not all(picks):
            raise BattleError("pick a model for each side first")
        return named_choice(picks, await self.battles.model_status(), kway=(self.k,))

    async def named_choices(self):
        """The models a voter may pick in named mode (sent only when the named tab is opened)."""
        names = await self.battles.available_models(anonymous=False)
        return [gr.update(choices=names) for _ in self.picks]

    def _pairwise_handler(self, outcome: str, verdict: str):
        async def handler(state, feedback, request: gr.Request):
            return await self._cast(state, request, verdict, outcome=outcome, feedback=feedback)

        return handler

    async def on_ranking(self, request: gr.Request, state, ranking, tie, feedback):
        # one answer left: its place is implied (last, or level with the last after Tie)
        ranking = implied(ranking or [], self.labels, bool(tie))
        if not complete(ranking, self.labels):
            return (state, f"⚠️ {ranking_text(ranking, self.labels)}", *self._unchanged_controls(), gr.skip(),
                    *self._picks_unchanged())
        return await self._cast(state, request, f"Your ranking: {order_text(ranking)}.",
                                shown=submitted_text(ranking, self.labels), ranking=ranking, feedback=feedback)

    async def on_best_only(self, request: gr.Request, state, ranking, feedback):
        """A partial ranking: what is placed so far, the rest recorded as not ranked."""
        if not ranking:
            return (state, "⚠️ Click the best answer first.", *self._unchanged_controls(), gr.skip(),
                    *self._picks_unchanged())
        rest = [label for label in self.labels if label not in placed(ranking)]
        verdict = f"Your pick: {order_text(ranking)}, ahead of {', '.join(f'**{label}**' for label in rest)} (not ranked)."
        return await self._cast(state, request, verdict, shown=submitted_text(ranking, self.labels),
                                ranking=ranking, partial=True, feedback=feedback)

    async def _cast(self, state, request: gr.Request, verdict: str, shown=None, **vote):
        """Record the vote; on success the names, an empty reason box and (named mode) the picks
        back; ``shown`` is what the K-way line under the buttons says once the vote is in."""
        if state is None:
            return (state, "⚠️ Send a prompt first.", *self._controls(False), gr.skip(), *self._picks_unchanged())
        regenerations = state.get("regenerations")
        try:
            receipt = await self.battles.vote(state["id"], session_id(request),
                                              self.identity.voter_id(client_address(request)), **vote)
        except BattleError as error:
            return (state, f"⚠️ {error.page_message}", *await self._controls_after_refusal(state, request),
                    gr.skip(), *self._picks_unchanged())
        except STORE_ERRORS:
            return (state, STORE_DOWN, *self._controls(True, regenerations=regenerations), gr.skip(),
                    *self._picks_unchanged())
        names = reveal_lines(self.labels, receipt.models, self.battles.endpoints.spec)
        revealed = f"### {verdict}\n\n{names}\n\n{deanonymised_note(receipt.identity_flags)}Thanks! Send another prompt or press *New round*."
        return ({**state, "voted": True}, revealed, *self._controls(False, regenerations=regenerations, shown=shown),
                "", *self._picks_enabled(True))

    async def _controls_after_refusal(self, state, request: gr.Request) -> list:
        """The vote controls after a refused vote, as the battle now stands: while it is still
        answering (a vote sent just after Send) they are left to the running turn, which turns
        them on when its answers finish; a battle still votable (a rate limit) keeps them on."""
        try:
            _, battle_state = await self.battles.load(state["id"], session_id(request))
        except (BattleError, *STORE_ERRORS):
            return self._controls(False)
        if battle_state in ("streaming", "regenerating"):
            return self._unchanged_controls()
        return self._controls(battle_state == "ready", regenerations=state.get("regenerations"))

    def clear(self):
        return (None, *[[] for _ in self.chats], "", "", "", gr.update(interactive=True), "",
                *self._controls(False, reset=True, rank_texts=[rank_button_text(label) for label in self.labels]),
                *self._picks_enabled(True))
