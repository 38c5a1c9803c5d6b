"""The leaderboard tab: builds its components and wires them to leaderboard.views.reader (which reads
the views the worker publishes), arena.web.board_data (which reshapes them) and
arena.web.leaderboard_figures (which draws them). Nothing here fits or computes statistics."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import gradio as gr

from arena.web import board_data as data
from arena.web import leaderboard_figures as figures
from arena.web.battle_view import PAGE_ONLY
from arena.web.board_data import Freshness, ModelInfo
from leaderboard.views.published import OVERALL, view_id
from leaderboard.views.reader import BoardReader, BoardView

# How many models the figures show, best first: a 200 x 200 matrix is neither readable nor quick.
TOP_N_CHOICES = (10, 20, 40, 80, "all")
DEFAULT_TOP_N = 20
HISTORY_DEFAULT_MODELS = 5
POLL_SECONDS = 2.0  # while the tab is shown; a poll that finds nothing new costs one small Redis read
TAB_LABEL = "🏆 Leaderboard"
# Fixed widths, so the first two columns (rank, model) can stay in place while the table scrolls sideways.
# On a 390 px phone 140 px stay beside the pinned two, enough for any other column; long names wrap.
COLUMN_WIDTHS = ("56px", "130px", "72px", "110px", "120px", "72px", "200px", "120px", "110px")
PINNED = ((0, "0px"), (1, COLUMN_WIDTHS[0]))

# Gradio's table draws its header cells as th[data-heading=N] and its body cells as gridcells with
# data-col=N inside one scrolling viewport; sticky cells keep rank and model in view on a phone.
PAGE_CSS = "\n".join(
    f"""#leaderboard-table th[data-heading="{col}"], #leaderboard-table [role=gridcell][data-col="{col}"] {{
  position: sticky; left: {left}; z-index: 2; background: var(--background-fill-primary); }}"""
    for col, left in PINNED)


HOW_IT_IS_COMPUTED = """
**Ratings (Bradley-Terry).** Every vote says which answer a person preferred. The ratings are the
numbers that best explain all the votes at once: when two models are 400 points apart, the higher
one is expected to win about 10 times out of 11; 100 points apart, about 64% of the time. A tie
counts as half a win for each side. Ratings are refitted from all votes on a schedule, not changed
vote by vote, so the order of votes does not matter.

**95% interval.** How far the rating could plausibly move with more votes like these: the range
covers the true rating in 95% of cases. It shrinks as a model collects votes. It can be lopsided
(more room above than below, say) when the votes are.

**Rank.** A model's rank is 1 plus the number of models that are *clearly* better, that is, whose
whole interval lies above this model's interval. Models whose intervals overlap can share a rank.

**Style control.** Longer answers and answers with headers, lists and bold text tend to win votes
whatever their content. With style control on, the fit also learns how much each of these style
features sways a vote and takes it out, so the ratings compare models as if their answers had the
same style. The rank change column says how a model's rank moves when style is taken out (▲ up,
▼ down).

**Rankings of several answers (K-wise votes).** In a 4-way battle a person ranks four answers at
once. Such a ranking is fitted together with the pairwise votes (a Plackett-Luce model: first
place is chosen among all four, second among the other three, and so on), which is the same model
as Bradley-Terry when there are only two answers.

**Categories.** Each category (a language, coding, long prompts, multi-turn conversations, hard
prompts, tags) is fitted on its own votes only. A category appears once it has enough votes.

**Status.** *preliminary*: fewer votes than the minimum you set, so the rating may still move a
lot. *retired*: the model is no longer in rotation; its rating stays as it was when it left.

**Figures.** The observed win rate is the share of its battles the row model won against the
column model (ties count half). The predicted win rate is what the fitted ratings imply for the
same pair, including pairs that never met. The battle count says how many comparisons each cell
rests on.
"""


class LiveCatalogue(Mapping):
    """Organisation and licence of every model the arena serves right now, read from its endpoint
    pool on each look-up: the models file's ModelSpecs and the owner models the pool has picked up
    since the page was built (arena.owners.catalog). A model the pool no longer serves (dropped from
    the configuration, or deleted by its owner: retired) is not in it, so the tab shows it retired."""

    def __init__(self, endpoints):
        self.endpoints = endpoints

    def __getitem__(self, name: str) -> ModelInfo:
        if name not in self.endpoints.names:
            raise KeyError(name)
        spec = self.endpoints.spec(name)
        return ModelInfo(organisation=spec.organisation, license=spec.license)

    def __contains__(self, name) -> bool:
        return name in self.endpoints.names

    def __iter__(self):
        return iter(list(self.endpoints.names))

    def __len__(self) -> int:
        return len(self.endpoints.names)


def model_catalogue(endpoints) -> Mapping[str, ModelInfo]:
    """Organisation and licence of every served model (configured or an owner's), kept current."""
    return LiveCatalogue(endpoints)


def _category_choices(board: BoardView) -> list[tuple[str, str]]:
    return [(f"{info.label} ({info.votes:,} votes)", info.name) for info in board.categories]


def _top(rows, top_n):
    return list(rows) if top_n in (None, "all") else list(rows)[: int(top_n)]


class LeaderboardTab:
    """The components of the leaderboard tab and their events. ``retired`` names models the owners
    retired (models the view rates but the arena does not serve are retired too)."""

    def __init__(self, reader: BoardReader, catalogue: Mapping[str, ModelInfo], *, min_votes: int,
                 refit_interval: float, retired: Callable[[], set[str]] = set,
                 clock: Callable[[], float] = time.time):
        self.reader = reader
        self.catalogue = catalogue
        self.min_votes = min_votes
        self.refit_interval = refit_interval
        self.retired = retired
        self.clock = clock

    # -- what each event computes -------------------------------------------------------------

    def _freshness(self, freshness: Freshness | None) -> str:
        return data.freshness_line(freshness, self.clock(), self.refit_interval)

    def _board_outputs(self, board: BoardView, min_votes, show_retired, top_n, history_models, shown):
        """The table, the figures and (only when they changed since ``shown``) the controls' choices:
        resending a 200-model dropdown on every cycle costs the browser more than the whole table."""
        retired = self.retired()
        rows = data.shown_rows(board.snapshot, self.catalogue, show_retired=show_retired, retired=retired)
        table = data.table_frame(board, self.catalogue, min_votes=int(min_votes or 0), show_retired=show_retired,
                                 retired=retired)
        top_rows = _top(rows, top_n)
        top_models = [row.model for row in top_rows]
        if board.stats is not None:
            observed, battles = data.observed_win_rates(board.stats, top_models)
            observed_figure = figures.matrix_figure(observed, top_models, kind="win rate", battles=battles)
            battles_figure = figures.matrix_figure(battles, top_models, kind="battles")
        else:
            observed_figure = battles_figure = figures.empty_figure("Counts appear after the worker's next refit")
        if board.snapshot is not None and board.snapshot.theta:
            predicted_figure = figures.matrix_figure(data.predicted_win_rates(board.snapshot, top_models), top_models,
                                                     kind="win rate")
        else:
            predicted_figure = figures.empty_figure("Predictions appear after the first full fit")
        all_models = [row.model for row in rows]
        picked = ([model for model in (history_models or []) if model in all_models]
                  or all_models[:HISTORY_DEFAULT_MODELS])
        controls = {"categories": tuple(_category_choices(board)), "category": board.category,
                    "style": (board.style_control, board.style_available), "models": tuple(all_models),
                    "picked": tuple(picked)}
        before = (shown or {}).get("controls", {})

        def changed(*keys):
            return any(before.get(key) != controls[key] for key in keys)

        style_note = None if board.style_available else "Style control appears once the worker publishes it."
        outputs = (
            gr.Dropdown(choices=list(controls["categories"]), value=board.category)
            if changed("categories", "category") else gr.skip(),
            gr.Checkbox(value=board.style_control, interactive=board.style_available, info=style_note)
            if changed("style") else gr.skip(),
            table,
            figures.as_plot(figures.ratings_figure(top_rows)),
            figures.as_plot(observed_figure),
            figures.as_plot(predicted_figure),
            figures.as_plot(battles_figure),
            gr.Dropdown(choices=all_models, value=picked, multiselect=True)
            if changed("models", "picked") else gr.skip(),
            figures.as_plot(figures.history_figure(board.history, picked)),
            gr.Dropdown(choices=all_models) if changed("models") else gr.skip(),
        )
        return outputs, controls

    async def refresh(self, category, style_control, min_votes, show_retired, top_n, history_models, shown,
                      force=True):
        """Everything the tab shows; on a poll (``force`` False) only the freshness line when the
        worker has not published since ``shown`` (what the page last drew). A poll redraws for a new
        worker cycle only: a change of the controls is redrawn by the control's own event."""
        index = await self.reader.index()
        if not force and shown and index is not None and shown["cycle"] == index.generated_at:
            return self._unchanged(shown)
        board = await self.reader.view(category or OVERALL, bool(style_control), index=index)
        if not force and shown and shown["cycle"] == board.cycle:
            return self._unchanged(shown)
        outputs, controls = self._board_outputs(board, min_votes, show_retired, top_n, history_models, shown)
        freshness = Freshness.of(board)
        state = {"cycle": board.cycle, "freshness": freshness, "controls": controls}
        method = (f"<small>This view: {data.method_in_words(board.snapshot.method)}, "
                  f"{board.snapshot.total_votes:,} votes.</small>" if board.snapshot else "")
        return (self._freshness(freshness), *outputs, method, data.view_note(board), state)

    def _unchanged(self, shown):
        """A poll that found nothing new: only the freshness line moves (the controls' own events redraw)."""
        return (self._freshness(shown["freshness"]),) + (gr.skip(),) * 13

    async def poll(self, *inputs):
        return await self.refresh(*inputs, force=False)

    async def history(self, category, style_control, history_models):
        board = await self.reader.view(category or OVERALL, bool(style_control))
        return figures.as_plot(figures.history_figure(board.history, history_models or []))

    async def detail(self, model, category, style_control):
        """The detail of one model in the current view: record per opponent, votes per day, style, categories."""
        if not model:
            return (gr.Accordion(open=False), "Pick a model or click a row of the table.",
                    figures.as_plot(figures.empty_figure("No model picked")), None,
                    figures.as_plot(figures.empty_figure("No model picked")), None, None)
        board = await self.reader.view(category or OVERALL, bool(style_control))
        opponents = data.opponent_frame(board, model)
        rates = [float(cell.rstrip("%")) / 100 for cell in opponents["Win rate"]]
        opponents_figure = figures.opponents_figure(list(opponents["Opponent"]), rates, list(opponents["Votes"]))
        style_stats, per_category = None, {}
        if board.index is not None:
            if board.index.style_control:
                style_stats = await self.reader.stats(view_id(board.category, True))
            per_category = await self.reader.category_snapshots(board.index, board.style_control)
        elif board.snapshot is not None:
            per_category = {OVERALL: board.snapshot}
        labels = {info.name: info.label for info in board.categories}
        return (
            gr.Accordion(open=True, label=f"Model detail: {model}"),
            data.model_summary(board, model, self.catalogue, self.retired()),
            figures.as_plot(opponents_figure),
            opponents,
            figures.as_plot(figures.votes_over_time_figure(board.stats, model)),
            data.style_frame(style_stats, model),
            data.category_ratings_frame(model, per_category, labels),
        )

    # -- the components -------------------------------------------------------------------------

    def render(self, page: gr.Blocks) -> gr.Tab:
        with gr.Tab(TAB_LABEL, id="leaderboard") as tab:
            note = gr.Markdown("", elem_id="leaderboard-note")
            with gr.Row(equal_height=True):
                category = gr.Dropdown(choices=[("Overall", OVERALL)], value=OVERALL, label="Category",
                                       elem_id="leaderboard-category", min_width=200, scale=3)
                min_votes = gr.Number(value=self.min_votes, minimum=0, precision=0, label="Minimum votes",
                                      elem_id="leaderboard-min-votes", min_width=110, scale=1)
            with gr.Row(equal_height=True):
                style_control = gr.Checkbox(value=False, label="Style control", elem_id="leaderboard-style",
                                            min_width=140)
                show_retired = gr.Checkbox(value=False, label="Show retired", elem_id="leaderboard-show-retired",
                                           min_width=140)
            table = gr.Dataframe(headers=list(data.TABLE_COLUMNS), datatype=list(data.TABLE_TYPES), interactive=False,
                                 show_search="search", column_widths=list(COLUMN_WIDTHS), max_height=640, wrap=True,
                                 elem_id="leaderboard-table", label="Leaderboard", show_label=False)
            # the view's own note (Elo fallback, votes left out ...): why style control may change nothing
            view_note = gr.Markdown("", elem_id="leaderboard-view-note")
            gr.Markdown("<small>Click a row, or pick a model under *Model detail*, for its record. Sort by a "
                        "column by clicking its name.</small>")
            with gr.Accordion("Model detail", open=False, elem_id="leaderboard-detail") as detail_box:
                detail_model = gr.Dropdown(choices=[], label="Model", elem_id="leaderboard-detail-model")
                summary = gr.Markdown("Pick a model or click a row of the table.", elem_id="leaderboard-detail-summary")
                opponents_plot = gr.Plot(label="Win rate against each opponent", elem_id="leaderboard-detail-opponents")
                opponents_table = gr.Dataframe(interactive=False, label="Record against each opponent",
                                               elem_id="leaderboard-detail-record", max_height=320)
                votes_plot = gr.Plot(label="Votes per day", elem_id="leaderboard-detail-votes")
                style_table = gr.Dataframe(interactive=False,
                                           label="Style control: coefficients and this model's style",
                                           elem_id="leaderboard-detail-style")
                category_table = gr.Dataframe(interactive=False, label="Ratings per category",
                                              elem_id="leaderboard-detail-categories")
            top_n = gr.Dropdown(choices=list(TOP_N_CHOICES), value=DEFAULT_TOP_N,
                                label="Models in the figures (best first)", elem_id="leaderboard-top-n")
            ratings_plot = gr.Plot(label="Ratings with 95% intervals", elem_id="leaderboard-ratings")
            observed_plot = gr.Plot(label="Observed win rate (row beats column)", elem_id="leaderboard-observed")
            predicted_plot = gr.Plot(label="Predicted win rate from the ratings", elem_id="leaderboard-predicted")
            battles_plot = gr.Plot(label="Battles per pair", elem_id="leaderboard-battles")
            history_models = gr.Dropdown(choices=[], multiselect=True, label="Rating over time for",
                                         elem_id="leaderboard-history-models")
            history_plot = gr.Plot(label="Rating over time", elem_id="leaderboard-history")
            with gr.Accordion("How this is computed", open=False, elem_id="leaderboard-how"):
                gr.Markdown(HOW_IT_IS_COMPUTED)
                method = gr.Markdown("", elem_id="leaderboard-method")
            shown = gr.State(None)
            timer = gr.Timer(POLL_SECONDS, active=False)  # ticks only while the tab is shown

        inputs = [category, style_control, min_votes, show_retired, top_n, history_models, shown]
        outputs = [note, category, style_control, table, ratings_plot, observed_plot, predicted_plot, battles_plot,
                   history_models, history_plot, detail_model, method, view_note, shown]
        quiet = dict(show_progress="hidden", **PAGE_ONLY)
        timer.tick(self.poll, inputs, outputs, **quiet)
        tab.select(self.poll, inputs, outputs, **quiet)
        # One pick in a Gradio 6 dropdown sent "input" twice (two full redraws); "select" comes once.
        for control in (category, top_n):
            control.select(self.refresh, inputs, outputs, **quiet)
        for control in (style_control, min_votes, show_retired):
            control.input(self.refresh, inputs, outputs, **quiet)
        history_models.input(self.history, [category, style_control, history_models], history_plot, **quiet)

        detail_outputs = [detail_box, summary, opponents_plot, opponents_table, votes_plot, style_table, category_table]
        detail_model.input(self.detail, [detail_model, category, style_control], detail_outputs, **quiet)

        def picked_row(event: gr.SelectData):
            return event.row_value[data.TABLE_COLUMNS.index("Model")] if event.row_value else gr.skip()

        table.select(picked_row, None, detail_model, **quiet).then(
            self.detail, [detail_model, category, style_control], detail_outputs, **quiet)
        self.tab, self.timer = tab, timer
        return tab

    def poll_while_shown(self, page: gr.Blocks) -> None:
        """Poll only while this tab is shown, so voters on other tabs cost nothing. Call it once the
        page is built: Gradio puts the tabs into their gr.Tabs only when the page's block closes."""
        with page:
            self.tab.parent.select(self._timer_for_tab, None, self.timer, show_progress="hidden", **PAGE_ONLY)

    def _timer_for_tab(self, event: gr.SelectData):
        return gr.Timer(active=event.value == TAB_LABEL)
