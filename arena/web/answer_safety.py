"""Answers as the page renders them: nothing in them can make the browser fetch anything.

A model's answer is markdown the page renders. An image in it (``![x](https://host/p.png)``,
``<img src=...>``) would make the voter's browser call the model's host before the vote (address,
User-Agent, timing), and would let a model mark its answers so that a voter who knows the mark
recognises them. So, outside code (fenced blocks and inline code, shown literally anyway):

- markdown images become the words "image not shown" and their alt text;
- links and autolinks become their text followed by the address as inline code (readable, not
  clickable), and reference definitions lose their meaning;
- bare addresses become inline code (so the renderer does not turn them into links);
- every HTML tag is escaped (``<`` becomes ``&lt;``), so it shows as text.

The page's Content-Security-Policy (``img-src 'self' data:``, arena.web.security) stops any fetch
that slipped past this; this module makes sure nothing is even attempted, and keeps the answer
readable. The stored answer (and the vote event's style features) keeps the original text.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\s*(?:\([^)\n]*\)|\[[^\]\n]*\])")
_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^)\n]*\)))?\s*\)")
_REFERENCE = re.compile(r"^( {0,3})\[([^\]\n]+)\]:", re.MULTILINE)
_AUTOLINK = re.compile(r"<((?:[a-zA-Z][a-zA-Z0-9+.\-]{1,31}:|www\.)[^\s<>]*)>")
_BARE_URL = re.compile(r"(?<![\w`/])((?:https?|ftp)://[^\s<>`\"']+[^\s<>`\"'.,;:!?)]|www\.[^\s<>`\"']+\.[^\s<>`\"'.,;:!?)]+)")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def inert_markdown(text: str) -> str:
    """``text`` with every image, link and HTML tag outside code made harmless (see the module)."""
    pieces = []
    for segment, is_code in _segments(text or ""):
        pieces.append(segment if is_code else _inert_prose(segment))
    return "".join(pieces)


def _segments(text: str):
    """(piece, is_code) in order: fenced blocks and inline code spans are code."""
    lines = text.splitlines(keepends=True)
    prose: list[str] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            prose.append(lines[index])
            index += 1
            continue
        yield from _inline_segments("".join(prose))
        prose = []
        marker = opening.group(1)
        block = [lines[index]]
        index += 1
        while index < len(lines):
            block.append(lines[index])
            closing = _FENCE.match(lines[index])
            index += 1
            if closing and closing.group(1)[0] == marker[0] and len(closing.group(1)) >= len(marker) \
                    and not lines[index - 1].strip()[len(closing.group(1)):].strip():
                break
        yield "".join(block), True
    yield from _inline_segments("".join(prose))


def _inline_segments(text: str):
    position = 0
    for match in _INLINE_CODE.finditer(text):
        if match.start() > position:
            yield text[position:match.start()], False
        yield match.group(0), True
        position = match.end()
    if position < len(text):
        yield text[position:], False


def _code(address: str) -> str:
    address = address.replace("`", "")
    return f"`{address}`" if address else ""


def _inert_prose(text: str) -> str:
    text = _IMAGE.sub(lambda m: f"*(image not shown{': ' + m.group(1).strip() if m.group(1).strip() else ''})*", text)
    text = _LINK.sub(lambda m: (m.group(1) + (f" ({_code(m.group(2))})" if m.group(2) else "")), text)
    text = _REFERENCE.sub(lambda m: f"{m.group(1)}\\[{m.group(2)}\\]:", text)
    text = _AUTOLINK.sub(lambda m: _code(m.group(1)), text)
    text = _BARE_URL.sub(lambda m: _code(m.group(1)), text)
    return _TAG_START.sub("&lt;", text)
