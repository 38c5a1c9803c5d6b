"""The public vote export (``/api/votes``): every vote, one row each, as JSON lines, CSV or Parquet.

Rows. A pairwise vote fills LMArena's battle columns (``question_id`` = battle id, ``model_a``,
``model_b``, ``winner``, ``judge``, ``turn``, ``anony``, ``tstamp`` = vote time, ``conv_metadata``
with LMArena's key names for our style counts; each markdown count is one total, so its dict has
the single key ``"total"``). A K-wise vote leaves ``model_a``, ``model_b``, ``winner`` and
``conv_metadata`` empty and fills ``ranking`` (groups of model names, best first: the VoteEvent
contract), ``unranked`` (the models a partial ranking left out: shown, not ranked, below every
placed group; empty when the voter ranked them all) and ``style`` (one dict per model of
``models``); a named battle of more than two models is such a row with mode ``named``. Every row
has ``mode`` (``anonymous``, ``named``, ``kwise``), ``models`` (display order), ``language`` (when
the vote event has one), ``categories`` (the raw list of tags the vote event carries: the one
category column name, which ``fit --where categories=...`` matches),
``selection_probability``, ``served_at``, ``vote_id``, ``identity_flags`` (why the live board
left a de-anonymised vote out of its ratings; empty for most votes) and ``regenerations`` (how many
times each model's answers were regenerated before the vote, one count per model of ``models``; null
when none was). ``python -m leaderboard fit`` reads every format back, K-wise rows included.

Text. Prompts and answers are in the export only when the operator releases them
(``--release-text``): then pairwise rows carry ``conversation_a`` / ``conversation_b`` (LMArena's
``{"role", "content"}`` messages) and K-wise rows ``conversations`` (one per model of ``models``);
every row then also carries ``feedback``, the voter's optional reason given with the vote (free
text, so it is released with the prompts or not at all).
The arena keeps a vote's text (:class:`VoteText`, in the stream entry's ``text`` field beside
``event``) only while release is on, so votes cast before it was turned on have none.

Voters. ``judge`` is a per-release pseudonym, never the live voter id: HMAC-SHA256 of the live id
under a release key (:func:`release_key`) that is not the live HMAC secret, so whoever holds the
live secret (and could hash every address to its live id) still cannot link an export's rows to
addresses; a new key starts a new release whose pseudonyms do not match the old ones.

Writing streams: :class:`ExportWriter` turns one page of rows at a time into bytes (a Parquet
row group per page), so a million votes are never one table in memory.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from leaderboard.data.events import VoteEvent

FORMATS = ("jsonl", "csv", "parquet")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
RELEASE_KEY_FILE = "release.key"
EXPORT_COLUMNS = (
    "question_id", "model_a", "model_b", "winner", "judge", "turn", "anony", "tstamp", "conv_metadata",
    "categories", "language", "selection_probability", "served_at", "vote_id", "mode", "ranking", "unranked", "models",
    "style", "identity_flags", "regenerations",
)
TEXT_COLUMNS = ("conversation_a", "conversation_b", "conversations", "feedback")


class VoteText(BaseModel):
    """A vote's conversation as shown: the prompts, and per model (display order) its answers, one per turn."""

    model_config = ConfigDict(extra="forbid")

    prompts: list[str]
    answers: list[list[str]]

    def conversation(self, position: int) -> list[dict]:
        """The conversation of the model at ``position`` as LMArena's role/content messages."""
        messages = []
        for turn, prompt in enumerate(self.prompts):
            messages.append({"role": "user", "content": prompt})
            answers = self.answers[position] if position < len(self.answers) else []
            if turn < len(answers):
                messages.append({"role": "assistant", "content": answers[turn]})
        return messages


# ---- pseudonyms ---------------------------------------------------------------------------------

def release_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The release key: ``configured`` (ARENA_RELEASE_KEY) if given, else ``<data_dir>/release.key``,
    created once with 32 random bytes (hex) and mode 0600. Several web processes on different
    machines must be given the same key (the variable) to export the same pseudonyms."""
    if configured:
        if len(configured) < 16:
            raise ValueError("the release key (ARENA_RELEASE_KEY) must be at least 16 characters")
        return configured.encode()
    path = Path(data_dir) / RELEASE_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: read theirs
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    key = path.read_text().strip()
    if len(key) < 16:
        raise ValueError(f"{path}: the release key is shorter than 16 characters; delete the file to make a new one")
    return key.encode()


class Pseudonyms:
    """Live voter id -> the release's pseudonym (``r_`` + 20 hex digits of HMAC-SHA256)."""

    def __init__(self, key: bytes):
        self._key = key
        self._known: dict[str, str] = {}

    def of(self, voter_id: str) -> str:
        known = self._known.get(voter_id)
        if known is None:
            known = "r_" + hmac.new(self._key, voter_id.encode(), hashlib.sha256).hexdigest()[:20]
            self._known[voter_id] = known
        return known

    def __repr__(self) -> str:
        return "Pseudonyms(key=***)"


# ---- rows ---------------------------------------------------------------------------------------

def export_row(event: VoteEvent, pseudonyms: Pseudonyms, text: VoteText | None = None,
               release_text: bool = False) -> dict:
    """One export row (see the module docstring); text columns only when ``release_text``."""
    kwise = event.is_ranking
    row = {
        "question_id": event.battle_id,
        "model_a": None if kwise else event.models[0],
        "model_b": None if kwise else event.models[1],
        "winner": event.outcome,
        "judge": pseudonyms.of(event.voter_id),
        "turn": event.turns,
        "anony": event.mode != "named",
        "tstamp": event.voted_at,
        "conv_metadata": None if kwise else _conv_metadata(event),
        "categories": list(event.categories),
        # the prompt's language when the vote event carries one (LMArena's column name)
        "language": getattr(event, "language", None),
        "selection_probability": event.selection_probability,
        "served_at": event.served_at,
        "vote_id": event.vote_id,
        "mode": event.mode,
        "ranking": [list(group) for group in event.ranking] if kwise else None,
        "unranked": list(event.unranked) if kwise else None,
        "models": list(event.models),
        "style": [features.model_dump() for features in event.style] if kwise else None,
        # why the live board left the vote out of its anonymous ratings (a model named itself ...), if it did
        "identity_flags": list(getattr(event, "identity_flags", None) or []),
        # per model of ``models``, the times its answers were regenerated; null when none was
        "regenerations": list(getattr(event, "regenerations", None) or []) or None,
    }
    if release_text:
        conversations = [text.conversation(k) for k in range(len(event.models))] if text is not None else None
        row["conversation_a"] = None if kwise or conversations is None else conversations[0]
        row["conversation_b"] = None if kwise or conversations is None else conversations[1]
        row["conversations"] = conversations if kwise else None
        row["feedback"] = getattr(event, "feedback", None)
    return row


def _conv_metadata(event: VoteEvent) -> dict:
    style_a, style_b = event.style
    return {
        "sum_assistant_a_tokens": style_a.tokens, "sum_assistant_b_tokens": style_b.tokens,
        "header_count_a": {"total": style_a.headers}, "header_count_b": {"total": style_b.headers},
        "list_count_a": {"total": style_a.list_items}, "list_count_b": {"total": style_b.list_items},
        "bold_count_a": {"total": style_a.bold}, "bold_count_b": {"total": style_b.bold},
        "turns": event.turns,
    }


def columns(release_text: bool) -> tuple[str, ...]:
    return EXPORT_COLUMNS + (TEXT_COLUMNS if release_text else ())


# ---- writing ------------------------------------------------------------------------------------

def arrow_schema(release_text: bool):
    """The export's Parquet schema (fixed, so every row group of a stream matches)."""
    total = pa.struct([("total", pa.int64())])
    metadata = pa.struct([("sum_assistant_a_tokens", pa.int64()), ("sum_assistant_b_tokens", pa.int64()),
                          ("header_count_a", total), ("header_count_b", total), ("list_count_a", total),
                          ("list_count_b", total), ("bold_count_a", total), ("bold_count_b", total),
                          ("turns", pa.int64())])
    style = pa.struct([("tokens", pa.int64()), ("headers", pa.int64()), ("list_items", pa.int64()),
                       ("bold", pa.int64())])
    fields = [("question_id", pa.string()), ("model_a", pa.string()), ("model_b", pa.string()),
              ("winner", pa.string()), ("judge", pa.string()), ("turn", pa.int64()), ("anony", pa.bool_()),
              ("tstamp", pa.float64()), ("conv_metadata", metadata), ("categories", pa.list_(pa.string())),
              ("language", pa.string()),
              ("selection_probability", pa.float64()), ("served_at", pa.float64()), ("vote_id", pa.string()),
              ("mode", pa.string()), ("ranking", pa.list_(pa.list_(pa.string()))),
              ("unranked", pa.list_(pa.string())),
              ("models", pa.list_(pa.string())), ("style", pa.list_(style)),
              ("identity_flags", pa.list_(pa.string())), ("regenerations", pa.list_(pa.int64()))]
    if release_text:
        message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
        fields += [("conversation_a", message), ("conversation_b", message), ("conversations", pa.list_(message)),
                   ("feedback", pa.string())]
    return pa.schema(fields)


class _Sink(io.RawIOBase):
    """A write-only file that hands its bytes out as they come (Parquet's writer needs tell())."""

    def __init__(self):
        super().__init__()
        self._chunks: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self._chunks.append(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        out, self._chunks = b"".join(self._chunks), []
        return out


class ExportWriter:
    """Rows in, bytes out, a page at a time: ``write(rows)`` then ``finish()`` (whose bytes end the file)."""

    def __init__(self, fmt: str, release_text: bool = False):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.fmt = fmt
        self.columns = columns(release_text)
        self._header_written = False
        self._parquet = None
        if fmt == "parquet":
            self._schema = arrow_schema(release_text)
            self._sink = _Sink()
            self._parquet = pq.ParquetWriter(self._sink, self._schema)

    def write(self, rows: Iterable[dict]) -> bytes:
        rows = list(rows)
        if self.fmt == "jsonl":
            return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
        if self.fmt == "csv":
            return self._csv(rows)
        if not rows:
            return b""
        self._parquet.write_table(pa.Table.from_pylist(rows, schema=self._schema))
        return self._sink.take()

    def finish(self) -> bytes:
        if self.fmt == "csv" and not self._header_written:
            return self._csv([])
        if self._parquet is not None:
            self._parquet.close()
            return self._sink.take()
        return b""

    def _csv(self, rows: list[dict]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if not self._header_written:
            writer.writerow(self.columns)
            self._header_written = True
        columns, nested, dumps = self.columns, _NESTED_COLUMNS, json.dumps
        writer.writerows([["" if (value := row.get(column)) is None
                           else (dumps(value, ensure_ascii=False) if column in nested else value)
                           for column in columns] for row in rows])
        return buffer.getvalue().encode()


# cells a CSV holds as JSON text (the loader parses them back: leaderboard.data.tables.JSON_COLUMNS)
_NESTED_COLUMNS = frozenset({"conv_metadata", "categories", "ranking", "unranked", "models", "style", "identity_flags",
                             "regenerations", *TEXT_COLUMNS})
