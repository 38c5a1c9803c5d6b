"""The leaderboard tab in a real headless Chromium, on views published into the real Redis the way
the worker publishes them: the table and its new columns, the figures, the category and style
controls, the model detail and a 390 px phone. Screenshots go to /tmp/ui/ (outside the repo)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_support import BROWSER_WAIT_MS
from tests.helpers import arena_settings, make_board, publish_board, wait_until

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.browser

SCREENSHOTS = Path("/tmp/ui")
RETIRED_MODEL = "demo-retired-2025"
OVERALL = {"demo-verbose": 1180.0, "demo-steps": 1100.0, "demo-friendly": 1020.0, "demo-terse": 940.0,
           "demo-echo": 800.0, RETIRED_MODEL: 1060.0}
# Style control takes the verbose model's markdown out: it falls from first to third.
STYLE = {"demo-verbose": 1010.0, "demo-steps": 1110.0, "demo-friendly": 1060.0, "demo-terse": 960.0,
         "demo-echo": 810.0, RETIRED_MODEL: 1040.0}
CODING = {"demo-steps": 1200.0, "demo-terse": 1090.0, "demo-verbose": 1000.0, "demo-friendly": 930.0,
          "demo-echo": 850.0}
CODING_STYLE = {"demo-terse": 1150.0, "demo-steps": 1140.0, "demo-verbose": 980.0, "demo-friendly": 940.0,
                "demo-echo": 850.0}

# Gradio's table draws its rows virtually (only those in view): rows are div[role=row] of gridcells.
TABLE_ROWS_JS = """() => Array.from(document.querySelectorAll('#leaderboard-table .virtual-row'))
    .sort((a, b) => Number(a.dataset.index) - Number(b.dataset.index))
    .map(row => Array.from(row.querySelectorAll('[role=gridcell]')).map(cell => cell.innerText.trim()))"""
HEADERS_JS = ("() => Array.from(document.querySelectorAll('#leaderboard-table thead th'))"
              ".map(th => th.innerText.trim())")
# Points a Plotly figure draws: the length of each trace's x (scatter, bar) or z (heat map) arrays.
PLOT_POINTS_JS = """(id) => {
    const plot = document.querySelector('#' + id + ' .js-plotly-plot');
    if (!plot || !plot.data) return 0;
    return plot.data.reduce((sum, trace) => sum + ((trace.z || trace.x || []).length || 0), 0);
}"""
FIGURES = ("leaderboard-ratings", "leaderboard-observed", "leaderboard-predicted", "leaderboard-battles",
           "leaderboard-history")


@pytest.fixture
def board_stack(redis_url, redis_client, tmp_path):
    """The arena without its worker, on views this test publishes (the worker's side is tested apart)."""
    from arena.cli.serve import ArenaStack

    publish_board(redis_client, make_board({"overall": OVERALL, "overall+style": STYLE, "coding": CODING,
                                            "coding+style": CODING_STYLE},
                                           labels={"coding": "Coding"}, battles_per_pair=300))
    with ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False)) as stack:
        yield stack


def table_rows(page):
    return page.evaluate(TABLE_ROWS_JS)


def column(rows, name, headers):
    return [row[headers.index(name)] for row in rows]


def wait_for_models(page, models, what):
    """Wait until the table lists exactly ``models``, in this order; return its rows."""
    return wait_until(lambda rows: [row[1] for row in rows] == list(models), observe=lambda: table_rows(page),
                      interval=0.1, pause=lambda seconds: page.wait_for_timeout(seconds * 1000), what=what)


def open_leaderboard(browser, stack, viewport):
    page = browser.new_page(viewport=viewport)
    page.goto(stack.url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="🏆 Leaderboard").click()
    return page


def test_the_leaderboard_tab_reads_the_published_views(board_stack, browser):
    SCREENSHOTS.mkdir(exist_ok=True)
    page = open_leaderboard(browser, board_stack, {"width": 1280, "height": 1000})
    plain_order = ["demo-verbose", "demo-steps", "demo-friendly", "demo-terse", "demo-echo"]
    rows = wait_for_models(page, plain_order, "the overall view without retired models")
    headers = page.evaluate(HEADERS_JS)
    for name in ("Rank", "Rank Δ, style control", "Model", "Rating", "95% interval", "Votes", "Organisation",
                 "Licence", "Status"):
        assert name in headers, headers
    assert column(rows, "Organisation", headers)[1] == "Stepwise Research (demo)"
    assert column(rows, "Licence", headers)[0] == "Apache-2.0"
    assert re.fullmatch(r"\+\d+ / −\d+", column(rows, "95% interval", headers)[0])
    assert column(rows, "Rating", headers)[0] == "1180"
    # 1,500 votes each, above the default minimum of 50: nothing is preliminary.
    assert set(column(rows, "Status", headers)) == {""}
    assert column(rows, "Rank Δ, style control", headers)[0] == "▼ 2"  # verbose: 1st plain, 3rd with style
    playwright_sync.expect(page.locator("#leaderboard-note")).to_contain_text(re.compile(
        r"4,500 votes, refitted \d+ s ago, next refit (in \d+ s if there are new votes|when new votes arrive)"),
        timeout=BROWSER_WAIT_MS)
    assert "nats" not in page.locator("#leaderboard-note").inner_text()

    points = wait_until(lambda counts: all(counts[name] > 0 for name in FIGURES),
                        observe=lambda: {name: page.evaluate(PLOT_POINTS_JS, name) for name in FIGURES},
                        interval=0.1, pause=lambda seconds: page.wait_for_timeout(seconds * 1000),
                        what="every figure to draw data")
    assert points["leaderboard-ratings"] == 5 and points["leaderboard-observed"] == 5
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-desktop.png"), full_page=True)

    # Style control on: ranks change (verbose falls to third).
    page.locator("#leaderboard-style input").check()
    rows = wait_for_models(page, ["demo-steps", "demo-friendly", "demo-verbose", "demo-terse", "demo-echo"],
                           "the style-controlled order")
    assert column(rows, "Rank", headers) == ["1", "2", "3", "4", "5"]
    assert column(rows, "Rank Δ, style control", headers)[2] == "▼ 2"
    page.locator("#leaderboard-style input").uncheck()
    wait_for_models(page, plain_order, "the plain order again")

    # Another category: the table changes to its own order.
    page.locator("#leaderboard-category input").click()
    page.get_by_role("option", name=re.compile(r"^Coding \(")).click()
    rows = wait_for_models(page, ["demo-steps", "demo-terse", "demo-verbose", "demo-friendly", "demo-echo"],
                           "the coding view")
    assert column(rows, "Rating", headers)[0] == "1200"
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-coding.png"), full_page=True)

    # Show retired, and a minimum above everyone's votes marks every model preliminary.
    page.locator("#leaderboard-category input").click()
    page.get_by_role("option", name=re.compile(r"^Overall \(")).click()
    wait_for_models(page, plain_order, "the overall view again")
    page.locator("#leaderboard-show-retired input").check()
    rows = wait_for_models(page, ["demo-verbose", "demo-steps", RETIRED_MODEL, "demo-friendly", "demo-terse",
                                  "demo-echo"], "the retired model shown")
    assert column(rows, "Status", headers)[2] == "retired"
    minimum = page.locator("#leaderboard-min-votes input")
    minimum.fill("2000")
    minimum.press("Enter")
    wait_until(lambda statuses: statuses and all("preliminary" in status for status in statuses),
               observe=lambda: column(table_rows(page), "Status", headers), interval=0.1,
               pause=lambda seconds: page.wait_for_timeout(seconds * 1000), what="every model marked preliminary")

    # A row opens the model's detail: its record against each opponent and its ratings per category.
    page.locator("#leaderboard-table [role=gridcell]").get_by_text("demo-terse", exact=True).click()
    detail = page.locator("#leaderboard-detail")
    playwright_sync.expect(page.locator("#leaderboard-detail-summary")).to_contain_text(
        "demo-terse", timeout=BROWSER_WAIT_MS)
    playwright_sync.expect(detail).to_contain_text("Rating 940", timeout=BROWSER_WAIT_MS)
    playwright_sync.expect(page.locator("#leaderboard-detail-record")).to_contain_text(
        "demo-verbose", timeout=BROWSER_WAIT_MS)
    playwright_sync.expect(page.locator("#leaderboard-detail-categories")).to_contain_text(
        "1090", timeout=BROWSER_WAIT_MS)  # its coding rating
    wait_until(lambda count: count == 5, observe=lambda: page.evaluate(PLOT_POINTS_JS, "leaderboard-detail-opponents"),
               interval=0.1, pause=lambda seconds: page.wait_for_timeout(seconds * 1000),
               what="the opponents figure (five opponents, the retired one included)")
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-detail.png"), full_page=True)

    # The method, in plain words, behind "How this is computed".
    page.locator("#leaderboard-how").get_by_text("How this is computed").click()
    how = page.locator("#leaderboard-how")
    playwright_sync.expect(how).to_contain_text("Style control.", timeout=BROWSER_WAIT_MS)
    playwright_sync.expect(page.locator("#leaderboard-method")).to_contain_text(
        "This view: Bradley-Terry, robust (sandwich) 95% intervals", timeout=BROWSER_WAIT_MS)
    assert "nats" not in how.inner_text() and "sandwich+" not in how.inner_text()


def test_the_leaderboard_on_a_390_px_phone(board_stack, browser):
    SCREENSHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page.goto(board_stack.url, wait_until="domcontentloaded")
    tab = page.get_by_role("tab", name="🏆 Leaderboard")
    playwright_sync.expect(tab).to_be_visible(timeout=BROWSER_WAIT_MS)  # not behind a "⋯" menu
    box = tab.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    tab.click()
    wait_for_models(page, ["demo-verbose", "demo-steps", "demo-friendly", "demo-terse", "demo-echo"],
                    "the table on a phone")
    table = page.locator("#leaderboard-table")
    table_box = table.bounding_box()
    assert table_box["x"] >= 0 and table_box["x"] + table_box["width"] <= 390 + 1, table_box
    assert table_box["y"] < 844, "the table starts below the first screen"
    # The page itself does not scroll sideways; the table does, and scrolling it reaches the last column.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390 + 1
    scrolled = page.evaluate("""() => {
        const cells = document.querySelectorAll('#leaderboard-table thead th');
        const last = cells[cells.length - 1];
        let box = last.parentElement;
        while (box && !(box.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== 'visible')) {
            box = box.parentElement;
        }
        if (!box) return null;
        box.scrollLeft = box.scrollWidth;
        const rect = last.getBoundingClientRect();
        const model = cells[1].getBoundingClientRect();  // pinned: stays in view while the rest scrolls
        return {left: rect.left, right: rect.right, text: last.innerText.trim(), model_left: model.left,
                model_right: model.right, model: cells[1].innerText.trim()};
    }""")
    assert scrolled is not None, "no sideways-scrolling box around the table"
    assert scrolled["text"] == "Status" and scrolled["right"] <= 390 + 1, scrolled
    # Rank and model stay pinned at the left, and the last column is not hidden behind them.
    assert scrolled["model"] == "Model" and scrolled["model_left"] >= 0, scrolled
    assert scrolled["left"] >= scrolled["model_right"] - 1, scrolled
    for figure in ("leaderboard-ratings", "leaderboard-observed"):
        wait_until(lambda count: count > 0, observe=lambda: page.evaluate(PLOT_POINTS_JS, figure), interval=0.1,
                   pause=lambda seconds: page.wait_for_timeout(seconds * 1000), what=f"{figure} on a phone")
        width = page.evaluate("(id) => document.querySelector('#' + id + ' .main-svg').getBoundingClientRect().width",
                              figure)
        assert 200 < width <= 390, f"{figure} is {width} px wide"
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-phone.png"), full_page=True)


# -- the "Rating over time" axis: every tick label and the axis title in full, apart -------------------

BOARD_SHOTS = Path("/tmp/board")
# Ratings a point apart, so Plotly ticks between whole numbers: labels such as "1234.5", six characters.
NARROW = {"demo-verbose": 1235.0, "demo-steps": 1234.5, "demo-friendly": 1234.0}
# Each tick label's text and box, the axis title's box and the figure's own box (its SVG).
HISTORY_AXIS_JS = """() => {
    const plot = document.querySelector('#leaderboard-history .js-plotly-plot');
    if (!plot) return null;
    const svg = plot.querySelector('.main-svg').getBoundingClientRect();
    const box = (element) => { const r = element.getBoundingClientRect(); return {left: r.left, right: r.right}; };
    const ticks = Array.from(plot.querySelectorAll('.ytick text')).map(t => ({text: t.textContent, ...box(t)}));
    const title = plot.querySelector('.ytitle');
    return {ticks, svg_left: svg.left, title: title ? {text: title.textContent, ...box(title)} : null};
}"""


@pytest.fixture
def narrow_board_stack(redis_url, redis_client, tmp_path):
    from leaderboard.views.published import RatingPoint

    board = make_board({"overall": NARROW})
    generated_at = board.index.generated_at
    board.history["overall"] = [RatingPoint(generated_at=generated_at - 60.0 * (3 - k), total_votes=100 * (k + 1),
                                            ratings={model: rating + 0.1 * k for model, rating in NARROW.items()})
                                for k in range(4)]
    publish_board(redis_client, board)
    from arena.cli.serve import ArenaStack

    with ArenaStack(arena_settings(redis_url, tmp_path, run_worker=False)) as stack:
        yield stack


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 1000}, {"width": 390, "height": 844}])
def test_rating_over_time_shows_whole_tick_labels_and_a_title_beside_them(narrow_board_stack, browser, viewport):
    BOARD_SHOTS.mkdir(exist_ok=True)
    page = open_leaderboard(browser, narrow_board_stack, viewport)
    wait_for_models(page, list(NARROW), "the three models")
    axis = wait_until(lambda axis: axis and axis["ticks"] and axis["title"],
                      observe=lambda: page.evaluate(HISTORY_AXIS_JS),
                      interval=0.1, pause=lambda seconds: page.wait_for_timeout(seconds * 1000),
                      what="the rating-over-time figure to draw its y axis")
    page.locator("#leaderboard-history").scroll_into_view_if_needed()
    page.locator("#leaderboard-history").screenshot(path=str(BOARD_SHOTS / f"history-{viewport['width']}.png"))
    labels = [tick["text"] for tick in axis["ticks"]]
    assert all(re.fullmatch(r"123\d(\.\d)?", label) for label in labels), labels  # whole numbers, no "1k"
    assert any(len(label) == 6 for label in labels), labels  # some with a decimal: 1234.5
    for tick in axis["ticks"]:  # drawn inside the figure: the SVG clips whatever is left of it
        assert tick["left"] >= axis["svg_left"], (tick, axis["svg_left"])
    title = axis["title"]
    assert title["text"] == "rating" and title["left"] >= axis["svg_left"], title
    assert title["right"] <= min(tick["left"] for tick in axis["ticks"]), (title, axis["ticks"])  # no overlap


# -- the view's note under the table: why style control may change nothing --------------------------

def test_with_few_votes_each_view_shows_its_note(arena_stack, browser, redis_client):
    """Three votes through the real worker: too few for a fit, so every view is online Elo and
    the style view says why it matches the plain one (the API's note, on the page)."""
    from leaderboard.store.redis_keys import vote_stream_key
    from tests.helpers import make_vote, signed_entry

    first, second, third = sorted(arena_stack.endpoints.names)[:3]
    for model_a, model_b in ((first, second), (second, third), (first, third)):
        # signed as the web process signs them: the worker refuses unsigned entries
        redis_client.xadd(vote_stream_key("arena"), signed_entry(make_vote(model_a, model_b)))
    BOARD_SHOTS.mkdir(exist_ok=True)
    page = open_leaderboard(browser, arena_stack, {"width": 1280, "height": 1000})
    note = page.locator("#leaderboard-view-note")
    playwright_sync.expect(note).to_contain_text("only 3 rated vote(s) so far; a fit needs at least 10",
                                                 timeout=BROWSER_WAIT_MS)
    page.locator("#leaderboard-style input").check()
    playwright_sync.expect(note).to_contain_text(
        "only 3 pairwise vote(s) for style control; a fit needs at least 10", timeout=BROWSER_WAIT_MS)
    assert "online Elo ratings, not a Bradley-Terry fit" in note.inner_text()
    table = page.locator("#leaderboard-table").bounding_box()
    assert note.bounding_box()["y"] >= table["y"] + table["height"] - 1  # below the table
    page.screenshot(path=str(BOARD_SHOTS / "style-note.png"), full_page=True)
