"""The vote controls of one battle view, and the Regenerate buttons that go on and off with them:
four buttons for K = 2, a ranking built by clicks for K > 2 (arena.web.ranking_control keeps its
rules), and what each control shows as a battle moves on. Built and updated here; what a click
does to the battle is the view's (arena.web.battle_view).
"""

from __future__ import annotations

import gradio as gr

from arena.web.ranking_control import complete, place, placed, ranking_text, submittable, undo
from leaderboard.data.events import MODEL_A, MODEL_B, TIE, TIE_BOTHBAD

PAIRWISE_BUTTONS = (
    ("👈  A is better", MODEL_A, "You preferred **Model A**."),
    ("👉  B is better", MODEL_B, "You preferred **Model B**."),
    ("🤝  Tie", TIE, "You called it a **tie**."),
    ("👎  Both are bad", TIE_BOTHBAD, "You found **both bad**."),
)

# The page's events are for the page; programs use the JSON API (/api/docs), which has the same rules.
PAGE_ONLY = {"api_visibility": "private"}

SHORTCUTS = ("<small>Keyboard: <kbd>1</kbd> A is better · <kbd>2</kbd> B is better · <kbd>3</kbd> tie · "
             "<kbd>4</kbd> both bad · <kbd>Enter</kbd> sends, <kbd>Shift</kbd>+<kbd>Enter</kbd> a new line</small>")
RANKING_HELP = ("Click the answers from best to worst. **Tie** puts the next answer level with the one "
                "before; **Undo** takes the last click back. **Best only** sends just what you have "
                "placed: the other answers are recorded as not ranked.")


def element_id(prefix: str, name: str) -> str:
    """A component's element id in the view whose ids start with ``prefix`` (the browser tests find it by it)."""
    return f"{prefix}{name}"


def rank_button_text(label: str, name: str | None = None) -> str:
    """A rank button's text: ``Model A``, or in named mode (the voter chose the models, so knows
    them) ``A · demo-terse``. Never called with a name in an anonymous view."""
    return f"{label} · {name}" if name else f"Model {label}"


class VoteControls:
    """The vote controls and Regenerate buttons of a view of ``labels`` (K of them), element ids
    starting with ``prefix``; each answer may be regenerated ``max_regenerations`` times."""

    def __init__(self, labels: list[str], prefix: str, max_regenerations: int):
        self.labels = labels
        self.k = len(labels)
        self.prefix = prefix
        self.max_regenerations = max_regenerations
        self.all: list[gr.components.Component] = []  # every control updates() updates, in its order

    # -- layout --

    def render_regenerate(self) -> None:
        """One Regenerate button per answer, under the answers; enabled once every answer has
        finished, until the vote or the answer's cap (hidden when the operator turned regeneration off)."""
        with gr.Row(visible=self.max_regenerations > 0, elem_classes=["arena-regenerate"]):
            self.regen_buttons = [gr.Button(self.regenerate_text(label, 0), interactive=False, size="sm",
                                            elem_id=element_id(self.prefix, f"regen-{label.lower()}"))
                                  for label in self.labels]

    def render_votes(self) -> None:
        """The vote buttons (K = 2) or the ranking control (K > 2); call after render_regenerate."""
        if self.k == 2:
            with gr.Row(elem_classes=["arena-votes"]):
                self.vote_buttons = [
                    gr.Button(text, interactive=False,
                              elem_id=element_id(self.prefix, f"vote-{outcome.replace(' (', '-').rstrip(')')}"))
                    for text, outcome, _ in PAIRWISE_BUTTONS
                ]
            self.all = list(self.vote_buttons)
            gr.Markdown(SHORTCUTS, elem_id=element_id(self.prefix, "shortcuts"), elem_classes=["arena-shortcuts"])
        else:
            gr.Markdown(RANKING_HELP)
            with gr.Row():
                self.rank_buttons = [gr.Button(rank_button_text(label), interactive=False, min_width=90,
                                               elem_id=element_id(self.prefix, f"rank-{label.lower()}"))
                                     for label in self.labels]
            with gr.Row():
                self.tie_next = gr.Button("🟰 Tie", interactive=False, elem_id=element_id(self.prefix, "rank-tie"))
                self.undo = gr.Button("↩ Undo", interactive=False, elem_id=element_id(self.prefix, "rank-undo"))
                self.best_only = gr.Button("🏅 Best only", interactive=False,
                                           elem_id=element_id(self.prefix, "submit-best"))
                self.submit_ranking = gr.Button("Submit ranking", interactive=False, variant="primary",
                                                elem_id=element_id(self.prefix, "submit-ranking"))
            self.ranking = gr.State([])  # groups of labels, best first, as built so far
            self.tie_pending = gr.State(False)
            self.ranking_shown = gr.Markdown(ranking_text([], self.labels), elem_id=element_id(self.prefix, "ranking"))
            self.all = [*self.rank_buttons, self.tie_next, self.undo, self.best_only, self.submit_ranking,
                        self.ranking, self.ranking_shown]
        self.all += self.regen_buttons  # they go on and off with the vote

    def wire_ranking_clicks(self) -> None:
        """K > 2: the clicks that build the ranking, answered in the page (no queue, no battle touched)."""
        outputs = [self.ranking, self.tie_pending, self.ranking_shown, *self.rank_buttons, self.tie_next,
                   self.undo, self.best_only, self.submit_ranking]
        for button, label in zip(self.rank_buttons, self.labels):
            button.click(lambda ranking, tie, label=label: self.ranking_updates(place(ranking, label, tie)),
                         [self.ranking, self.tie_pending], outputs, queue=False, **PAGE_ONLY)
        self.undo.click(lambda ranking: self.ranking_updates(undo(ranking)), [self.ranking], outputs,
                        queue=False, **PAGE_ONLY)
        self.tie_next.click(lambda ranking: (True, gr.update(interactive=False),
                                             ranking_text(ranking, self.labels, tie=True)),
                            [self.ranking], [self.tie_pending, self.tie_next, self.ranking_shown],
                            queue=False, **PAGE_ONLY)

    # -- updates --

    def regenerate_text(self, label: str, count: int) -> str:
        left = self.max_regenerations - count
        return f"🔄 Regenerate {label} ({left} left)" if left > 0 else f"🔄 Regenerate {label} (none left)"

    def updates(self, enabled: bool, reset: bool = False, regenerations=None, rank_texts=None, shown=None) -> list:
        """Updates of the vote controls and the Regenerate buttons: enabled or not (a Regenerate
        button only while its answer is under the cap, counted in ``regenerations``, which also
        sets its "(n left)"; without them, and without ``reset``, its text is left as it is);
        ``reset`` also empties a K-way ranking; ``rank_texts`` relabels the rank buttons;
        ``shown`` replaces the line under them."""
        counts = regenerations or [0] * self.k
        relabel = regenerations is not None or reset
        regenerate = [gr.update(interactive=enabled and count < self.max_regenerations,
                                **({"value": self.regenerate_text(label, count)} if relabel else {}))
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

    def unchanged(self) -> list:
        return [gr.skip() for _ in self.all]

    def ranking_updates(self, ranking) -> list:
        """After a click on the ranking control: what is placed, and which buttons are left."""
        done = complete(ranking, self.labels)
        return [ranking, False, ranking_text(ranking, self.labels),
                *[gr.update(interactive=label not in placed(ranking)) for label in self.labels],
                gr.update(interactive=bool(ranking) and not done), gr.update(interactive=bool(ranking)),
                gr.update(interactive=bool(ranking) and not done),
                gr.update(interactive=submittable(ranking, self.labels))]
