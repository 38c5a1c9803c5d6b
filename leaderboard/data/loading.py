"""Reading votes from files: our vote archive and public LMArena-style battle files.

Both become one pandas frame with one row per pairwise vote and the columns the fitters use:
``model_a``, ``model_b``, ``winner`` (LMArena strings), and when known the style columns
``tokens_a, tokens_b, headers_a, headers_b, lists_a, lists_b, bold_a, bold_b`` (and
``user_tokens``, the prompt length, when LMArena's conv_metadata has it) plus whatever
metadata the source has (``categories``, ``turns``, ``selection_probability``, ``voter_id``,
``voted_at``, ``language``, ``tstamp``, ``judge``, ...). Pandas lives here, at the edge; the
statistics take arrays.

Formats, by file suffix: ``.csv``, ``.jsonl``/``.ndjson`` (JSON lines), ``.json`` (a list of
records, or pandas' column layout), ``.parquet``; a ``.gz``/``.bz2``/``.xz`` suffix on top is
decompressed. A JSON-lines file whose records carry ``vote_id`` and ``models`` is read as our
archive of VoteEvents (by leaderboard.data.archive_reader, the archive's one reader).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from leaderboard.data.archive_reader import COMPRESSION_SUFFIXES, ArchiveCorruptError, archive_frames, open_decompressed
from leaderboard.data.counts import REQUIRED_COLUMNS
from leaderboard.data.layouts import LayoutError, frame_rankings, split_votes
from leaderboard.data.tables import read_csv_exact, read_json_lines_exact, text_names

# LMArena conv_metadata key -> our column; dict-valued entries are summed over their keys
# (h1..h6; ordered/unordered; "**"/"__"), scalar entries taken as they are
_CONV_METADATA_COLUMNS = {
    "sum_assistant_a_tokens": "tokens_a",
    "sum_assistant_b_tokens": "tokens_b",
    "header_count_a": "headers_a",
    "header_count_b": "headers_b",
    "list_count_a": "lists_a",
    "list_count_b": "lists_b",
    "bold_count_a": "bold_a",
    "bold_count_b": "bold_b",
    "sum_user_tokens": "user_tokens",  # prompt length: --where user_tokens>=500 for long prompts
    "turns": "turns",
}


class VoteFileError(ValueError):
    """A vote file that cannot be read; the message names the file, the place and the fix."""


def file_format(path: Path) -> str:
    """'csv' | 'jsonl' | 'json' | 'parquet' from the suffix (ignoring a compression suffix)."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes.pop()
    suffix = suffixes[-1] if suffixes else ""
    formats = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
    if suffix not in formats:
        raise VoteFileError(
            f"{path}: unknown file type {suffix or '(no suffix)'!r}; use .csv, .jsonl, .json or .parquet"
        )
    return formats[suffix]


def load_votes(path: str | Path) -> pd.DataFrame:
    """Pairwise votes from a file, as a frame (see the module docstring). K-wise votes (of our
    archive, our export or a rankings file) are left out here: see ``load_all`` and
    ``load_rankings``. Raises VoteFileError for an empty file or missing columns; outcome strings
    are checked when the frame is aggregated (PairCounts)."""
    path = Path(path)
    pairwise, kwise = load_all(path)
    if len(pairwise) == 0:
        raise VoteFileError(f"{path}: no pairwise votes in the file"
                            + (f" ({len(kwise)} K-wise votes: fit them with --method plackett-luce)" if len(kwise) else ""))
    return pairwise


def load_all(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairwise votes, K-wise votes) of a file in any layout ``leaderboard.data.layouts`` reads. The
    pairwise frame is ``load_votes``'s; the K-wise frame has one row per ranking, its ``ranking``
    (groups of model names, best first) and whatever metadata the file has (``selection_probability``,
    ``categories``, ``voter_id``/``judge``, ...). Either may be empty, not both."""
    path = Path(path)
    if not path.exists():
        raise VoteFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VoteFileError(f"{path}: the file is empty; it holds no votes")
    fmt = file_format(path)
    if fmt == "jsonl" and is_archive(path):
        pairwise, kwise = _read_archive(path)
    else:
        frame = _read_table(path, fmt)
        frame = _normalise_lmarena(frame)
        try:
            pairwise, kwise = split_votes(frame)
        except LayoutError as error:
            raise VoteFileError(f"{path}: {error}") from None
        pairwise = text_names(pairwise)
        if len(kwise):
            kwise = _checked_rankings(path, kwise)
    if len(pairwise) == 0 and len(kwise) == 0:
        raise VoteFileError(f"{path}: no pairwise votes (and no K-wise votes) in the file")
    if len(pairwise):
        missing = [column for column in REQUIRED_COLUMNS if column not in pairwise.columns]
        if missing:
            raise VoteFileError(
                f"{path}: missing column(s) {missing}; found {list(pairwise.columns)[:20]}. Pairwise vote files "
                "need model_a, model_b and winner (LMArena's layout), or winner_model_a, winner_model_b and "
                "winner_tie (the Kaggle layout); rankings files need a ranking column or first, second, ... columns."
            )
        _check_names(path, pairwise)
    return pairwise, kwise


def load_rankings(path: str | Path) -> tuple[list[list[list[str]]], pd.DataFrame]:
    """K-wise votes of a file: (rankings, metadata frame with one row per ranking).

    A ranking is a list of groups of model names, best first (the VoteEvent contract); a partial
    one ends with its unranked models (leaderboard.data.rankings.Unranked)."""
    path = Path(path)
    _, kwise = load_all(path)
    rankings = frame_rankings(kwise)
    kwise = kwise.drop(columns=["ranking", "unranked"], errors="ignore")
    return rankings, kwise


def _check_names(path: Path, frame: pd.DataFrame) -> None:
    """Every pairwise row names two models (a name is any non-empty text, "NaN" and "0" included)."""
    for column in ("model_a", "model_b"):
        names = frame[column]
        if names.dtype != object and pd.api.types.is_string_dtype(names.dtype):
            bad = (names.isna() | (names == "")).to_numpy(dtype=bool)
        else:
            codes, uniques = pd.factorize(names, use_na_sentinel=True)
            bad_name = np.array([not isinstance(name, str) or name == "" for name in uniques] + [True], dtype=bool)
            bad = bad_name[codes]
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise VoteFileError(f"{path}: row {row + 1} has no {column} (an empty cell); "
                                f"{int(bad.sum())} row(s) like it. Every pairwise vote names both models.")


def _checked_rankings(path: Path, kwise: pd.DataFrame) -> pd.DataFrame:
    for row, ranking in enumerate(kwise["ranking"]):
        for group in ranking:
            for position, name in enumerate(group):
                if not isinstance(name, str):
                    if isinstance(name, (int, float)) and not isinstance(name, bool) and np.isfinite(name):
                        group[position] = str(int(name)) if float(name).is_integer() else str(name)
                    else:
                        raise VoteFileError(f"{path}: ranking {row + 1} has {name!r} where a model name belongs")
                elif not name:
                    raise VoteFileError(f"{path}: ranking {row + 1} has an empty model name")
    return kwise


# ---- our archive -----------------------------------------------------------------------------

def is_archive(path: Path) -> bool:
    first = _first_record(path)
    # the export has vote_id and models too, but names the battle question_id (LMArena's name)
    return isinstance(first, dict) and "vote_id" in first and "models" in first and "battle_id" in first


def _read_archive(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairwise, K-wise) frames of our archive, read by the archive's one reader."""
    try:
        return archive_frames(path)
    except ArchiveCorruptError as error:
        raise VoteFileError(str(error)) from None


def _first_record(path: Path):
    with open_decompressed(path) as handle:
        for line in handle:
            if line.strip():
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    return None
    return None


# ---- LMArena-style tables ----------------------------------------------------------------------

def _read_table(path: Path, fmt: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            return read_csv_exact(path)
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "jsonl":
            with open_decompressed(path) as handle:
                return read_json_lines_exact(handle)
        with open_decompressed(path) as handle:
            data = json.load(handle)
        if isinstance(data, dict) and "models" not in data and all(isinstance(v, (list, dict)) for v in data.values()):
            return pd.DataFrame(data)  # column layout: {"model_a": [...], ...} or {"model_a": {"0": ...}}
        if isinstance(data, list):
            return pd.DataFrame.from_records(data)
        raise VoteFileError(f"{path}: expected a JSON list of vote records, got a JSON {type(data).__name__}")
    except VoteFileError:
        raise
    except pd.errors.EmptyDataError:
        raise VoteFileError(f"{path}: the file is empty; it holds no votes") from None
    except (ValueError, OSError) as error:
        raise VoteFileError(f"{path}: cannot read it as {fmt} ({error})") from None


def _normalise_lmarena(frame: pd.DataFrame) -> pd.DataFrame:
    """Flatten LMArena's ``conv_metadata`` into the style columns (keeping it, parsed); leave everything else as is."""
    if "conv_metadata" in frame.columns:
        frame = frame.copy()
        metadata = frame["conv_metadata"].map(_as_dict)
        for key, column in _CONV_METADATA_COLUMNS.items():
            if column not in frame.columns:
                frame[column] = metadata.map(lambda meta, key=key: _count(meta.get(key)))
        frame["conv_metadata"] = metadata  # kept as read (parsed), so a converted file carries it unchanged
    return frame


def _as_dict(value) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:  # CSV files hold the dict as JSON text
            parsed = json.loads(value)
            return parsed if isinstance(parsed, dict) else {}
        except json.JSONDecodeError:
            return {}
    return {}


def _count(value) -> float:
    """A style count: a number, or a dict of counts (h1..h6, ordered/unordered, ...) summed."""
    if isinstance(value, dict):
        return float(sum(v for v in value.values() if isinstance(v, (int, float)) and v is not None and np.isfinite(v)))
    if isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value):
        return float(value)
    return np.nan
