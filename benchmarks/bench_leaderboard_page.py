"""The leaderboard tab in a real headless Chromium, with 200 models and 10 categories (22 views with
style control), from the moment the data is there to the moment the tab shows it.

The arena runs in-process on 127.0.0.1 (embedded Redis, no worker, a models file naming the 200
models) and the views are published straight into Redis the way the worker writes them (the
worker's own cost is bench_worker.py's). Measured, each ``--trials`` times:

- *switch*: the user picks another category; until its leader heads the table and the ratings,
  observed, predicted and battle-count figures all show that category (server read + table + four
  figures + transfer + browser render);
- *new cycle*: a new worker cycle is published; until the page shows it (adds the page's poll wait,
  up to POLL_SECONDS);
- *first open*: page load -> tab drawn, once (includes loading Plotly's 4.6 MB script).

    .venv/bin/python benchmarks/bench_leaderboard_page.py [--models 200] [--categories 10] [--trials 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arena.cli.serve import ArenaStack  # noqa: E402
from arena.ops.redis_server import EmbeddedRedis  # noqa: E402
from arena.web.leaderboard_tab import POLL_SECONDS, LeaderboardTab  # noqa: E402
from tests.browser_support import CHROMIUM_ARGS, chromium_path  # noqa: E402
from tests.helpers import arena_settings, make_board, publish_board  # noqa: E402

CATEGORY_NAMES = ("coding", "long_prompt", "multi_turn", "hard_prompts", "english", "chinese", "german", "math",
                  "creative_writing", "instruction_following")

# True when the table's first row and the four figures all lead with ``leader``.
RENDERED_JS = """(leader) => {
    const first = document.querySelector('#leaderboard-table .virtual-row[data-index="0"] [data-col="1"]');
    if (!first || first.innerText.trim() !== leader) return false;
    const plot = (id) => document.querySelector('#' + id + ' .js-plotly-plot');
    const ratings = plot('leaderboard-ratings');
    if (!ratings || !ratings.data || ratings.data[0].y[ratings.data[0].y.length - 1] !== leader) return false;
    for (const id of ['leaderboard-observed', 'leaderboard-predicted', 'leaderboard-battles']) {
        const heat = plot(id);
        if (!heat || !heat.data || heat.data[0].y[0] !== leader) return false;
    }
    return true;
}"""


def models_file(directory: Path, names: list[str]) -> Path:
    path = directory / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [
        {"name": name, "base_url": "http://127.0.0.1:9/v1", "model_id": name,
         "organisation": f"Lab {i % 17}", "license": ("Apache-2.0", "MIT", "proprietary")[i % 3]}
        for i, name in enumerate(names)]}))
    return path


def cycle(names: list[str], categories: list[str], rng: np.random.Generator, generated_at: float):
    """One worker cycle: every category with and without style control, each with its own leader."""
    base = 1000 + 120 * rng.standard_normal(len(names))
    ratings = {}
    for category in ["overall", *categories]:
        shifted = base + (0 if category == "overall" else 60 * rng.standard_normal(len(names)))
        ratings[category] = dict(zip(names, shifted.tolist()))
        ratings[category + "+style"] = dict(zip(names, (shifted + 30 * rng.standard_normal(len(names))).tolist()))
    return make_board(ratings, generated_at=generated_at, battles_per_pair=25, history_points=20)


def leader(board, view: str) -> str:
    return board.snapshots[view].rows[0].model


def time_server_side(spent: list[float]) -> None:
    """Record how long each full redraw takes in the web process (read + table + figures), so the
    report can split the total into server and transfer-plus-browser."""
    refresh = LeaderboardTab.refresh

    async def timed(self, *args, **kwargs):
        started = time.perf_counter()
        result = await refresh(self, *args, **kwargs)
        if isinstance(result[-1], dict) and "cycle" in result[-1]:  # a full redraw, not a poll that skipped
            spent.append(time.perf_counter() - started)
        return result

    LeaderboardTab.refresh = timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--categories", type=int, default=10)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    names = [f"model-{i:03d}" for i in range(args.models)]
    categories = list(CATEGORY_NAMES[: args.categories])
    rng = np.random.default_rng(7)
    server_side: list[float] = []
    time_server_side(server_side)
    with tempfile.TemporaryDirectory(prefix="bench-board-") as scratch:
        scratch = Path(scratch)
        server = EmbeddedRedis(scratch / "redis").start()
        client = redis.Redis.from_url(server.url)
        try:
            began = time.perf_counter()
            board = cycle(names, categories, rng, time.time())
            built = time.perf_counter() - began
            publish_board(client, board)
            payload = sum(len(s.model_dump_json()) + len(board.stats[v].model_dump_json())
                          for v, s in board.snapshots.items())
            print(f"{args.models} models, {args.categories} categories: {len(board.snapshots)} views, "
                  f"{payload / 1e6:.1f} MB of JSON (built in {built:.1f} s)")
            settings = arena_settings(server.url, scratch, run_worker=False, demo=False,
                                      models_file=models_file(scratch, names))
            with ArenaStack(settings) as stack, sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                opened = time.perf_counter()
                page.goto(stack.url, wait_until="domcontentloaded")
                page.get_by_role("tab", name="🏆 Leaderboard").click()
                page.wait_for_function(RENDERED_JS, arg=leader(board, "overall"), timeout=120_000, polling="raf")
                first_open = time.perf_counter() - opened

                switches, cycles = [], []
                current = "overall"
                for trial in range(args.trials):
                    target = categories[trial % len(categories)] if current == "overall" else "overall"
                    page.locator("#leaderboard-category input").click()
                    option = page.get_by_role("option").filter(has_text=board.index.categories[
                        [c.name for c in board.index.categories].index(target)].label + " (")
                    option.first.wait_for()  # the list is open: the clock starts at the pick
                    started = time.perf_counter()
                    option.first.click()
                    page.wait_for_function(RENDERED_JS, arg=leader(board, target), timeout=60_000, polling="raf")
                    switches.append(time.perf_counter() - started)
                    current = target

                    board = cycle(names, categories, rng, time.time())
                    publish_board(client, board)
                    started = time.perf_counter()
                    page.wait_for_function(RENDERED_JS, arg=leader(board, current), timeout=60_000, polling="raf")
                    cycles.append(time.perf_counter() - started)
                browser.close()
        finally:
            client.close()
            server.stop()

    def describe(values):
        return (f"median {statistics.median(values):.2f} s, max {max(values):.2f} s (n={len(values)}; "
                + ", ".join(f"{value:.2f}" for value in values[:12]) + ")")

    print(f"of which the web process (read views, build table and figures), per full redraw: {describe(server_side)}")
    print(f"first open (page load -> tab drawn, Plotly's script included): {first_open:.2f} s")
    print(f"category switch -> table and 4 figures drawn: {describe(switches)}")
    print(f"new worker cycle published -> drawn (includes the page's poll, every {POLL_SECONDS:g} s): "
          f"{describe(cycles)}")


if __name__ == "__main__":
    main()
