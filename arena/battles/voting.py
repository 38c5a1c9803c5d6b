"""Taking a battle's one vote: checked, written with the voter's rate limits in one atomic step,
counted, and then taught to the matchmaker's online belief without making the voter wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from arena.battles.limits import BattleLimits
from arena.battles.store import BattleStore
from arena.battles.types import VoteReceipt, state_error
from arena.battles.votes import checked_choice, checked_feedback, vote_event, vote_text
from arena.errors import BattleError
from arena.metrics import NoMetrics
from arena.trust.rate_limit import RateLimiter
from leaderboard.data.events import VoteEvent

log = logging.getLogger(__name__)

# Matchmaker updates that may wait at once behind accepted votes (see VoteTaking.teach_matchmaker_soon).
MAX_PENDING_LESSONS = 1024


class VoteTaking:
    """Takes the votes of battles in ``store`` and feeds the accepted ones to ``matchmaker``.

    ``keep_text``: the operator releases prompts and answers (--release-text): each vote's text is
    kept beside its event in the stream (the export's only source of text; otherwise text lives
    only as long as the battle)."""

    def __init__(self, store: BattleStore, limits: BattleLimits, matchmaker, *, metrics: NoMetrics,
                 keep_text: bool = False):
        self.store = store
        self.limits = limits
        self.matchmaker = matchmaker
        self.metrics = metrics
        self.keep_text = keep_text
        self.limiter = RateLimiter(store.redis, store.prefix, "votes")
        self._lessons: set[asyncio.Task] = set()  # matchmaker updates still running (see teach_matchmaker_soon)
        self.lessons_skipped = 0

    async def vote(self, battle_id: str, session_id: str, voter_id: str, *, outcome: str | None = None,
                   ranking: Sequence[Sequence[str]] | None = None, feedback: str | None = None,
                   partial: bool = False) -> VoteReceipt:
        """Accept the one vote of a battle whose answers have all finished, and XADD it.

        A malformed vote is refused (InvalidVote, 422) whatever the battle's state: the input is
        wrong however often it is sent, while a state conflict (409) is about *when* it was sent.
        ``partial``: the ranking may rank only the best (arena.battles.votes.checked_choice).
        """
        try:
            receipt, mode = await self._vote(battle_id, session_id, voter_id, outcome, ranking, feedback, partial)
        except BattleError as error:
            self.metrics.vote_rejected(error)
            raise
        self.metrics.vote_accepted(mode)
        return receipt

    async def _vote(self, battle_id, session_id, voter_id, outcome, ranking, feedback=None,
                    partial=False) -> tuple[VoteReceipt, str]:
        battle, state = await self.store.load(battle_id, session_id)
        outcome_value, ranking_names, unranked = checked_choice(battle, outcome, ranking, partial)
        reason = checked_feedback(feedback)
        if state != "ready":
            raise state_error(battle_id, state)
        limits, limit_keys, limit_args = self.limiter.script_parts(
            self.limits.vote_limits(battle.models, session_id, voter_id))
        event = vote_event(battle, voter_id, outcome_value, ranking_names, reason, unranked)
        verdict = await self.store.cast_vote(battle_id, event.vote_id, event.model_dump_json(),
                                             vote_text(battle).model_dump_json() if self.keep_text else "",
                                             limit_keys, limit_args)
        outcome_of_cast = verdict[0].decode()
        if outcome_of_cast == "limited":  # nothing written, nothing spent: the battle stays votable
            self.metrics.refused_by_limit("votes")
            raise self.limiter.refusal(limits, verdict[1], verdict[2])
        if outcome_of_cast != "ok":
            raise state_error(battle_id, outcome_of_cast)
        # the leaderboard leaves out named votes and, by default, flagged ones: so does the online belief
        if not event.identity_flags and event.mode != "named":
            self.teach_matchmaker_soon(event)
        return VoteReceipt(vote_id=event.vote_id, models=battle.models, outcome=event.outcome, ranking=event.ranking,
                           identity_flags=tuple(event.identity_flags), unranked=tuple(event.unranked)), event.mode

    def teach_matchmaker_soon(self, event: VoteEvent) -> None:
        """Teach the matchmaker after the vote is answered, not before: its update is a synchronous
        Redis call in a thread, and waiting for it doubled a vote's latency under load. At most
        MAX_PENDING_LESSONS wait at once; past that a lesson is skipped (logged), which only
        delays what the matchmaker learns until the next refit."""
        if len(self._lessons) >= MAX_PENDING_LESSONS:
            self.lessons_skipped += 1
            if self.lessons_skipped % 1000 == 1:
                log.warning("the matchmaker's online updates fall behind the votes: %d skipped so far (the next "
                            "refit catches up)", self.lessons_skipped)
            return
        task = asyncio.create_task(self._teach_matchmaker(event))
        self._lessons.add(task)
        task.add_done_callback(self._lessons.discard)

    async def _teach_matchmaker(self, event: VoteEvent) -> None:
        """Feed an accepted vote to the matchmaker's online belief, so the next choices use it
        within seconds instead of waiting for the next refit. The vote is already safe in the
        stream: a failure here only delays what the matchmaker learns, so it is logged, not raised."""
        try:
            await asyncio.to_thread(self.matchmaker.record_event, event)
        except Exception as exc:
            log.warning("vote %s accepted, but the matchmaker's online update failed: %s", event.vote_id, exc)
