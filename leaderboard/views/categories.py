"""Which leaderboard categories a vote belongs to: one rule, used by the worker and by ``fit --live``.

A vote's categories come only from fields every vote event (and the archive) carries, so the
same rule applied to a downloaded file gives the same views as the live board:

- ``overall``: every vote;
- the prompt's language, ``language:<ISO 639-1 code>`` (``VoteEvent.language``, detected at vote
  time by arena.battles.prompt_profile; votes without one are in no language view);
- ``coding``: tagged ``code`` (arena.battles.style.prompt_categories) or ``coding``;
- ``long_prompt``: tagged ``long_prompt`` (more than 500 prompt tokens);
- ``multi_turn``: more than one turn, or tagged ``multi_turn``;
- ``hard_prompts``: tagged ``hard_prompt`` (the rule is in arena.battles.prompt_profile's docstring);
- every other tag, under its own name (e.g. ``math``).

A category is published only once it has at least ``min_category_votes`` rated votes
(``--min-category-votes`` / ``ARENA_MIN_CATEGORY_VOTES``), so a view is never a handful of
votes shown as a ranking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from leaderboard.views.published import OVERALL, CategoryInfo

LANGUAGE_PREFIX = "language:"
CODING, LONG_PROMPT, MULTI_TURN, HARD_PROMPTS = "coding", "long_prompt", "multi_turn", "hard_prompts"
DEFAULT_MIN_CATEGORY_VOTES = 50

# derived category -> the event tags that put a vote in it (a tag folded in here is no view of its own)
_DERIVED_TAGS = {CODING: ("code", "coding"), LONG_PROMPT: ("long_prompt",), MULTI_TURN: ("multi_turn",),
                 HARD_PROMPTS: ("hard_prompt", "hard_prompts")}
_FOLDED_TAGS = {tag for tags in _DERIVED_TAGS.values() for tag in tags} | {OVERALL}
_DERIVED_LABELS = {CODING: "Coding", LONG_PROMPT: "Long prompt", MULTI_TURN: "Multi-turn", HARD_PROMPTS: "Hard prompts"}
# the languages people are likeliest to write in; any other shows its code
_LANGUAGE_NAMES = {
    "ar": "Arabic", "bn": "Bengali", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}


def vote_categories(tags: Iterable[str], turns: int, language: str | None) -> tuple[str, ...]:
    """The categories (other than ``overall``) of a vote with these category ``tags``, number of
    ``turns`` and prompt ``language`` (see the module docstring). Sorted, no repeats."""
    tags = {str(tag) for tag in (tags if tags is not None else ())}
    names = {name for name, derived_from in _DERIVED_TAGS.items() if tags.intersection(derived_from)}
    if turns is not None and int(turns) > 1:
        names.add(MULTI_TURN)
    if isinstance(language, str) and language:
        names.add(LANGUAGE_PREFIX + language)
    names.update(tag for tag in tags - _FOLDED_TAGS if tag and not tag.startswith(LANGUAGE_PREFIX))
    return tuple(sorted(names))


def category_kind(name: str) -> str:
    if name == OVERALL:
        return "overall"
    if name.startswith(LANGUAGE_PREFIX):
        return "language"
    return "derived" if name in _DERIVED_TAGS else "tag"


def category_label(name: str) -> str:
    """What a person reads: 'Overall', 'English', 'Multi-turn', 'Math' ..."""
    if name == OVERALL:
        return "Overall"
    if name.startswith(LANGUAGE_PREFIX):
        code = name[len(LANGUAGE_PREFIX):]
        return _LANGUAGE_NAMES.get(code, f"Language {code}")
    if name in _DERIVED_LABELS:
        return _DERIVED_LABELS[name]
    return name.replace("_", " ").strip().capitalize() or name


def published_categories(votes: Mapping[str, int], min_category_votes: int) -> list[CategoryInfo]:
    """The categories to publish: ``overall`` first (always), then every category with at least
    ``min_category_votes`` rated votes, most votes first (ties by name). ``votes``: name -> rated votes."""
    overall = CategoryInfo(name=OVERALL, label=category_label(OVERALL), kind="overall",
                           votes=int(votes.get(OVERALL, 0)))
    rest = sorted(((name, count) for name, count in votes.items() if name != OVERALL and count >= min_category_votes),
                  key=lambda item: (-item[1], item[0]))
    return [overall] + [CategoryInfo(name=name, label=category_label(name), kind=category_kind(name), votes=int(count))
                        for name, count in rest]
