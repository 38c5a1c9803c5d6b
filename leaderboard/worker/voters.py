"""The anomalous-voter watch, kept in Redis by the worker: each newly counted vote adds to its
voter's evidence (leaderboard.trust.voter_anomaly) under the ratings of the last fit; a voter whose
evidence crosses the threshold is flagged (``flagged_voters_key``), for the operator to see
(``python -m arena voters flagged``) and for the fit to exclude or down-weight.

Evidence is updated once per vote: only for votes the archive took for the first time (a
redelivered vote is recognised there and skipped), never when the archive is re-read at start-up.
A crash between archiving and this update loses that batch's evidence (never counts it twice).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping

import redis

from leaderboard.data.events import MODEL_A, MODEL_B, VoteEvent
from leaderboard.store.redis_keys import flagged_voters_key, voter_evidence_key
from leaderboard.store.stream import text
from leaderboard.trust.voter_anomaly import DEFAULT_FALSE_FLAG_RATE, VoterEvidence, flag_threshold, vote_log_ratios

EVIDENCE_TTL_SECONDS = 90 * 86400


def first_choice(event: VoteEvent) -> list[str]:
    """The vote's best group: the winner of a pairwise vote (none for a tie), a ranking's first group."""
    if event.mode == "kwise":
        return list(event.ranking[0]) if event.ranking else []
    if event.outcome == MODEL_A:
        return [event.models[0]]
    if event.outcome == MODEL_B:
        return [event.models[1]]
    return []


class VoterWatch:
    def __init__(self, redis_client: redis.Redis, prefix: str, *, alpha: float = DEFAULT_FALSE_FLAG_RATE):
        self.redis = redis_client
        self.prefix = prefix
        self.alpha = alpha

    def observe(self, events: Iterable[VoteEvent], theta: Mapping[str, float]) -> list[str]:
        """Add the votes' evidence; returns the voters flagged by them."""
        by_voter: dict[str, list[dict]] = defaultdict(list)
        for event in events:
            if event.mode == "named" or event.identity_flags:
                continue  # not rated anyway
            ratios = vote_log_ratios(event.models, first_choice(event), theta)
            if ratios:
                by_voter[event.voter_id].append(ratios)
        if not by_voter:
            return []
        voters = list(by_voter)
        pipe = self.redis.pipeline(transaction=False)
        for voter in voters:
            pipe.hgetall(voter_evidence_key(self.prefix, voter))
        pipe.hmget(flagged_voters_key(self.prefix), voters)
        *stored, already = pipe.execute()
        threshold = flag_threshold(len(theta), self.alpha)
        newly = []
        pipe = self.redis.pipeline(transaction=True)
        for voter, fields, was_flagged in zip(voters, stored, already):
            evidence = VoterEvidence.from_fields({text(k): text(v) for k, v in fields.items()})
            for ratios in by_voter[voter]:
                evidence.add(ratios)
            key = voter_evidence_key(self.prefix, voter)
            pipe.hset(key, mapping=evidence.to_fields())
            pipe.expire(key, EVIDENCE_TTL_SECONDS)
            model, score, delta = evidence.strongest()
            if was_flagged is None and score >= threshold:
                newly.append(voter)
                pipe.hset(flagged_voters_key(self.prefix), voter, json.dumps({
                    "flagged_at": time.time(), "model": model, "delta": delta, "log_evidence": round(score, 3),
                    "threshold": round(threshold, 3), "votes": evidence.votes}))
        pipe.execute()
        return newly

    def flagged(self) -> dict[str, dict]:
        """Flagged voter id -> why (model, delta, log_evidence, threshold, votes, flagged_at)."""
        flagged = self.redis.hgetall(flagged_voters_key(self.prefix))
        return {text(voter): json.loads(text(why)) for voter, why in flagged.items()}

    def unflag(self, voter: str) -> bool:
        """The operator's call: the voter counts again, and their evidence starts afresh."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(flagged_voters_key(self.prefix), voter)
        pipe.delete(voter_evidence_key(self.prefix, voter))
        removed, _ = pipe.execute()
        return bool(removed)
