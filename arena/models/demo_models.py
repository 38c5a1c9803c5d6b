"""The demo models: pure functions from a conversation to an answer, each in its own style.

Terse, structured markdown, friendly with bold, numbered steps, and a weak one that mostly echoes;
built from the words of the prompt and the turns before it, so different prompts get different
answers and votes between them mean something. The same conversation gets the same answer, up
to its closing sentence: a conversation's ``variant`` (0 the first time it is asked; the demo
server counts asks made at a temperature above 0, as a sampled model's regeneration would be)
adds one plain closing sentence chosen by that number, so a regenerated answer visibly differs
while keeping its model's style (no markdown, no name). :mod:`arena.models.demo_server` serves them
over the OpenAI chat-completions protocol.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from arena.models.config import ModelSpec

# ---------------------------------------------------------------------------------------
# The demo models: pure functions from a conversation to an answer.


@dataclass(frozen=True)
class Conversation:
    """What a demo model looks at: the latest user message, its topic words, and the history."""

    messages: tuple[tuple[str, str], ...]  # (role, text) in order
    prompt: str  # the latest user message
    topic_words: tuple[str, ...]  # distinctive words of the prompt, in order of appearance
    earlier_topic_words: tuple[str, ...]  # distinctive words of the previous user message
    user_turn: int  # 1 for the first user message
    digest: int  # stable hash of the whole conversation, to choose between phrasings
    variant: int = 0  # how many times this conversation was asked before (0: the canonical answer)

    def pick(self, options: Sequence[str], salt: str) -> str:
        """One of ``options``, chosen by the conversation (stable across runs and processes)."""
        mixed = hashlib.sha256(f"{salt}:{self.digest}".encode()).digest()
        return options[int.from_bytes(mixed[:4], "big") % len(options)]


AnswerFunction = Callable[[Conversation], str]

_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its itself just me more most my no nor not now
    of off on once only or other our out over own same she should so some such than that the their them
    then there these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours please tell explain give make know want need like
    get using use write show best way ways""".split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'\-]*")


def topic_words(text: str, limit: int = 4) -> tuple[str, ...]:
    """The first ``limit`` distinct, non-stopword words of ``text``, lower-cased."""
    seen: list[str] = []
    for match in _WORD.finditer(text):
        word = match.group().lower().strip("'-")
        if len(word) > 2 and word not in _STOPWORDS and word not in seen:
            seen.append(word)
            if len(seen) == limit:
                break
    return tuple(seen)


def make_conversation(messages: Sequence[tuple[str, str]], variant: int = 0) -> Conversation:
    user_texts = [text for role, text in messages if role == "user"]
    prompt = user_texts[-1] if user_texts else (messages[-1][1] if messages else "")
    earlier = user_texts[-2] if len(user_texts) > 1 else ""
    encoded = json.dumps([list(message) for message in messages], ensure_ascii=False).encode()
    return Conversation(
        messages=tuple(messages),
        prompt=prompt,
        topic_words=topic_words(prompt),
        earlier_topic_words=topic_words(earlier),
        user_turn=max(1, len(user_texts)),
        digest=int.from_bytes(hashlib.sha256(encoded).digest()[:8], "big"),
        variant=variant,
    )


# Plain sentences (no markdown, no model or maker named), so a varied answer keeps its style
# features and raises no identity flag.
_CLOSINGS = (
    "Hope that helps.",
    "That is the gist of it.",
    "Happy to go into any part of this in more depth.",
    "Worth trying it out on a small example first.",
    "There are other ways to look at it, but this is a good start.",
)


def closing(conversation: Conversation) -> str:
    """The closing sentence of this ``variant`` of the answer: none for the canonical answer
    (variant 0), else one of a few, in turn, starting at a place chosen by the conversation."""
    if conversation.variant <= 0:
        return ""
    start = conversation.digest % len(_CLOSINGS)
    return _CLOSINGS[(start + conversation.variant - 1) % len(_CLOSINGS)]


def _varied(answer: AnswerFunction) -> AnswerFunction:
    """``answer`` with the variant's closing sentence: on the last line, or (after a list or
    headers) as a paragraph of its own."""
    def varied(conversation: Conversation) -> str:
        text, extra = answer(conversation), closing(conversation)
        if not extra:
            return text
        return text + ("\n\n" if "\n" in text else " ") + extra

    varied.__name__ = varied.__qualname__ = answer.__name__
    varied.__doc__ = answer.__doc__
    return varied


def _words(conversation: Conversation, fallback: Sequence[str] = ("this", "the details", "the context")) -> list[str]:
    words = list(conversation.topic_words)
    return words + list(fallback[len(words):])


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def answer_terse(conversation: Conversation) -> str:
    first, second = _words(conversation)[:2]
    opening = conversation.pick(
        [
            "Short answer: {a} comes down to {b}.",
            "{A}: focus on {b} first.",
            "It depends on {b}; start with {a}.",
            "Yes. {A}, then {b}.",
            "Mostly {b}. The rest of {a} follows.",
        ],
        "terse",
    )
    text = opening.format(a=first, A=first.capitalize(), b=second)
    if conversation.earlier_topic_words:
        text += f" Same as before with {conversation.earlier_topic_words[0]}."
    return text


def answer_verbose(conversation: Conversation) -> str:
    words = _words(conversation)
    first = words[0]
    lines = [f"## Overview: {first}", "",
             f"You asked: \"{_quote(conversation.prompt)}\". Here is a structured answer.", ""]
    if conversation.earlier_topic_words:
        earlier = ", ".join(conversation.earlier_topic_words)
        lines += ["### Context", "", f"This builds on your earlier question about {earlier}.", ""]
    lines += ["### Key points", ""]
    point_styles = [
        "**{w}**: the central idea; get this right and the rest is easier.",
        "**{w}**: worth checking against a concrete example.",
        "**{w}**: often overlooked, but it changes the outcome.",
        "**{w}**: compare a few options before committing.",
    ]
    for index, word in enumerate(words):
        lines.append("- " + point_styles[index % len(point_styles)].format(w=word))
    lines += [
        "",
        "### Details",
        "",
        conversation.pick(
            [
                "Start small, measure, and only then generalise.",
                "Write the simplest version first and keep notes on what surprised you.",
                "Most difficulties come from unstated assumptions, so list them explicitly.",
            ],
            "verbose-details",
        )
        + f" In the case of {first}, that means looking at {words[-1]} early.",
        "",
        "### Summary",
        "",
        f"In short: {', '.join(words[:-1])} and {words[-1]} together answer the question.",
    ]
    return "\n".join(lines)


def answer_friendly(conversation: Conversation) -> str:
    first, second = _words(conversation)[:2]
    greeting = conversation.pick(
        ["Great question!", "Oh, I love this one!", "Happy to help!", "What a fun thing to ask!"], "friendly"
    )
    text = (
        f"{greeting} When it comes to **{first}**, the thing that matters most is **{second}**. "
        f"Take it one step at a time and you'll be fine. "
    )
    if conversation.earlier_topic_words:
        text += f"And nice follow-up to your question about **{conversation.earlier_topic_words[0]}**! "
    text += "Let me know if you'd like more detail, I'm always glad to chat."
    return text


def answer_steps(conversation: Conversation) -> str:
    words = _words(conversation)
    verbs = ["Define", "Check", "Compare", "Test", "Review"]
    offset = conversation.digest % len(verbs)
    lines = [f"Here is how to approach {words[0]}:", ""]
    for index, word in enumerate(words):
        lines.append(f"{index + 1}. {verbs[(offset + index) % len(verbs)]} {word}.")
    lines.append(f"{len(words) + 1}. Repeat until the result is clear.")
    if conversation.user_turn > 1:
        lines += ["", f"(Step plan for follow-up number {conversation.user_turn - 1}.)"]
    return "\n".join(lines)


def answer_echo(conversation: Conversation) -> str:
    hedge = conversation.pick(["I am not sure.", "Hard to say.", "Maybe?", "I don't know much about that."], "echo")
    return f"You said: {_quote(conversation.prompt, 120)} {hedge}"


DEMO_MODELS: Mapping[str, AnswerFunction] = {
    name: _varied(answer)
    for name, answer in {
        "demo-terse": answer_terse,
        "demo-verbose": answer_verbose,
        "demo-friendly": answer_friendly,
        "demo-steps": answer_steps,
        "demo-echo": answer_echo,
    }.items()
}

DEMO_DESCRIPTIONS: Mapping[str, str] = {
    "demo-terse": "Demo model: one or two short sentences.",
    "demo-verbose": "Demo model: structured markdown with headers and bullet lists.",
    "demo-friendly": "Demo model: warm tone with bold highlights.",
    "demo-steps": "Demo model: numbered step-by-step plans.",
    "demo-echo": "Demo model: deliberately weak; mostly repeats the prompt.",
}


# Plausible made-up provenance, so the leaderboard's organisation and licence columns show something.
DEMO_PROVENANCE: Mapping[str, tuple[str, str]] = {
    "demo-terse": ("Arena demo lab", "Apache-2.0"),
    "demo-verbose": ("Arena demo lab", "Apache-2.0"),
    "demo-friendly": ("Friendly Models Co. (demo)", "CC-BY-4.0"),
    "demo-steps": ("Stepwise Research (demo)", "MIT"),
    "demo-echo": ("Arena demo lab", "proprietary"),
}


def demo_model_specs(base_url: str) -> list[ModelSpec]:
    """ModelSpecs for the demo models served at ``base_url`` (ending in /v1)."""
    return [
        ModelSpec(
            name=name,
            provider="openai",
            base_url=base_url,
            model_id=name,
            max_tokens=512,
            timeout=30.0,
            description=DEMO_DESCRIPTIONS.get(name, ""),
            organisation=DEMO_PROVENANCE.get(name, ("", ""))[0],
            license=DEMO_PROVENANCE.get(name, ("", ""))[1],
        )
        for name in DEMO_MODELS
    ]
