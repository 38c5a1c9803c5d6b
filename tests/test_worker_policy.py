"""The worker's pure parts: the refit schedule and the consumer's state transitions."""

import math

import pytest

from leaderboard.live.policy import REFIT_WAIT_PER_FIT_SECOND, RefitSchedule
from leaderboard.worker.state import STREAM_START, ConsumerState, Lease, Phase


def test_refit_is_due_only_with_something_new_and_after_the_interval():
    schedule = RefitSchedule(interval=2.0)
    assert not schedule.due(now=100.0)  # nothing to publish
    schedule.votes_arrived()
    assert schedule.due(now=100.0)  # never published: due at once
    schedule.published(fit_started=100.0, fit_ended=100.1)
    assert not schedule.due(now=105.0)  # nothing new since
    schedule.votes_arrived()
    assert not schedule.due(now=102.0)
    assert schedule.due(now=102.1)


def test_a_slow_fit_stretches_the_wait_between_refits():
    schedule = RefitSchedule(interval=2.0)
    schedule.votes_arrived()
    schedule.published(fit_started=10.0, fit_ended=11.5)  # a 1.5 s fit
    assert schedule.wait == pytest.approx(REFIT_WAIT_PER_FIT_SECOND * 1.5)
    schedule.votes_arrived()
    assert not schedule.due(now=11.5 + 5.9)
    assert schedule.due(now=11.5 + 6.0)


def test_block_ms_never_waits_past_a_due_refit():
    schedule = RefitSchedule(interval=2.0)
    assert schedule.block_ms(now=0.0, limit_ms=1000) == 1000  # nothing to publish: the full limit
    schedule.votes_arrived()
    schedule.published(fit_started=0.0, fit_ended=0.0)
    schedule.votes_arrived()
    assert schedule.block_ms(now=1.7, limit_ms=1000) == 300
    assert schedule.block_ms(now=1.0, limit_ms=500) == 500
    assert schedule.block_ms(now=5.0, limit_ms=1000) == 1  # overdue: poll, don't block


def test_start_goes_through_each_phase_and_letting_go_keeps_the_resume_position():
    state = ConsumerState()
    assert state.phase is Phase.CLOSED and state.lease is Lease.NOT_NEEDED
    state.archive_read_whole()
    assert state.phase is Phase.ARCHIVE_OPEN and state.stream_checked_to == STREAM_START
    state.group_ready()
    state.checked_stream_to("5-0")
    state.caught_up()
    assert state.phase is Phase.CONSUMING and state.stream_checked_to == "(5-0"
    state.own_pending_read(complete=True)
    assert not state.own_pending_possible
    position = object()
    state.let_go(position)
    assert state.phase is Phase.CLOSED and state.resume_from is position
    state.archive_resumed()  # the same file: the catch-up continues where it stopped
    assert state.phase is Phase.ARCHIVE_OPEN and state.resume_from is None
    assert state.stream_checked_to == "(5-0" and state.own_pending_possible


def test_a_replaced_archive_resets_the_catch_up_and_the_warm_start():
    state = ConsumerState()
    state.archive_read_whole()
    state.checked_stream_to("9-1")
    state.fitted({"a": 0.5})
    state.let_go(None)
    state.archive_read_whole()
    assert state.stream_checked_to == STREAM_START and state.warm_start is None


def test_losing_the_group_goes_back_to_creating_it_but_not_before_the_archive_is_open():
    state = ConsumerState()
    state.group_lost()
    assert state.phase is Phase.CLOSED
    state.archive_read_whole()
    state.group_ready()
    state.caught_up()
    state.group_lost()
    assert state.phase is Phase.ARCHIVE_OPEN


def test_a_claim_pass_runs_at_most_twice_per_idle_period_unless_in_progress():
    state = ConsumerState()
    assert state.claim_pass_due(now=0.0, idle_seconds=30.0)
    state.claim_pass_started(now=0.0)
    assert not state.claim_pass_due(now=14.9, idle_seconds=30.0)
    assert state.claim_pass_due(now=15.0, idle_seconds=30.0)
    state.claim_pass_continues("7-0")  # a pass in progress continues at once
    assert state.claim_pass_due(now=1.0, idle_seconds=30.0)
    assert math.isinf(ConsumerState().last_claim_scan)


def test_block_ms_when_a_refit_is_due_but_nothing_was_ever_published():
    # a first publish that failed leaves last_refit at -inf: poll (1 ms), don't overflow
    schedule = RefitSchedule(interval=2.0)
    schedule.votes_arrived()
    assert schedule.block_ms(now=50.0, limit_ms=1000) == 1


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "0"])
def test_the_refit_interval_must_be_a_positive_finite_number(text):
    import argparse

    from leaderboard.config import REFIT_INTERVAL

    with pytest.raises(argparse.ArgumentTypeError):
        REFIT_INTERVAL.parse(text)
    assert REFIT_INTERVAL.parse("0.5") == 0.5
