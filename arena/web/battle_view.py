"""One battle view for any K: K anonymous chat columns, a Regenerate button per answer, a prompt
box, and the vote controls (four buttons for K = 2, a ranking for K > 2: arena.web.battle_controls
builds and updates them). The two-way and K-way tabs are both this view; it wires the page's
events to the battle engine."""

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
from arena.web.battle_controls import PAGE_ONLY, PAIRWISE_BUTTONS, VoteControls, element_id, rank_button_text
from arena.web.context import client_address
from arena.web.page_session import page_session
from arena.web.ranking_control import complete, implied, order_text, placed, ranking_text, submitted_text
from arena.web.reveal import reveal_lines
from leaderboard.data.events import MAX_FEEDBACK_CHARS

STORE_DOWN = "⚠️ The arena's store is unreachable right now, so nothing was recorded. Try again in a few seconds."
# Redis failures become a message on the page, not Gradio's generic "Error" toast.
STORE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

FAILED_ROUND = "⚠️ One model failed to answer, so this round cannot be voted on. Start a new round."


def deanonymised_note(flags) -> str:
    """What the voter is told after the vote when a model may have revealed itself."""
    if not flags:
        return ""
    return (f"ℹ️ Your vote is saved, but it does not count towards the anonymous leaderboard: "
            f"{flags_explained(flags)}, so the models may not have been anonymous.\n\n")


def session_id(request: gr.Request) -> str:
    # the page cookie's session, which the server issued (not Gradio's session hash, the browser's choice)
    return page_session(request)


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
        self.status = gr.Markdown("", elem_id=element_id(self.prefix, "status"), elem_classes=["arena-status"])
        if self.named:
            with gr.Row():  # choices arrive when the tab is opened (see named_choices), never before
                self.picks = [gr.Dropdown(choices=[], value=None, label=f"Model {label}",
                                          elem_id=element_id(self.prefix, f"pick-{label.lower()}"))
                              for label in self.labels]
        self.chats = []
        # K = 2: two columns side by side; K > 2: a grid as wide as the screen allows (one column on a phone).
        with gr.Row(elem_classes=["arena-chats"] + ([] if self.k == 2 else ["arena-grid", f"arena-k{self.k}"])):
            for label in self.labels:
                self.chats.append(gr.Chatbot(label=f"Model {label}",
                                             elem_id=element_id(self.prefix, f"chat-{label.lower()}"),
                                             elem_classes=["arena-chat"], height=420 if self.k == 2 else 320,
                                             buttons=["copy"], feedback_options=None))
        self.controls = VoteControls(self.labels, self.prefix, self.battles.max_regenerations)
        self.controls.render_regenerate()
        self.reveal = gr.Markdown("", elem_id=element_id(self.prefix, "reveal"))
        self.controls.render_votes()
        self.vote_controls = self.controls.all
        self.feedback = gr.Textbox(placeholder="Why? (optional; stored with your vote)", show_label=False,
                                   max_length=MAX_FEEDBACK_CHARS, elem_id=element_id(self.prefix, "feedback"))
        with gr.Row():
            self.prompt = gr.Textbox(placeholder="Type a prompt and press Enter", show_label=False, scale=8,
                                     elem_id=element_id(self.prefix, "prompt"), max_lines=8)
            self.send = gr.Button("Send", variant="primary", scale=1, elem_id=element_id(self.prefix, "send"))
        self.new_round = gr.Button("🎲 New round", elem_id=element_id(self.prefix, "new-round"))
        self._wire()

    def _picks_enabled(self, enabled: bool) -> list:
        """The named mode's pick dropdowns: off from Send until the vote or New round, so what
        they show is always the battle's models (a change mid-battle would not reach it)."""
        return [gr.update(interactive=enabled) for _ in self.picks]

    def _picks_unchanged(self) -> list:
        return [gr.skip() for _ in self.picks]

    # -- events ---------------------------------------------------------------------------

    def _wire(self) -> None:
        stream_outputs = [self.state, *self.chats, self.prompt, self.status, *self.vote_controls, self.feedback,
                          *self.picks]
        answering = []  # the streaming events, which New round cancels
        for trigger in (self.send.click, self.prompt.submit):
            # Off at once, before the queue: Send, the vote (a shortcut pressed just after Send would
            # otherwise meet the battle answering and be refused) and the named picks.
            started = trigger(lambda: (gr.update(interactive=False), "", *self.controls.updates(False),
                                       *self._picks_enabled(False)),
                              None, [self.send, self.reveal, *self.vote_controls, *self.picks], queue=False,
                              **PAGE_ONLY)
            streaming = started.then(self.on_send, [self.prompt, self.state, *self.chats, *self.picks], stream_outputs,
                                     **PAGE_ONLY)
            answering.append(streaming)
            streaming.then(lambda: gr.update(interactive=True), None, [self.send], queue=False, **PAGE_ONLY)

        # Regenerate: the vote, the other Regenerate buttons and Send are off at once (before the
        # queue), until the new answer is in; New round cancels it like a turn.
        for position, button in enumerate(self.controls.regen_buttons):
            started = button.click(lambda: (gr.update(interactive=False), *self.controls.updates(False)), None,
                                   [self.send, *self.vote_controls], queue=False, **PAGE_ONLY)
            regenerating = started.then(self._regenerate_handler(position), [self.state, *self.chats],
                                        [self.state, *self.chats, self.status, *self.vote_controls], **PAGE_ONLY)
            answering.append(regenerating)
            regenerating.then(lambda: gr.update(interactive=True), None, [self.send], queue=False, **PAGE_ONLY)

        vote_outputs = [self.state, self.reveal, *self.vote_controls, self.feedback, *self.picks]
        if self.k == 2:
            for button, (_, outcome, verdict) in zip(self.controls.vote_buttons, PAIRWISE_BUTTONS):
                button.click(self._pairwise_handler(outcome, verdict), [self.state, self.feedback], vote_outputs,
                             **PAGE_ONLY)
        else:
            self.controls.wire_ranking_clicks()
            controls = self.controls
            controls.submit_ranking.click(self.on_ranking, [self.state, controls.ranking, controls.tie_pending,
                                                            self.feedback], vote_outputs, **PAGE_ONLY)
            controls.best_only.click(self.on_best_only, [self.state, controls.ranking, self.feedback], vote_outputs,
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
                yield (state, *histories, text, message, *self.controls.updates(False), gr.skip(),
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
                       *self.controls.updates(votable, reset=first_turn, regenerations=state.get("regenerations"),
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
                   *self.controls.updates(votable, regenerations=state.get("regenerations")), gr.skip(),
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
            yield state, *histories, "⚠️ Send a prompt first.", *self.controls.updates(False)
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
                    yield state, *histories, f"Regenerating answer {label}…", *self.controls.updates(False)
        except (BattleError, *STORE_ERRORS) as error:
            histories[position][-1] = previous
            message = f"⚠️ {error.page_message}" if isinstance(error, BattleError) else STORE_DOWN
            yield state, *histories, message, *self.controls.updates(await self._votable(state, request), reset=True,
                                                              regenerations=counts)
            return
        # the battle was stored ready before the last update: the vote may be enabled now
        state = {**state, "regenerations": counts}
        yield state, *histories, "", *self.controls.updates(True, reset=True, regenerations=counts)

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
            return (state, f"⚠️ {ranking_text(ranking, self.labels)}", *self.controls.unchanged(), gr.skip(),
                    *self._picks_unchanged())
        return await self._cast(state, request, f"Your ranking: {order_text(ranking)}.",
                                shown=submitted_text(ranking, self.labels), ranking=ranking, feedback=feedback)

    async def on_best_only(self, request: gr.Request, state, ranking, feedback):
        """A partial ranking: what is placed so far, the rest recorded as not ranked."""
        if not ranking:
            return (state, "⚠️ Click the best answer first.", *self.controls.unchanged(), gr.skip(),
                    *self._picks_unchanged())
        rest = [label for label in self.labels if label not in placed(ranking)]
        unranked = ", ".join(f"**{label}**" for label in rest)
        verdict = f"Your pick: {order_text(ranking)}, ahead of {unranked} (not ranked)."
        return await self._cast(state, request, verdict, shown=submitted_text(ranking, self.labels),
                                ranking=ranking, partial=True, feedback=feedback)

    async def _cast(self, state, request: gr.Request, verdict: str, shown=None, **vote):
        """Record the vote; on success the names, an empty reason box and (named mode) the picks
        back; ``shown`` is what the K-way line under the buttons says once the vote is in."""
        if state is None:
            return (state, "⚠️ Send a prompt first.", *self.controls.updates(False), gr.skip(), *self._picks_unchanged())
        regenerations = state.get("regenerations")
        try:
            receipt = await self.battles.vote(state["id"], session_id(request),
                                              self.identity.voter_id(client_address(request)), **vote)
        except BattleError as error:
            return (state, f"⚠️ {error.page_message}", *await self._controls_after_refusal(state, request),
                    gr.skip(), *self._picks_unchanged())
        except STORE_ERRORS:
            return (state, STORE_DOWN, *self.controls.updates(True, regenerations=regenerations), gr.skip(),
                    *self._picks_unchanged())
        names = reveal_lines(self.labels, receipt.models, self.battles.endpoints.spec)
        revealed = (f"### {verdict}\n\n{names}\n\n{deanonymised_note(receipt.identity_flags)}"
                    "Thanks! Send another prompt or press *New round*.")
        return ({**state, "voted": True}, revealed,
                *self.controls.updates(False, regenerations=regenerations, shown=shown),
                "", *self._picks_enabled(True))

    async def _controls_after_refusal(self, state, request: gr.Request) -> list:
        """The vote controls after a refused vote, as the battle now stands: while it is still
        answering (a vote sent just after Send) they are left to the running turn, which turns
        them on when its answers finish; a battle still votable (a rate limit) keeps them on."""
        try:
            _, battle_state = await self.battles.load(state["id"], session_id(request))
        except (BattleError, *STORE_ERRORS):
            return self.controls.updates(False)
        if battle_state in ("streaming", "regenerating"):
            return self.controls.unchanged()
        return self.controls.updates(battle_state == "ready", regenerations=state.get("regenerations"))

    def clear(self):
        return (None, *[[] for _ in self.chats], "", "", "", gr.update(interactive=True), "",
                *self.controls.updates(False, reset=True,
                                       rank_texts=[rank_button_text(label) for label in self.labels]),
                *self._picks_enabled(True))
