"""Measures of text that an answer's style (``style``) and a prompt's profile (``prompt_profile``)
both take: the token count, and the one rule for "this text has code".

Code: a fenced block (```), or a programming keyword written as code writes it (case-sensitive:
``Return`` opening an English sentence is not code; ``#include`` counts at the start of a line).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

CODE_FENCE = "```"
# A fenced block, fences included (non-greedy: two blocks are two matches, the prose between them kept).
CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
CODE_KEYWORD = re.compile(r"\b(?:def|class|function|import|return|lambda|SELECT)\b|(?<!\w)#include\b")


def count_tokens(text: str) -> int:
    """Word pieces and punctuation marks: a tokenizer-free proxy for length in tokens."""
    return len(_TOKEN.findall(text))


def has_code(text: str) -> bool:
    """Does ``text`` hold code: a fenced block or a programming keyword (see the module docstring)?"""
    return CODE_FENCE in text or CODE_KEYWORD.search(text) is not None


def without_code_blocks(text: str) -> str:
    """``text`` with its fenced code blocks taken out (their '#' comments and '*' operators are not markdown)."""
    return CODE_BLOCK.sub("", text)
