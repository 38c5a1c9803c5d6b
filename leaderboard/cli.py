"""``python -m leaderboard``: fit a leaderboard from a vote file, or run the live worker.

    python -m leaderboard fit FILE [--ci sandwich|bootstrap|none] [--bootstrap N] [--seed S]
                                   [--style-control] [--where COLUMN=VALUE ...] [--anchor MODEL=RATING]
                                   [--ties half|davidson] [--alpha A] [--no-ipw] [--voter-cap N]
                                   [--method bradley-terry|elo|plackett-luce] [--include-named]
                                   [--out OUT.json|OUT.csv]
    python -m leaderboard convert IN OUT --layout kaggle|conversation
    python -m leaderboard fit EXPORT --live [--category NAME] [--style-control] [--out ...]
    python -m leaderboard worker ...      (see python -m leaderboard worker --help)
    python -m leaderboard rebuild --data-dir DATA   (counts and snapshot again from the archive; see --help)

May import: leaderboard.config, leaderboard.data, leaderboard.fit, leaderboard.live, leaderboard.models,
leaderboard.rebuild, leaderboard.resampling, leaderboard.views, leaderboard.worker.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from leaderboard.data.anonymity import conditions_choose_anonymity, named_note, without_named
from leaderboard.data.convert import add_parser as add_convert_parser
from leaderboard.data.convert import run_convert
from leaderboard.data.counts import PairCounts
from leaderboard.data.filters import filter_votes, missing_columns
from leaderboard.data.loading import load_all
from leaderboard.data.weights import vote_weights
from leaderboard.fit import CI_METHODS, fit
from leaderboard.live.policy import DEFAULT_PRIOR_PRECISION
from leaderboard.live.view_fit import reproduce_view
from leaderboard.models.base import VoteData
from leaderboard.models.elo import online_elo
from leaderboard.models.mixed_votes import check_comparisons_connected, elo_comparisons, joint_note, joint_vote_data
from leaderboard.models.pairwise import pairwise_model
from leaderboard.models.plackett_luce import PlackettLuce
from leaderboard.models.result import BOOTSTRAP, BRADLEY_TERRY, ELO, PLACKETT_LUCE, SANDWICH, RatingResult, elo_result
from leaderboard.models.style_control import StyleControl, style_vote_data
from leaderboard.views.published import OVERALL, view_id

METHODS = (BRADLEY_TERRY, ELO, PLACKETT_LUCE)


class UsageError(ValueError):
    """A command-line option the user can fix."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m leaderboard", description="Arena rating engine")
    commands = parser.add_subparsers(dest="command", required=True)

    fit_command = commands.add_parser(
        "fit", help="fit ratings with 95%% intervals from a vote file",
        description="Fit a leaderboard from votes (our archive, or LMArena CSV/JSON/JSONL/Parquet).")
    option = fit_command.add_argument
    option("file", type=Path, help="vote file: .csv, .jsonl, .json or .parquet (optionally .gz)")
    option("--method", choices=METHODS, default=BRADLEY_TERRY,
           help="bradley-terry (default; with K-wise votes in the file every vote is fitted by Plackett-Luce); "
                "elo (online Elo, no intervals); plackett-luce (every vote: rankings and pairwise)")
    option("--ci", choices=CI_METHODS, default=None,
           help="interval method (default sandwich; bootstrap if --bootstrap is given)")
    option("--bootstrap", type=int, default=None, metavar="N", help="bootstrap replicates (default 1000)")
    option("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    option("--style-control", action="store_true", help="control for answer length and markdown")
    option("--where", action="append", default=[], metavar="COLUMN=VALUE",
           help="keep only matching votes (repeatable; also !=, >, >=, <, <=; list columns match membership)")
    option("--include-named", action="store_true",
           help="keep named (non-anonymous) votes: rows with anony false or mode named, which are left out "
                "by default as on the live board and LMArena's (a --where on anony or mode also keeps them)")
    option("--anchor", default=None, metavar="MODEL=RATING", help="pin one model's rating")
    option("--ties", choices=("half", "davidson"), default="half",
           help="half: a tie is half a win each way (LMArena, default); davidson: Davidson tie model")
    option("--alpha", type=float, default=0.0, help="prior precision per rating, nats^-2 (default 0: exact MLE)")
    option("--no-ipw", action="store_true", help="ignore selection_probability (no inverse-propensity weights)")
    option("--voter-cap", type=float, default=None, metavar="N", help="each voter's votes weigh at most N votes")
    option("--elo-k", type=float, default=4.0, help="online Elo K (default 4)")
    option("--elo-base", type=float, default=10.0)
    option("--elo-scale", type=float, default=400.0)
    option("--elo-initial", type=float, default=1000.0)
    option("--out", type=Path, default=None, help="write OUT.json or OUT.csv instead of printing a table")
    option("--quiet", action="store_true", help="no progress output on stderr")
    option("--progress", action="store_true",
           help="show a progress bar on stderr for long fits even when stderr is not a terminal")
    option("--live", action="store_true",
           help="the live board's fit of one view (its settings, categories and joint Plackett-Luce for "
                "K-wise votes): reproduces /api/leaderboard from the vote export or archive")
    option("--category", default=None, metavar="NAME",
           help="with --live: the category view (a name from /api/leaderboard/categories; default overall)")

    add_convert_parser(commands)
    commands.add_parser("worker", help="run the live vote worker (python -m leaderboard worker --help)", add_help=False)
    commands.add_parser("rebuild", help="rebuild the counts and the snapshot from the archive (python -m leaderboard "
                        "rebuild --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "worker":
        from leaderboard.worker import main as worker_main  # imported lazily: it needs Redis

        return worker_main(argv[1:])
    if argv and argv[0] == "rebuild":
        from leaderboard.rebuild import main as rebuild_main  # imported lazily: it needs Redis

        return rebuild_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "convert":
            return run_convert(args)
        result = run_fit(args)
    except (ValueError, KeyError) as error:  # every input problem raises a message meant for people
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"error: {message}", file=sys.stderr)
        return 2
    if result.settings.get("named_left_out"):  # printed even with --quiet: no vote is dropped silently
        print(f"note: {named_note(result.settings['named_left_out'])}", file=sys.stderr)
    if result.settings.get("left_out_votes"):  # printed even with --quiet: no vote is dropped silently
        print(f"warning: {result.settings['left_out']}", file=sys.stderr)
    if result.n_unbounded:  # printed even with --quiet: it says how to read the output
        print(f"warning: {result.n_unbounded} model(s) have unbounded 95% intervals (shown as -inf/+inf, "
              "null in JSON): in more than 2.5% of the bootstrap resamples they won every comparison "
              "or lost every one; more votes for them, or --alpha > 0, bound them", file=sys.stderr)
    if args.out is None:
        try:
            print(format_table(result))
        except BrokenPipeError:  # e.g. piped into head
            sys.stderr.close()
    else:
        write_result(result, args.out)
        if not args.quiet:
            print(f"wrote {len(result.models)} models to {args.out}", file=sys.stderr)
    return 0


def run_fit(args: argparse.Namespace) -> RatingResult:
    """Load, filter, weight and fit; the result's settings also record the command line's choices.

    Every vote of the file is fitted, or the output says how many were left out and why: K-wise
    votes go into one Plackett-Luce fit with the pairwise ones (leaderboard.models.mixed_votes), except under
    style control and Davidson ties, which have no K-wise form."""
    ci = args.ci or (BOOTSTRAP if args.bootstrap is not None else SANDWICH)
    n_bootstrap = 1000 if args.bootstrap is None else args.bootstrap
    anchor = parse_anchor(args.anchor) if args.anchor else None
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr))
    progress = not args.quiet and (args.progress or sys.stderr.isatty())
    started = time.perf_counter()

    if args.live or args.category is not None:
        return _fit_live(args, say, started)
    pairwise, kwise, left_out, n_named = _votes_to_fit(args, say)
    votes = pd.concat([pairwise, kwise], ignore_index=True) if len(kwise) else pairwise
    weights = vote_weights(votes, inverse_propensity=not args.no_ipw, voter_cap=args.voter_cap)
    weighted = not np.allclose(weights, 1.0)
    if "selection_probability" not in votes.columns and not args.no_ipw and args.method == PLACKETT_LUCE:
        say("no selection probabilities in the file: the votes are fitted unweighted")
    result, note = _fit_votes(args, pairwise, kwise, weights if weighted else None, ci=ci, n_bootstrap=n_bootstrap,
                              anchor=anchor, progress=progress)

    settings = {
        "file": str(args.file), "where": args.where, "method": args.method, "ci": ci, "ties": args.ties,
        "alpha": args.alpha, "anchor": list(anchor) if anchor else None, "style_control": args.style_control,
        "inverse_propensity": (not args.no_ipw) and "selection_probability" in votes.columns,
        "voter_cap": args.voter_cap, "include_named": args.include_named,
    }
    notes = [text for text in (note, left_out[1] if left_out else "", named_note(n_named) if n_named else "") if text]
    if notes:
        settings["note"] = "; ".join(notes)
    if left_out:
        settings["left_out_votes"], settings["left_out"] = left_out
    if n_named:
        settings["named_left_out"] = n_named
    settings.update({key: value for key, value in result.settings.items() if key not in settings})
    settings["seconds"] = round(time.perf_counter() - started, 3)
    return replace(result, settings=settings, note="; ".join(notes) or result.note)


def _votes_to_fit(args: argparse.Namespace, say) -> tuple[pd.DataFrame, pd.DataFrame, tuple[int, str] | None, int]:
    """(pairwise votes, K-wise votes, (how many K-wise votes were left out, why) or None, how many
    named votes were left out): the file's anonymous votes (every vote with ``--include-named`` or
    a ``--where`` on ``anony``/``mode``) that match ``--where``, the K-wise ones dropped only when
    the fit or a condition cannot take them."""
    pairwise, kwise = load_all(args.file)
    n_loaded = len(pairwise) + len(kwise)
    left_out = None
    n_named = 0
    if not args.include_named and not conditions_choose_anonymity(args.where):
        pairwise, kwise, n_named = without_named(pairwise, kwise)
        if len(pairwise) + len(kwise) == 0:
            raise UsageError(f"{args.file}: all {n_loaded} votes are named (non-anonymous); "
                             "--include-named fits them")
    if args.where:
        pairwise = filter_votes(pairwise, args.where) if len(pairwise) else pairwise
        missing = missing_columns(kwise, args.where) if len(kwise) and len(pairwise) else []
        if missing:  # e.g. per-answer style columns, which K-wise rows do not have
            left_out = (len(kwise), f"{len(kwise)} K-wise vote(s) left out: they have no column "
                                    f"{', '.join(missing)} to match {' and '.join(args.where)}")
            kwise = kwise.iloc[0:0]
        elif len(kwise):
            kwise = filter_votes(kwise, args.where).reset_index(drop=True)
        if len(pairwise) + len(kwise) == 0:
            raise UsageError(f"no votes match {' and '.join(args.where)} (of {n_loaded} loaded)")
    kinds = f"{len(pairwise)} pairwise" + (f" and {len(kwise)} K-wise" if len(kwise) else "")
    say(f"loaded {n_loaded} votes from {args.file}" + (f", {n_named} named left out" if n_named else "")
        + (f", {kinds} match {args.where}" if args.where else f" ({kinds})"))
    if len(kwise) and (args.style_control or (args.ties == "davidson" and args.method != PLACKETT_LUCE)):
        why = "style control" if args.style_control else "the Davidson tie model"
        left_out = (len(kwise), f"{len(kwise)} K-wise vote(s) left out: {why} fits pairwise votes only "
                                "(drop --style-control / --ties davidson to fit every vote jointly by Plackett-Luce)")
        kwise = kwise.iloc[0:0]
    if len(pairwise) == 0 and args.method != PLACKETT_LUCE and not len(kwise):
        raise UsageError(f"{args.file}: no pairwise votes to fit" + (f"; {left_out[1]}" if left_out else ""))
    return pairwise, kwise, left_out, n_named


def _fit_votes(args: argparse.Namespace, pairwise: pd.DataFrame, kwise: pd.DataFrame, weights: np.ndarray | None, *,
               ci: str, n_bootstrap: int, anchor, progress: bool) -> tuple[RatingResult, str]:
    """The fit the options ask for, and a note on how K-wise votes went into it ("" when none did).
    ``weights``: one per vote (pairwise rows, then K-wise rows), None when all are 1."""
    if args.method == ELO:
        result = _fit_elo(elo_comparisons(pairwise, kwise) if len(kwise) else pairwise, args, anchor,
                          n_votes=len(pairwise) + len(kwise))
        return result, (f"{len(kwise)} K-wise vote(s) read as all their pairwise comparisons "
                        "(online Elo has no K-wise form)" if len(kwise) else "")
    if args.style_control:
        # an anchor outside the fitted models is a ValueError naming it, reported by main()
        model, data = StyleControl(ties="half"), style_vote_data(pairwise, ties="half", weights=weights)
        note = ""
    elif args.method == PLACKETT_LUCE or len(kwise):
        if args.ties == "davidson":
            raise UsageError("--ties davidson is a Bradley-Terry option; Plackett-Luce reads a tie as half a win "
                             "each way")
        model, data = PlackettLuce(alpha=args.alpha), joint_vote_data(pairwise, kwise, weights=weights)
        note = joint_note(len(pairwise), len(kwise)) if len(pairwise) and len(kwise) else ""
    else:
        frame = pairwise if weights is None else pairwise.assign(__weight__=weights)
        counts = PairCounts.from_frame(frame, None if weights is None else "__weight__")
        model, data, note = pairwise_model(args.ties, args.alpha), VoteData(pairs=counts), ""
    return fit(model, data, ci=ci, n_bootstrap=n_bootstrap, seed=args.seed, anchor=anchor, progress=progress), note


# options --live replaces with the live board's own settings, and the value that means "not given"
_NOT_WITH_LIVE = {"method": BRADLEY_TERRY, "ci": None, "bootstrap": None, "where": [], "anchor": None, "ties": "half",
                  "alpha": 0.0, "no_ipw": False, "voter_cap": None, "include_named": False}


def _fit_live(args: argparse.Namespace, say, started: float) -> RatingResult:
    if not args.live:
        raise UsageError("--category selects a view of the live board: add --live")
    given = [name for name, unset in _NOT_WITH_LIVE.items() if getattr(args, name) != unset]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"--live applies the live board's settings; drop {flags} (or drop --live to choose them)")
    category = args.category or OVERALL
    fit = reproduce_view(args.file, category, args.style_control)
    say(f"{args.file}: view {view_id(category, args.style_control)}, {fit.result.n_votes} votes, {fit.result.method}"
        + (f" ({fit.note})" if fit.note else ""))
    settings = {"file": str(args.file), "live": True, "category": category, "style_control": args.style_control,
                "alpha": DEFAULT_PRIOR_PRECISION, "ties": "half", "inverse_propensity": False, "voter_cap": None}
    settings.update({key: value for key, value in fit.result.settings.items() if key not in settings})
    settings["seconds"] = round(time.perf_counter() - started, 3)
    return replace(fit.result, settings=settings)


def parse_anchor(text: str) -> tuple[str, float]:
    model, separator, rating = text.rpartition("=")
    try:
        value = float(rating)
    except ValueError:
        value = math.nan
    if not separator or not model or not math.isfinite(value):
        raise UsageError(f"--anchor must look like MODEL=RATING (e.g. gpt-4=1200), got {text!r}")
    return model, value


def _fit_elo(votes, args, anchor, *, n_votes: int) -> RatingResult:
    """Online Elo over ``votes`` (model_a, model_b, winner) in their order; like Bradley-Terry it
    refuses models in groups never compared with each other (one scale would mean nothing)."""
    check_comparisons_connected(votes)
    ratings = online_elo(votes["model_a"], votes["model_b"], votes["winner"], k=args.elo_k, base=args.elo_base,
                         scale=args.elo_scale, initial=args.elo_initial)
    votes_per_model = pd.concat([votes["model_a"], votes["model_b"]]).value_counts().to_dict()
    ratings = {str(name): value for name, value in ratings.items()}
    votes_per_model = {str(name): int(count) for name, count in votes_per_model.items()}
    return elo_result(ratings, votes_per_model, n_votes, anchor=anchor,
                      settings={"elo_k": args.elo_k, "elo_base": args.elo_base, "elo_scale": args.elo_scale,
                                "elo_initial": args.elo_initial, "intervals": "none (online Elo has no intervals)"})


def write_result(result: RatingResult, out: Path) -> None:
    """OUT.json: the result's document; OUT.csv: its rows (an unbounded end is an empty cell)."""
    suffix = out.suffix.lower()
    if suffix == ".json":
        out.write_text(json.dumps(result.to_document(), indent=2) + "\n", encoding="utf-8")
    elif suffix == ".csv":
        pd.DataFrame(result.to_document()["models"]).to_csv(out, index=False)
    else:
        raise UsageError(f"--out must end in .json or .csv, got {out}")


def format_table(result: RatingResult) -> str:
    """The table printed without --out: one line per model, then totals and style coefficients."""
    rows = result.rows()
    name_width = max([len("model")] + [len(r["model"]) for r in rows])
    lines = [f"{'rank':>4}  {'model':<{name_width}}  {'rating':>7}  {'95% CI':>17}  {'votes':>8}"]
    for row in rows:
        interval = f"[{_bound(row['lower'])}, {_bound(row['upper'])}]"
        rank = f"{row['rank']}" if row["rank"] == row["rank_lower"] else f"{row['rank']}-{row['rank_lower']}"
        mark = "  unbounded" if not (np.isfinite(row["lower"]) and np.isfinite(row["upper"])) else ""
        lines.append(f"{rank:>4}  {row['model']:<{name_width}}  {row['rating']:7.1f}  {interval:>17}  {row['votes']:8d}"
                     + mark)
    lines.append(f"{result.n_votes} votes, {result.method}")
    if result.note:
        lines.append(f"note: {result.note}")
    for row in rows:
        if "note" in row:
            lines.append(f"{row['model']}: {row['note']}")
    if result.style_coefficients:
        errors = result.style_coefficient_se
        lines.append("style coefficients (nats per standard deviation): " + ", ".join(
            f"{name} {value:+.3f}" + (f" ± {1.96 * errors[name]:.3f}" if name in errors else "")
            for name, value in result.style_coefficients.items()))
        moved = [f"{row['model']} {row['rank_change']:+d}" for row in rows if row.get("rank_change")]
        lines.append("rank change under style control: " + (", ".join(moved) if moved else "none"))
    return "\n".join(lines)


def _bound(value: float) -> str:
    """An interval end for the table: one decimal, or -inf/+inf when unbounded."""
    return f"{value:.1f}" if np.isfinite(value) else ("-inf" if value < 0 else "+inf")
