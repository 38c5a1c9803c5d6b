"""Vote table layouts: what the loader recognises, and the layouts ``convert`` writes.

Read, unchanged:

- **LMArena battles** (``model_a, model_b, winner``, optional ``judge, tstamp, conv_metadata,
  language, turn, anony``): the base layout.
- **Conversation layout** (LMArena's newer releases): the battles layout plus ``conversation_a`` /
  ``conversation_b`` (lists of ``{"role", "content"}`` messages) and ``category_tag``, nested dicts
  of flags (``{"math_v0.1": {"math": true}, ...}``).
- **Kaggle layout** (LMArena's Kaggle competition): ``model_a, model_b``, the one-hot columns
  ``winner_model_a, winner_model_b, winner_tie`` instead of ``winner``, and ``prompt, response_a,
  response_b`` (JSON-encoded lists of strings, one per turn).
- **Our export** (``/api/votes``): the battles layout plus ``mode``, ``categories`` and, on K-wise
  rows, ``ranking`` (groups of model names, best first) and ``unranked`` (a partial ranking's
  models left out) with empty ``model_a, model_b, winner``.
- **Plain rankings**: a ``ranking`` column alone, or ``first, second, third, ...`` columns.

Categories have one name, ``categories``: the list of tags a vote carries (our archive's and our
export's column, and what ``fit --where categories=...`` matches). An older export's list-valued
``category_tag`` is read as ``categories``; LMArena's dict-valued ``category_tag`` is kept as it is
and also gives ``categories`` (the names of its true flags), so both names filter.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from leaderboard.data.outcomes import MODEL_A, MODEL_B, TIE, TIE_BOTHBAD
from leaderboard.data.rankings import with_unranked
from leaderboard.data.tables import PLACE_COLUMNS, plain

KAGGLE = "kaggle"
CONVERSATION = "conversation"
LAYOUTS = (KAGGLE, CONVERSATION)
KAGGLE_ONE_HOT = ("winner_model_a", "winner_model_b", "winner_tie")
KAGGLE_COLUMNS = ("id", "model_a", "model_b", "prompt", "response_a", "response_b", *KAGGLE_ONE_HOT)
CONVERSATION_COLUMNS = ("question_id", "model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b",
                        "turn", "anony", "language", "tstamp", "conv_metadata", "category_tag")


class LayoutError(ValueError):
    """A table whose layout is recognised but whose cells break it; the message names the row."""


def split_votes(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairwise rows, K-wise rows) of a table in any layout above, with ``winner`` and
    ``categories`` filled in; the K-wise frame's ``ranking`` holds lists of lists of names."""
    frame = frame.copy()
    if "winner" not in frame.columns and all(column in frame.columns for column in KAGGLE_ONE_HOT):
        frame["winner"] = kaggle_winner(frame)
    frame = _categories(frame)
    ranking = None
    if "ranking" in frame.columns:
        ranking = frame["ranking"].map(_ranking_cell)
    elif PLACE_COLUMNS[0] in frame.columns and PLACE_COLUMNS[1] in frame.columns:
        places = [column for column in PLACE_COLUMNS if column in frame.columns]
        ranking = pd.Series([[[name] for name in row if isinstance(name, str) and name] for row in
                             frame[places].itertuples(index=False, name=None)], index=frame.index, dtype=object)
        frame = frame.drop(columns=places)
    if ranking is None:
        return frame, pd.DataFrame()
    is_ranking = ranking.map(bool).to_numpy(dtype=bool)
    kwise = frame[is_ranking].copy()
    kwise["ranking"] = ranking[is_ranking]
    if "unranked" in kwise.columns:
        kwise["unranked"] = kwise["unranked"].map(_names_cell)
    pairwise = frame[~is_ranking].drop(columns=["ranking", "unranked"], errors="ignore")
    return pairwise.reset_index(drop=True), kwise.reset_index(drop=True)


def frame_rankings(kwise: pd.DataFrame) -> list:
    """The K-wise rows' rankings as the fit and rank-breaking read them: a partial ranking (a row
    whose ``unranked`` names models left out) ends with its ``Unranked`` entry (leaderboard.data.rankings)."""
    if not len(kwise):
        return []
    if "unranked" not in kwise.columns:
        return kwise["ranking"].tolist()
    return [with_unranked(ranking, unranked) for ranking, unranked in zip(kwise["ranking"], kwise["unranked"])]


def _names_cell(value) -> list:
    """An ``unranked`` cell as a list of model names (empty: nothing left out)."""
    value = _json_cell(value, "unranked", '["model-c", "model-d"]', "a list of model names")
    if not isinstance(value, list) or not all(isinstance(name, str) and name for name in value):
        raise LayoutError(f"unranked cell {value!r} is not a list of model names")
    return value


def _ranking_cell(value) -> list:
    """A ranking cell as a list of groups; empty when the row is a pairwise vote. A flat list of
    names is a strict order (each name its own group)."""
    value = _json_cell(value, "ranking", '[["model-a"], ["model-b", "model-c"]]', "a list of groups")
    if not isinstance(value, list):
        raise LayoutError(f"ranking cell {value!r} is not a list of groups of model names")
    return [list(group) if isinstance(group, list) else [group] for group in value]


def _json_cell(value, column: str, example: str, what: str):
    """A cell as a plain value: empty (None, NaN, "" or []) as [], JSON text parsed."""
    value = plain(value)
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "" or value == []:
        return []
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise LayoutError(f"{column} cell {value!r} is not JSON: write {what}, e.g. {example}") from None
    return value


def kaggle_winner(frame: pd.DataFrame) -> pd.Series:
    """``winner`` from Kaggle's one-hot columns; a row without exactly one of them set is an error."""
    hot = np.column_stack([pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
                           for column in KAGGLE_ONE_HOT])
    valid = np.all(np.isin(hot, (0.0, 1.0)), axis=1) & (hot.sum(axis=1) == 1)
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        raise LayoutError(f"row {frame.index[row]!r}: {dict(zip(KAGGLE_ONE_HOT, hot[row].tolist()))}; exactly one of "
                          f"{', '.join(KAGGLE_ONE_HOT)} must be 1 (the others 0)")
    return pd.Series(np.array([MODEL_A, MODEL_B, TIE], dtype=object)[hot.argmax(axis=1)], index=frame.index)


def _categories(frame: pd.DataFrame) -> pd.DataFrame:
    if "categories" in frame.columns:
        frame["categories"] = frame["categories"].map(_tag_list)
        return frame
    if "category_tag" not in frame.columns:
        return frame
    tags = frame["category_tag"].map(plain)
    if any(isinstance(value, dict) for value in tags):  # LMArena's flags: kept, and named in categories
        frame["category_tag"] = tags
        frame["categories"] = tags.map(lambda value: sorted(true_flags(value)) if isinstance(value, dict) else [])
    else:  # an older export of ours: the list of tags
        frame = frame.drop(columns=["category_tag"])
        frame["categories"] = tags.map(_tag_list)
    return frame


def _tag_list(value) -> list[str]:
    value = plain(value)
    if isinstance(value, list):
        return [str(tag) for tag in value]
    if isinstance(value, str) and value:
        return [value]
    return []


def true_flags(tags: dict) -> list[str]:
    """Leaf names of the flags set to true in LMArena's nested ``category_tag`` dict."""
    names = []
    for key, value in tags.items():
        if isinstance(value, dict):
            names += true_flags(value)
        elif value is True or (isinstance(value, np.bool_) and bool(value)):
            names.append(str(key))
    return names


# ---- writing --------------------------------------------------------------------------------

def conversations(row: dict) -> tuple[list[dict], list[dict]]:
    """(conversation_a, conversation_b) of a pairwise row, from the conversation layout or from
    Kaggle's prompt/response lists; empty lists when the row carries no text."""
    if row.get("conversation_a") is not None and row.get("conversation_b") is not None:
        return _messages(row["conversation_a"]), _messages(row["conversation_b"])
    prompts = _text_list(row.get("prompt"))
    sides = []
    for column in ("response_a", "response_b"):
        answers = _text_list(row.get(column))
        messages = []
        for turn, prompt in enumerate(prompts):
            messages.append({"role": "user", "content": prompt})
            if turn < len(answers):
                messages.append({"role": "assistant", "content": answers[turn]})
        sides.append(messages)
    return sides[0], sides[1]


def _messages(value) -> list[dict]:
    value = plain(value)
    if isinstance(value, str):
        value = json.loads(value)
    return [{"role": str(message.get("role")), "content": message.get("content")} for message in value or []]


def _text_list(value) -> list:
    value = plain(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        return parsed if isinstance(parsed, list) else [value]
    return list(value)


def to_layout(pairwise: pd.DataFrame, layout: str) -> pd.DataFrame:
    """Pairwise votes (a loaded frame) in the Kaggle or the conversation layout."""
    if layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    records = pairwise.to_dict(orient="records")
    texts = [conversations(row) for row in records]
    if layout == KAGGLE:
        winner = pairwise["winner"].to_numpy(dtype=object)
        ids = _column(pairwise, ("id", "question_id", "vote_id"))
        if all(value is None for value in ids):
            ids = list(range(len(pairwise)))
        return pd.DataFrame({
            "id": ids,
            "model_a": pairwise["model_a"].tolist(),
            "model_b": pairwise["model_b"].tolist(),
            "prompt": [json.dumps([m["content"] for m in a if m["role"] == "user"]) for a, _ in texts],
            "response_a": [json.dumps([m["content"] for m in a if m["role"] == "assistant"]) for a, _ in texts],
            "response_b": [json.dumps([m["content"] for m in b if m["role"] == "assistant"]) for _, b in texts],
            "winner_model_a": (winner == MODEL_A).astype(int),
            "winner_model_b": (winner == MODEL_B).astype(int),
            "winner_tie": np.isin(winner, (TIE, TIE_BOTHBAD)).astype(int),
        }, columns=list(KAGGLE_COLUMNS))
    out = pd.DataFrame({
        "question_id": _column(pairwise, ("question_id", "id", "vote_id")),
        "model_a": pairwise["model_a"].tolist(),
        "model_b": pairwise["model_b"].tolist(),
        "winner": pairwise["winner"].tolist(),
        "judge": _column(pairwise, ("judge", "voter_id")),
        "conversation_a": [a for a, _ in texts],
        "conversation_b": [b for _, b in texts],
        "turn": _column(pairwise, ("turn", "turns")),
        "anony": _column(pairwise, ("anony",)),
        "language": _column(pairwise, ("language",)),
        "tstamp": _column(pairwise, ("tstamp", "voted_at")),
        "conv_metadata": [_conv_metadata(row) for row in records],
        "category_tag": [_category_tag(row) for row in records],
    }, columns=list(CONVERSATION_COLUMNS))
    return out


def _column(frame: pd.DataFrame, names: tuple[str, ...]) -> list:
    for name in names:
        if name in frame.columns:
            return [plain(value) for value in frame[name]]
    return [None] * len(frame)


def _conv_metadata(row: dict) -> dict | None:
    """The row's own conv_metadata, else LMArena's from the style columns (header/list/bold counts as one total)."""
    if isinstance(row.get("conv_metadata"), dict) and row["conv_metadata"]:
        return row["conv_metadata"]
    if row.get("tokens_a") is None or pd.isna(row.get("tokens_a")):
        return None
    meta = {"sum_assistant_a_tokens": row["tokens_a"], "sum_assistant_b_tokens": row["tokens_b"]}
    for stem, key in (("headers", "header_count"), ("lists", "list_count"), ("bold", "bold_count")):
        for side in ("a", "b"):
            value = row.get(f"{stem}_{side}")
            meta[f"{key}_{side}"] = {"total": None if value is None or pd.isna(value) else float(value)}
    return meta


def _category_tag(row: dict):
    """LMArena's dict when the row has one; else our tags as flags ``{tag: true}`` (None without tags:
    Parquet has no empty struct)."""
    if isinstance(row.get("category_tag"), dict):
        return row["category_tag"]
    return {tag: True for tag in row.get("categories") or []} or None
