"""Category subsets: keep the votes matching COLUMN=VALUE style conditions (--where)."""

from __future__ import annotations

import operator
import re

import numpy as np
import pandas as pd

_CONDITION = re.compile(r"^\s*([^=!<>]+?)\s*(==|=|!=|>=|<=|>|<)\s*(.*?)\s*$")
_OPERATORS = {"=": operator.eq, "==": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
              ">": operator.gt, "<": operator.lt}


# The category column has one name, ``categories`` (leaderboard.data.layouts); the older export's name
# still filters, and on an LMArena file (its dict-valued ``category_tag``) each name finds the other.
_ALIASES = {"category_tag": "categories", "categories": "category_tag"}


class FilterError(ValueError):
    """A --where condition that does not fit the votes."""


def condition_columns(conditions: list[str]) -> list[str]:
    """The column each readable condition names (unreadable ones are filter_votes' to report)."""
    return [match.group(1) for match in map(_CONDITION.match, conditions) if match]


def missing_columns(df: pd.DataFrame, conditions: list[str]) -> list[str]:
    """The columns ``conditions`` name that ``df`` does not have (under either category name)."""
    return [column for column in condition_columns(conditions)
            if column not in df.columns and _ALIASES.get(column) not in df.columns]


def filter_votes(df: pd.DataFrame, conditions: list[str]) -> pd.DataFrame:
    """Rows matching every condition ``COLUMN<op>VALUE``, op in = != > >= < <=.

    A list-valued column (``categories``) matches ``=`` when the value is one of its entries
    (``categories=coding``); a dict-valued column (LMArena's ``category_tag``, nested flags) when
    the value names a flag that is true, by key or dotted path (``category_tag=math`` or
    ``category_tag=math_v0.1.math``); a numeric column compares numbers
    (``turns>1``, ``tokens_a>=1000``); anything else compares text (``language=German``).
    """
    mask = np.ones(len(df), dtype=bool)
    for condition in conditions:
        match = _CONDITION.match(condition)
        if not match:
            raise FilterError(f"cannot read condition {condition!r}; write COLUMN=VALUE (or !=, >, >=, <, <=)")
        column, op, value = match.groups()
        column = column if column in df.columns else _ALIASES.get(column, column)
        if column not in df.columns:
            raise FilterError(f"condition {condition!r}: no column {column!r}; columns are {list(df.columns)}")
        mask &= _matches(df[column], op, value, condition)
    return df[mask]


def _matches(series: pd.Series, op: str, value: str, condition: str) -> np.ndarray:
    compare = _OPERATORS[op]
    sample = series.dropna()
    first = sample.iloc[0] if len(sample) else None
    if isinstance(first, dict):  # LMArena's category_tag: nested dicts of flags
        if op not in ("=", "==", "!="):
            raise FilterError(f"condition {condition!r}: dict column {series.name!r} supports only = and !=")
        inside = series.map(lambda tags: isinstance(tags, dict) and value in _true_flags(tags)).to_numpy(dtype=bool)
        return ~inside if op == "!=" else inside
    if isinstance(first, (list, tuple, set, np.ndarray)):
        if op not in ("=", "==", "!="):
            raise FilterError(f"condition {condition!r}: list column {series.name!r} supports only = and !=")
        inside = series.map(
            lambda entries: isinstance(entries, (list, tuple, set, np.ndarray)) and value in list(entries))
        inside = inside.to_numpy(dtype=bool)
        return ~inside if op == "!=" else inside
    if pd.api.types.is_bool_dtype(series):
        lowered = value.lower()
        if lowered not in ("true", "false", "1", "0"):
            raise FilterError(f"condition {condition!r}: column {series.name!r} is true/false")
        return compare(series, lowered in ("true", "1")).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        try:
            number = float(value)
        except ValueError:
            raise FilterError(f"condition {condition!r}: column {series.name!r} is numeric, "
                              f"{value!r} is not a number") from None
        return compare(series, number).fillna(False).to_numpy(dtype=bool)
    if op not in ("=", "==", "!="):
        raise FilterError(f"condition {condition!r}: column {series.name!r} holds text; use = or !=")
    return compare(series.astype(str), value).to_numpy(dtype=bool)


def _true_flags(tags: dict, prefix: str = "") -> set[str]:
    """Names (leaf key and dotted path) of the flags set to True in a nested dict."""
    names: set[str] = set()
    for key, value in tags.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            names |= _true_flags(value, path + ".")
        elif value is True or (isinstance(value, np.bool_) and bool(value)):
            names |= {str(key), path}
    return names
