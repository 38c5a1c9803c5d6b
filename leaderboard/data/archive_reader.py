"""Reading the vote archive (``votes.jsonl``, JSON lines of VoteEvent): the one reader.

The rules of the file are here and nowhere else:

- each line is one VoteEvent as ``VoteArchive`` wrote it; blank lines are skipped;
- a last line without its newline is a write cut short by a crash (a torn tail), not a vote: it
  ends the read, and the caller decides what else to do (the writer cuts it off, the fit CLI
  warns, a reader of a live file skips it);
- any other line that is not a valid VoteEvent is corruption: :class:`ArchiveCorruptError`
  naming the file and the line;
- a vote id seen before is skipped (two writers that overlapped, or a copy made by hand).

Two forms of one read:

- :func:`archive_events` yields the votes one by one (``VoteArchive`` opening: the worker
  rebuilding its counts, resuming from a byte offset);
- :func:`archive_frames` gives the fitters' frames (pairwise, K-wise). When the file allows, it
  reads them with pyarrow's multithreaded JSON reader and the schema derived from VoteEvent
  (200,000 events: 0.6 s, against 2.8 s building them from :func:`archive_events`, on the
  loaded 2-core project machine). That path checks types, not VoteEvent's cross-field rules
  (an unknown outcome string is caught when the frame is aggregated); whatever it cannot read
  goes through :func:`archive_events`, which names the problem.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.json as pa_json
from pydantic import ValidationError

from leaderboard.data.arrow_schema import arrow_schema
from leaderboard.data.events import STYLE_COLUMNS, StyleFeatures, VoteEvent

log = logging.getLogger(__name__)

# (byte offset where the torn line starts, its line number, its length in bytes)
TornTailHandler = Callable[[int, int, int], None]

_DECOMPRESSORS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
# suffixes read through a decompressor (loading.file_format looks through the same ones)
COMPRESSION_SUFFIXES = tuple(_DECOMPRESSORS)
# VoteEvent style field -> the frame's column stem (tokens_a, lists_b, ...), in style control's order
_STYLE_FIELDS = tuple(zip(StyleFeatures.model_fields, STYLE_COLUMNS))
_METADATA = ("vote_id", "battle_id", "mode", "categories", "turns", "selection_probability", "voter_id",
             "served_at", "voted_at", "language")


class ArchiveCorruptError(ValueError):
    """A complete line of the archive is not a valid vote (not something a crash can produce)."""


def open_decompressed(path: Path):
    """``path`` opened for reading bytes, decompressed if its suffix says so (.gz, .bz2, .xz)."""
    return _DECOMPRESSORS.get(Path(path).suffix.lower(), open)(path, "rb")


def _count_lines(reader, end: int, chunk: int = 1 << 20) -> int:
    """Newlines in the first ``end`` bytes of ``reader``, which is left at ``end``."""
    reader.seek(0)
    count = 0
    while reader.tell() < end:
        count += reader.read(min(chunk, end - reader.tell())).count(b"\n")
    return count


def archive_events(path: Path, *, start: int = 0, seen: set[str] | None = None,
                   on_torn_tail: TornTailHandler | None = None) -> Iterator[VoteEvent]:
    """Every vote of the archive at ``path``, in file order, from byte ``start`` (a line boundary).

    Ids in ``seen`` count as already read, and each yielded id is added to it. A torn tail ends
    the read after calling ``on_torn_tail`` (if given)."""
    path = Path(path)
    seen = set() if seen is None else seen
    offset = start

    def line_number(counted_from_start: int) -> int:
        # only for messages: counting the lines before ``start`` re-reads that part of the file
        if not start:
            return counted_from_start
        with open_decompressed(path) as again:
            return counted_from_start + _count_lines(again, start)

    with open_decompressed(path) as reader:
        reader.seek(start)
        for counted, line in enumerate(reader, start=1):
            if not line.endswith(b"\n"):  # only the last line can lack it
                if on_torn_tail is not None:
                    on_torn_tail(offset, line_number(counted), len(line))
                return
            offset += len(line)
            if not line.strip():
                continue
            try:
                event = VoteEvent.model_validate_json(line)
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "line"
                raise ArchiveCorruptError(
                    f"{path}, line {line_number(counted)}: not a valid vote ({where}: {first['msg']}); "
                    "the file was edited or damaged: restore it from a backup or remove that line"
                ) from None
            if event.vote_id in seen:
                continue
            seen.add(event.vote_id)
            yield event


def archive_frames(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pairwise frame, K-wise frame) of the archive at ``path`` (see loading's module docstring
    for the columns; the K-wise frame also has ``models``, ``ranking`` and ``style``)."""
    path = Path(path)
    if path.suffix.lower() not in _DECOMPRESSORS:
        try:
            return _columnar_frames(path)
        except Exception as error:  # noqa: BLE001 - any surprise: the careful reader explains it
            log.debug("%s: columnar archive read failed (%s); reading line by line", path, error)

    def warn(offset: int, line_number: int, length: int) -> None:
        log.warning("%s: skipping a torn last line %d (an interrupted write)", path, line_number)

    return _frames_from_events(archive_events(path, on_torn_tail=warn))


def _frames_from_events(events: Iterable[VoteEvent]) -> tuple[pd.DataFrame, pd.DataFrame]:
    pairwise, kwise = [], []
    for event in events:
        common = {name: getattr(event, name) for name in _METADATA}
        common["categories"] = list(event.categories)
        if event.is_ranking:
            kwise.append({**common, "models": list(event.models), "ranking": event.ranking,
                          "unranked": list(event.unranked),
                          "style": [features.model_dump() for features in event.style]})
            continue
        row = {"model_a": event.models[0], "model_b": event.models[1], "winner": event.outcome, **common}
        for side, features in zip(("a", "b"), event.style):
            for field, column in _STYLE_FIELDS:
                row[f"{column}_{side}"] = getattr(features, field)
        pairwise.append(row)
    return pd.DataFrame(pairwise), pd.DataFrame(kwise)


def _columnar_frames(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = pa_json.read_json(path, parse_options=pa_json.ParseOptions(
        explicit_schema=arrow_schema(VoteEvent), unexpected_field_behavior="error"))
    if table.num_rows == 0 or table.column("vote_id").null_count or table.column("models").null_count:
        raise ValueError("records without vote_id or models")
    kwise_mask = pc.is_valid(table.column("ranking"))  # K-wise votes, named ones of K > 2 models included
    pairwise = table.filter(pc.invert(kwise_mask))
    kwise = table.filter(kwise_mask)
    if pairwise.num_rows and (pc.min(pc.list_value_length(pairwise.column("models"))).as_py() != 2
                              or pc.max(pc.list_value_length(pairwise.column("models"))).as_py() != 2):
        raise ValueError("a pairwise vote without exactly two models")
    models = pairwise.column("models")
    columns = {"model_a": pc.list_element(models, 0), "model_b": pc.list_element(models, 1),
               "winner": pairwise.column("outcome")}
    columns.update({name: pairwise.column(name) for name in _METADATA if name != "categories"})
    style = pairwise.column("style")
    if pairwise.num_rows and style.null_count == 0 and pc.min(pc.list_value_length(style)).as_py() == 2 \
            and pc.max(pc.list_value_length(style)).as_py() == 2:
        for position, side in ((0, "a"), (1, "b")):
            answer = pc.list_element(style, position)
            for field, column in _STYLE_FIELDS:
                columns[f"{column}_{side}"] = pc.struct_field(answer, field)
    frame = pd.DataFrame({name: values.to_pandas() for name, values in columns.items()})
    frame.insert(3, "categories", [list(c or []) for c in pairwise.column("categories").to_pylist()])
    # optional text: None where absent, as the line-by-line reader gives (not pandas' NaN)
    frame["language"] = pd.Series(pairwise.column("language").to_pylist(), dtype=object)
    frame["turns"] = frame["turns"].fillna(1).astype(np.int64)
    frame = frame.drop_duplicates("vote_id", keep="first").reset_index(drop=True)

    kwise_frame = pd.DataFrame()
    if kwise.num_rows:
        kwise_columns = {name: kwise.column(name).to_pylist()
                         for name in _METADATA + ("models", "ranking", "unranked", "style")}
        for name in ("categories", "unranked"):
            kwise_columns[name] = [list(c or []) for c in kwise_columns[name]]
        kwise_frame = pd.DataFrame(kwise_columns).drop_duplicates("vote_id", keep="first").reset_index(drop=True)
    return frame, kwise_frame
