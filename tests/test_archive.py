import logging

import pytest

from leaderboard.data.archive import (
    ArchiveBusyError,
    ArchiveCorruptError,
    ArchiveMovedError,
    VoteArchive,
    archive_path,
)
from tests.helpers import make_vote


def test_append_load_roundtrip_and_idempotence(tmp_path):
    votes = [make_vote(), make_vote("beta", "gamma", "tie"), make_vote(ranking=[["a"], ["b", "c"]])]
    with VoteArchive(archive_path(tmp_path)) as archive:
        assert [archive.append(v) for v in votes] == [True, True, True]
        assert archive.append(votes[0]) is False
        assert archive.extend([votes[1], make_vote(vote_id=votes[2].vote_id), votes[1]]) == [False, False, False]
        fresh = make_vote()
        assert archive.extend([fresh, fresh]) == [True, False]  # a duplicate inside one batch too
        assert len(archive) == 4
    lines = archive_path(tmp_path).read_bytes().splitlines()
    assert len(lines) == 4
    seen = []
    reopened = VoteArchive(archive_path(tmp_path), on_event=seen.append)
    assert seen == votes + [fresh]
    assert reopened.ids == {v.vote_id for v in votes} | {fresh.vote_id}
    assert reopened.load() == votes + [fresh]
    reopened.close()


def test_torn_last_line_is_truncated_with_a_warning(tmp_path, caplog):
    path = archive_path(tmp_path)
    kept = [make_vote(), make_vote()]
    with VoteArchive(path) as archive:
        archive.extend(kept)
    intact_size = path.stat().st_size
    torn = make_vote().model_dump_json().encode()[:37]
    with open(path, "ab") as handle:
        handle.write(torn)
    with caplog.at_level(logging.WARNING, logger="leaderboard.data.archive"):
        archive = VoteArchive(path)
    assert "line 3 is incomplete" in caplog.text
    assert path.stat().st_size == intact_size
    assert archive.load() == kept
    again = make_vote()
    assert archive.append(again) is True  # appends after the cut, not glued to the torn bytes
    archive.close()
    assert VoteArchive(path, read_only=True).load() == kept + [again]


def test_read_only_reader_skips_a_torn_tail_without_touching_the_file(tmp_path):
    path = archive_path(tmp_path)
    with VoteArchive(path) as archive:
        archive.append(make_vote())
    with open(path, "ab") as handle:
        handle.write(b'{"vote_id": "half')
    size = path.stat().st_size
    assert len(VoteArchive(path, read_only=True).load()) == 1
    assert path.stat().st_size == size


def test_corrupt_middle_line_names_the_line(tmp_path):
    path = archive_path(tmp_path)
    with VoteArchive(path) as archive:
        archive.append(make_vote())
    with open(path, "ab") as handle:
        handle.write(b'{"vote_id": "not a vote"}\n')
        handle.write(make_vote().model_dump_json().encode() + b"\n")
    with pytest.raises(ArchiveCorruptError, match=r"votes.jsonl, line 2: not a valid vote"):
        VoteArchive(path)


def test_one_writer_at_a_time(tmp_path):
    path = archive_path(tmp_path)
    with VoteArchive(path):
        with pytest.raises(ArchiveBusyError, match="another leaderboard worker"):
            VoteArchive(path)
        VoteArchive(path, read_only=True)  # readers are never blocked
    VoteArchive(path).close()  # released on close


def test_duplicate_lines_in_the_file_count_once(tmp_path):
    path = archive_path(tmp_path)
    vote = make_vote()
    line = vote.model_dump_json().encode() + b"\n"
    path.write_bytes(line + line)
    archive = VoteArchive(path)
    assert archive.load() == [vote]
    assert archive.append(vote) is False
    archive.close()


def test_resume_reads_only_what_another_writer_appended(tmp_path, caplog):
    path = archive_path(tmp_path)
    first = [make_vote(), make_vote("beta", "gamma", "tie")]
    archive = VoteArchive(path)
    archive.extend(first)
    position = archive.position()
    archive.close()
    assert position.offset == path.stat().st_size and position.ids == {v.vote_id for v in first}

    later = [make_vote(ranking=[["a"], ["b", "c"]]), make_vote()]
    with VoteArchive(path) as other:  # another worker on the same data directory
        other.extend(later)
        other.append(first[0])  # already archived: not written again
    with open(path, "ab") as handle:  # and a write of its cut short by a crash
        handle.write(make_vote().model_dump_json().encode()[:40])

    seen = []
    with caplog.at_level(logging.WARNING, logger="leaderboard.data.archive"):
        resumed = VoteArchive(path, on_event=seen.append, resume_from=position)
    assert seen == later  # the first votes were not read again
    assert "line 5 is incomplete" in caplog.text  # counted from the top of the file
    assert resumed.ids == {v.vote_id for v in first + later}
    assert resumed.extend([first[1], later[0], fresh := make_vote()]) == [False, False, True]
    resumed_again = resumed.position()
    resumed.close()
    assert resumed_again.offset == path.stat().st_size
    assert VoteArchive(path, read_only=True).load() == first + later + [fresh]
    reopened = []
    VoteArchive(path, on_event=reopened.append, resume_from=resumed_again).close()
    assert reopened == []


def test_resume_refuses_a_replaced_or_rewritten_file(tmp_path):
    path = archive_path(tmp_path)
    votes = [make_vote(), make_vote(), make_vote()]
    with VoteArchive(path) as archive:
        archive.extend(votes)
        position = archive.position()
    content = path.read_bytes()

    replaced = tmp_path / "restored.jsonl"  # e.g. restored from a backup: another inode
    replaced.write_bytes(content)
    replaced.replace(path)
    with pytest.raises(ArchiveMovedError, match="replaced or rewritten"):
        VoteArchive(path, on_event=lambda event: pytest.fail("nothing may be read"), resume_from=position)
    VoteArchive(path).close()  # the failed resume released the lock

    with VoteArchive(path) as archive:
        position = archive.position()
    lines = path.read_bytes().splitlines(keepends=True)
    with open(path, "r+b") as handle:  # same inode, same length, different last vote
        handle.write(b"".join(lines[:2]) + make_vote().model_dump_json().encode()[:len(lines[2]) - 1] + b"\n")
    with pytest.raises(ArchiveMovedError):
        VoteArchive(path, resume_from=position)
    with open(path, "r+b") as handle:  # truncated below the position
        handle.truncate(len(lines[0]))
    with pytest.raises(ArchiveMovedError):
        VoteArchive(path, resume_from=position)


def test_export_rows_in_lmarena_columns(tmp_path):
    # the public export (leaderboard.data.export) replaced export_lmarena: same columns, K-wise votes
    # included, the voter a release pseudonym, the category column named categories
    from leaderboard.data.export import EXPORT_COLUMNS, Pseudonyms, export_row

    votes = [make_vote("alpha", "beta", "model_b"), make_vote(ranking=[["a"], ["b"]])]
    pseudonyms = Pseudonyms(b"k" * 32)
    rows = [export_row(vote, pseudonyms) for vote in votes]
    row = rows[0]
    assert (row["model_a"], row["model_b"], row["winner"]) == ("alpha", "beta", "model_b")
    assert row["question_id"] == votes[0].battle_id
    assert row["judge"] == pseudonyms.of("voter-1") != "voter-1"
    assert row["anony"]
    assert row["conv_metadata"]["sum_assistant_a_tokens"] == 120
    assert row["conv_metadata"]["header_count_a"] == {"total": 1}
    assert row["categories"] == ["coding"]
    assert list(EXPORT_COLUMNS[:8]) == ["question_id", "model_a", "model_b", "winner", "judge", "turn", "anony",
                                        "tstamp"]
    kwise = rows[1]
    assert kwise["mode"] == "kwise" and kwise["ranking"] == [["a"], ["b"]]
    assert kwise["model_a"] is None and kwise["winner"] is None
