"""``python -m leaderboard convert IN OUT --layout kaggle|conversation``: a vote file in LMArena's layouts.

IN is anything ``fit`` reads (our archive, our export, LMArena's battle, conversation or Kaggle
files); OUT's suffix picks the format (.csv, .jsonl, .json, .parquet). Both layouts hold pairwise
votes only: K-wise votes are left out and counted on stderr. Without text in IN (an export made
without ``--release-text``) the prompt and answer cells are empty lists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from leaderboard.data.layouts import LAYOUTS, to_layout
from leaderboard.data.loading import VoteFileError, file_format, load_all


def add_parser(commands) -> None:
    convert = commands.add_parser("convert", help="write a vote file in LMArena's Kaggle or conversation layout",
                                  description="Write a vote file (anything fit reads) in LMArena's Kaggle or "
                                              "conversation layout; K-wise votes are left out and counted.")
    convert.add_argument("input", type=Path, help="vote file fit reads")
    convert.add_argument("output", type=Path, help="OUT.csv, OUT.jsonl, OUT.json or OUT.parquet")
    convert.add_argument("--layout", choices=LAYOUTS, required=True,
                         help="kaggle: winner_model_a/winner_model_b/winner_tie, prompt, response_a, response_b; "
                              "conversation: winner, conversation_a/conversation_b, category_tag")


def run_convert(args: argparse.Namespace) -> int:
    pairwise, kwise = load_all(args.input)
    if len(kwise):
        print(f"note: {len(kwise)} K-wise vote(s) left out: the {args.layout} layout holds pairwise votes only",
              file=sys.stderr)
    if len(pairwise) == 0:
        raise VoteFileError(f"{args.input}: no pairwise votes to write")
    write_table(to_layout(pairwise, args.layout), args.output)
    print(f"wrote {len(pairwise)} votes to {args.output} ({args.layout} layout)", file=sys.stderr)
    return 0


def write_table(frame: pd.DataFrame, out: Path) -> None:
    """``frame`` in OUT's format; in CSV, list and dict cells as JSON text (what the loader reads back)."""
    fmt = file_format(out)
    if fmt == "parquet":
        frame.to_parquet(out, index=False)
    elif fmt == "csv":
        frame.map(lambda cell: json.dumps(cell) if isinstance(cell, (list, dict)) else cell).to_csv(out, index=False)
    elif fmt == "jsonl":
        with open(out, "w", encoding="utf-8") as handle:
            for record in frame.to_dict(orient="records"):
                handle.write(json.dumps(record, default=_plain) + "\n")
    else:
        out.write_text(json.dumps(frame.to_dict(orient="records"), default=_plain) + "\n", encoding="utf-8")


def _plain(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
