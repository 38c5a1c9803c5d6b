"""Named (non-anonymous) votes: the voter saw the model names before voting.

LMArena's leaderboard rates anonymous votes only, and so does ours (leaderboard.live.view_fit), so
``fit`` leaves named votes out unless asked to keep them. A vote is named when its ``mode`` is
``named`` (our archive and our export; a K-wise named vote, a ranking, included) or its
``anony`` cell is false (our export, and LMArena's public files: a bool, or ``False``/``false``/``0``
read from CSV). A file with neither column holds anonymous votes only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leaderboard.data.filters import condition_columns

# the columns that say whether a vote was anonymous; a --where on one of them chooses for itself
ANONYMITY_COLUMNS = ("anony", "mode")
_FALSE_TEXT = frozenset({"false", "0", "no"})


def named_mask(frame: pd.DataFrame) -> np.ndarray:
    """True for each named (non-anonymous) row of ``frame``."""
    named = np.zeros(len(frame), dtype=bool)
    if "mode" in frame.columns:
        named |= frame["mode"].map(lambda mode: isinstance(mode, str) and mode.strip().lower() == "named") \
            .to_numpy(dtype=bool)
    if "anony" in frame.columns:
        named |= frame["anony"].map(_is_false).to_numpy(dtype=bool)
    return named


def _is_false(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return not bool(value)
    if isinstance(value, str):
        return value.strip().lower() in _FALSE_TEXT
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(np.isfinite(value)) and value == 0
    return False  # missing: anonymous, as in a file without the column


def without_named(pairwise: pd.DataFrame, kwise: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(pairwise, K-wise, how many named votes were left out): the anonymous votes of both frames."""
    left_out = 0
    kept = []
    for frame in (pairwise, kwise):
        named = named_mask(frame) if len(frame) else np.zeros(0, dtype=bool)
        left_out += int(named.sum())
        kept.append(frame[~named].reset_index(drop=True) if named.any() else frame)
    return kept[0], kept[1], left_out


def conditions_choose_anonymity(conditions: list[str]) -> bool:
    """Whether ``--where`` conditions name ``anony`` or ``mode`` (then they, not the default, decide)."""
    return any(column in ANONYMITY_COLUMNS for column in condition_columns(conditions))


def named_note(n_named: int) -> str:
    return f"{n_named} named (non-anonymous) vote(s) left out; --include-named keeps them"
