"""What the page shows once a battle is voted on: each side's model name with its organisation and
description (from the models file). Only ever built from a vote's receipt, so nothing here can
reach the browser before the vote."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from arena.models.config import ModelSpec


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _markdown_literal(text: str) -> str:
    """Text from a models file shown as text: markdown's active characters escaped."""
    return "".join("\\" + char if char in "\\`*_{}[]()<>#+-.!|~" else char for char in _one_line(text))


def reveal_lines(labels: Sequence[str], models: Sequence[str], spec: Callable[[str], ModelSpec]) -> str:
    """One markdown line per side: "**Model A:** `name` · organisation — description"."""
    lines = []
    for label, name in zip(labels, models):
        line = f"**Model {label}:** `{name}`"
        try:
            model = spec(name)
        except KeyError:  # a model removed from the pool since the battle began: its name is enough
            model = None
        if model is not None and model.organisation:
            line += f" · {_markdown_literal(model.organisation)}"
        if model is not None and model.description:
            line += f" — {_markdown_literal(model.description)}"
        lines.append(f"- {line}")
    return "\n".join(lines)
