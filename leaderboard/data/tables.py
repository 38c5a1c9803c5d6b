"""Reading vote tables exactly as written: CSV, JSON lines, JSON and Parquet, names always text.

pandas guesses types: read naively, a CSV model called ``1e3`` becomes the number 1000.0, ``007``
becomes 7, one model turns into two when its name looks numeric in one column only, and ``NaN``,
``NA``, ``None`` or ``null`` become missing values. Here the columns that hold names and labels
(:data:`TEXT_COLUMNS`, and a rankings file's ``first, second, ...``) are read as strings with no
missing-value spellings at all; other columns keep pandas' usual reading (numbers, empty = missing).
JSON lines are parsed record by record with :mod:`json` (no date or number guessing), and cells a
CSV can only hold as JSON text (lists, dicts: ``ranking``, ``categories``, ``conversation_a`` ...)
are parsed back when they look like JSON. Parquet keeps its own types; list and struct cells come
back from pyarrow as numpy arrays, which :func:`plain` turns into Python lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from leaderboard.data.archive_reader import open_decompressed

# Column names whose cells are names or labels: read as text, never as numbers or missing values.
TEXT_COLUMNS = ("model_a", "model_b", "winner", "judge", "voter_id", "question_id", "battle_id", "vote_id", "id",
                "mode", "language")
# The columns of a plain rankings table, best first (``first, second, third, ...``).
PLACE_COLUMNS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
                 "eleventh", "twelfth")
# Cells that hold JSON in a CSV (lists and dicts) and are parsed back when they look like JSON.
JSON_COLUMNS = ("ranking", "unranked", "categories", "identity_flags", "regenerations", "category_tag", "models",
                "style", "conversation_a", "conversation_b", "conversations", "conv_metadata", "prompt",
                "response_a", "response_b")


def read_csv_exact(path: Path) -> pd.DataFrame:
    """A CSV with :data:`TEXT_COLUMNS` and :data:`PLACE_COLUMNS` as strings, nothing treated as missing
    in them (an empty cell is the empty string), and JSON cells parsed. pyarrow's reader: string
    columns are never null there, and it is as fast as pandas' default reading."""
    types = {column: pa.string() for column in TEXT_COLUMNS + PLACE_COLUMNS}
    with open_decompressed(path) as handle:
        table = pa_csv.read_csv(handle, convert_options=pa_csv.ConvertOptions(column_types=types,
                                                                               strings_can_be_null=False))
    return parse_json_cells(table.to_pandas())


def parse_json_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells of :data:`JSON_COLUMNS` that are JSON text of a list or dict, parsed (others unchanged).
    ``prompt``/``response_*`` (Kaggle's JSON-encoded lists) stay as written: they are text there."""
    for column in JSON_COLUMNS:
        if column in frame.columns and column not in ("prompt", "response_a", "response_b"):
            frame[column] = frame[column].map(_json_or_same)
    return frame


def _json_or_same(value):
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_json_lines_exact(handle) -> pd.DataFrame:
    """JSON lines (one object per line, blank lines skipped) as a frame, values exactly as parsed."""
    records = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"line {number} is not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number} is a JSON {type(record).__name__}, not an object")
        records.append(record)
    return pd.DataFrame.from_records(records)


def text_names(frame: pd.DataFrame) -> pd.DataFrame:
    """Name columns as strings (a JSON or Parquet number written as a name becomes its text; a
    missing name stays missing, for the loader to report). A string column is left as it is;
    otherwise each distinct value is converted once (a million votes have a few hundred names)."""
    for column in [c for c in ("model_a", "model_b", "winner", "judge", "voter_id") if c in frame.columns]:
        values = frame[column]
        if values.dtype != object and pd.api.types.is_string_dtype(values.dtype):
            continue
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        texts = np.array([_as_text(value) for value in uniques] + [None], dtype=object)
        frame[column] = texts[codes]  # code -1 (missing) takes the trailing None
    return frame


def _as_text(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"  # as JSON wrote it
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def plain(value):
    """pyarrow's list and struct cells (numpy arrays, dicts of arrays) as Python lists and dicts."""
    if isinstance(value, np.ndarray):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value
