"""Which fit the live board publishes, as pure functions and plain state (no Redis, no files).

- :func:`fit_live`: the one live fit of a view's votes, for the worker's overall snapshot
  (:func:`build_snapshot`), every published view (leaderboard.live.view_fit.fit_view) and
  ``fit --live``: the votes of flagged voters weighted, the notes, the model chosen by
  :func:`live_model` and fitted by ``leaderboard.fit.fit``, and the fallback to online Elo (with a
  note saying why) when there are too few votes, the comparison graph is in pieces, or the fit fails.
- :func:`live_model`: Bradley-Terry on the per-pair counts with sandwich intervals (warm-started
  from the previous theta); when K-wise votes exist, all votes are fitted together by
  Plackett-Luce (a pairwise vote is a two-item ranking and a tie a tied group, which is exactly
  Bradley-Terry with half-ties; each (pair, outcome) goes in once with its count as a frequency
  weight, so the cost grows with the K-wise votes, not with all votes); a style view's pairwise
  votes by style control. Only anonymous and K-wise votes are rated (as on LMArena): in ``named``
  mode the voter saw the names.
- :func:`unrated_notes`: what a snapshot's note says about archived votes it did not rate.
- :class:`RefitSchedule`: when the next refit is due, and how long a read may block until then.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np

from leaderboard.fit import DisconnectedGraphError, NoMaximumLikelihoodError, NoVotesError, fit
from leaderboard.live.tally import VoteTally
from leaderboard.models.base import RatingModel, StyleRows, VoteData
from leaderboard.models.joint_fit import JointPlackettLuce
from leaderboard.models.pairwise import BradleyTerry
from leaderboard.models.plackett_luce import PlackettLuce
from leaderboard.models.result import ELO, SANDWICH, RatingResult, elo_result
from leaderboard.models.style_control import StyleControl
from leaderboard.views.snapshot import Snapshot

log = logging.getLogger(__name__)

# Prior precision per rating, in nats^-2: a N(0, 1/alpha) prior on each theta. 0.01 (sd 10 nats,
# ~1700 rating points) weighs as much as 1/25 of one vote between equals (a vote carries 1/4 nat^-2
# of information), so it changes nothing once a model has a few dozen votes, yet keeps every
# rating finite when a new model has won (or lost) all its votes so far.
DEFAULT_PRIOR_PRECISION = 0.01
# Below this many rated votes the sandwich intervals are not worth much; Elo is shown instead.
MIN_VOTES_TO_FIT = 10
# A slow fit (Plackett-Luce is O(number of K-wise votes)) must not crowd out consuming: the wait
# between refits is at least this many times the last fit's duration (refits take <= ~1/5 of the time).
REFIT_WAIT_PER_FIT_SECOND = 4.0
# what a fit may raise besides the refusals (ArithmeticError: numpy floating-point errors, e.g. FloatingPointError)
FIT_FAILURES = (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError)


@dataclass
class ViewFit:
    result: RatingResult
    note: str  # the published note: the result's own and the live board's (flagged, unrated, left-out votes)
    style_control: bool
    fitted: bool  # False: the Elo fallback


# ---------------------------------------------------------------------------------------------
# Tally in, fit out


def fit_live(tally: VoteTally, *, alpha: float = DEFAULT_PRIOR_PRECISION, warm_start: dict | None = None,
             flagged_voters: Collection[str] = (), flagged_voter_weight: float = 0.0, overall: bool = True,
             style_rows: StyleRows | None = None) -> ViewFit:
    """The live fit of the votes in ``tally`` (a view's, or every vote's when ``overall``: then
    the note also tells of the archived votes not rated). ``flagged_voters``: voters flagged as
    anomalous (leaderboard.worker.voters); each of their votes weighs ``flagged_voter_weight`` (0:
    left out), and the note says how many were touched. ``style_rows``: the view's pairwise votes
    for style control, weighted alike (None: no style control). ``warm_start``: the previous fit's
    ``theta`` by model name (and ``beta`` for style control)."""
    tally, notes = down_weighted(tally, flagged_voters, flagged_voter_weight)
    if overall:
        notes += unrated_notes(tally)
    if style_rows is None:
        result = rate(tally, alpha=alpha, warm_start=warm_start)
    else:
        result = _rate_style(tally, style_rows, alpha, warm_start)
        if tally.rankings:
            notes.append(f"style control is pairwise: the view's {len(tally.rankings)} K-wise vote(s) are left out "
                         "of this fit (their style covariate, a difference between two answers, has no K-wise form)")
    if result.note:
        notes.append(result.note)
    return ViewFit(result=result, note="; ".join(notes), style_control=style_rows is not None,
                   fitted=result.method != ELO)


def build_snapshot(tally: VoteTally, *, alpha: float = DEFAULT_PRIOR_PRECISION,
                   init_theta: dict[str, float] | None = None, now: float | None = None,
                   flagged_voters: Collection[str] = (), flagged_voter_weight: float = 0.0) -> Snapshot:
    """The overall leaderboard for the votes in ``tally``, as the worker publishes it (and
    ``python -m leaderboard rebuild`` again): :func:`fit_live` as a Snapshot."""
    generated_at = time.time() if now is None else now
    view = fit_live(tally, alpha=alpha, warm_start={"theta": init_theta} if init_theta else None,
                    flagged_voters=flagged_voters, flagged_voter_weight=flagged_voter_weight)
    return view.result.to_snapshot(generated_at=generated_at, note=view.note)


# The public note rounds the flagged figures to these buckets (the exact ones are the operator's:
# `python -m arena voters flagged`), so a flag does not announce itself: an attacker watching the
# note cannot tell the refit at which one of their ids was burnt (see coarse_count).
FLAGGED_VOTES_BUCKET = 100
FLAGGED_VOTERS_BUCKET = 10


def coarse_count(count: int, bucket: int) -> str:
    """``count`` as the public note says it: "fewer than <bucket>" (0 included), else rounded down to
    a multiple of ``bucket`` ("at least 300")."""
    return f"fewer than {bucket}" if count < bucket else f"at least {count // bucket * bucket}"


def down_weighted(tally: VoteTally, flagged_voters: Collection[str], weight: float) -> tuple[VoteTally, list[str]]:
    """``tally`` with each vote of ``flagged_voters`` weighing ``weight`` (0: left out), and the
    note saying, in coarse buckets (coarse_count), how many votes that touched. The note is there
    even when nobody is flagged ("fewer than 100 vote(s) of fewer than 10 flagged voter(s)"): its
    first appearance would otherwise tell an attacker that their first id had just been caught."""
    touched = 0
    if flagged_voters:
        tally, touched = tally.without_voters(flagged_voters, weight)
    how = "left out" if weight == 0 else "counted in full" if weight >= 1 else f"weighted {weight:g}"
    return tally, [f"{coarse_count(touched, FLAGGED_VOTES_BUCKET)} vote(s) of "
                   f"{coarse_count(len(flagged_voters), FLAGGED_VOTERS_BUCKET)} flagged voter(s) (anomalous under "
                   f"the ratings; counts rounded down to buckets of {FLAGGED_VOTES_BUCKET} and "
                   f"{FLAGGED_VOTERS_BUCKET}) {how}"]


def unrated_notes(tally: VoteTally) -> list[str]:
    """The note's words on the votes of ``tally`` that were archived but not rated: named-mode
    votes, and (unless --rate-deanonymised) votes with ``identity_flags``. Said once, by the overall
    board (a category board's tally does not count them)."""
    notes = []
    if tally.named:
        notes.append(f"{tally.named} named-mode vote(s) archived but not rated (the voter saw the names)")
    if tally.deanonymised:
        notes.append(f"{tally.deanonymised} vote(s) on battles where a model may have revealed itself archived "
                     "but not rated (--rate-deanonymised rates them)")
    return notes


def live_model(tally: VoteTally, alpha: float) -> tuple[RatingModel, VoteData]:
    """The model the live board fits to the votes of ``tally``, and those votes as it takes them."""
    if not tally.rankings:
        return BradleyTerry(alpha=alpha), VoteData(pairs=tally.pairs)
    if alpha > 0:  # the same joint fit at the cost of the counts (leaderboard.models.joint_fit)
        return JointPlackettLuce(alpha=alpha), VoteData(pairs=tally.pairs, rankings=tally.rankings,
                                                        ranking_weights=tally.ranking_weights,
                                                        design_cache=tally.design_cache)
    rankings, multiplicity = tally.all_rankings()
    return PlackettLuce(alpha=alpha), VoteData(rankings=rankings, ranking_multiplicity=multiplicity)


def rate(tally: VoteTally, *, alpha: float = DEFAULT_PRIOR_PRECISION, warm_start: dict | None = None) -> RatingResult:
    """The rating result for the votes in ``tally``: Plackett-Luce when there are K-wise votes,
    else Bradley-Terry, both with sandwich intervals; online Elo (its note says why) otherwise."""
    if tally.rated < MIN_VOTES_TO_FIT:
        return elo_fallback(tally, f"only {tally.rated} rated vote(s) so far; a fit needs at least {MIN_VOTES_TO_FIT}",
                            alpha)
    model, data = live_model(tally, alpha)
    try:
        result = fit(model, data, ci=SANDWICH, warm_start=warm_start)
    except (NoVotesError, DisconnectedGraphError, NoMaximumLikelihoodError) as error:
        return elo_fallback(tally, str(error), alpha)
    except FIT_FAILURES as error:
        log.warning("leaderboard fit failed, publishing online Elo instead: %s", error)
        return elo_fallback(tally, f"the fit failed ({error})", alpha)
    if tally.rankings:
        result = replace(result, note=(
            f"{len(tally.rankings)} K-wise vote(s): all votes fitted jointly by Plackett-Luce "
            "(a pairwise vote is a two-item ranking; same model as Bradley-Terry)"))
    return result


def _rate_style(tally: VoteTally, rows: StyleRows, alpha: float, warm_start: dict | None) -> RatingResult:
    """The style-controlled fit of a view's pairwise votes (``tally``: the view's votes as
    weighted for the fit; ``rows``: the same pairwise votes one row each); online Elo otherwise."""
    if tally.pairs.n_votes < MIN_VOTES_TO_FIT:
        return elo_fallback(tally, f"only {tally.pairs.n_votes} pairwise vote(s) for style control; "
                                   f"a fit needs at least {MIN_VOTES_TO_FIT}", alpha)
    try:
        return fit(StyleControl(alpha=alpha), VoteData(pairs=tally.pairs, style=rows), ci=SANDWICH,
                   warm_start=warm_start)
    except FIT_FAILURES as error:
        log.warning("style-controlled fit failed, publishing online Elo instead: %s", error)
        return elo_fallback(tally, f"the style-controlled fit failed ({error})", alpha)


def is_fitted(snapshot: Snapshot) -> bool:
    """True for a likelihood fit (its theta warm-starts the next one), False for the Elo fallback."""
    return snapshot.method != ELO


def elo_fallback(tally: VoteTally, reason: str, alpha: float) -> RatingResult:
    """Online Elo with rough intervals (see leaderboard.models.result.elo_result): there is no Elo interval."""
    return elo_result(tally.elo.ratings(), tally.votes_per_model(), tally.rated, rough_intervals=True, alpha=alpha,
                      note=(f"online Elo ratings, not a Bradley-Terry fit: {reason}. Elo has no confidence interval; "
                            "the bounds shown are a rough +-1.96/sqrt(votes/4) nats"))


# ---------------------------------------------------------------------------------------------
# When to refit


@dataclass
class RefitSchedule:
    """Refit every ``interval`` seconds while there is something new to publish, or every
    ``REFIT_WAIT_PER_FIT_SECOND`` x the last fit's duration if that is longer. Times are
    ``time.monotonic()`` seconds, passed in, so the schedule is a pure function of its inputs."""

    interval: float
    unpublished: bool = False  # votes (or a freshly read archive) not in a published snapshot yet
    last_refit: float = -math.inf
    wait: float = math.nan

    def __post_init__(self) -> None:
        if math.isnan(self.wait):
            self.wait = self.interval

    def votes_arrived(self) -> None:
        self.unpublished = True

    def due(self, now: float) -> bool:
        return self.unpublished and now - self.last_refit >= self.wait

    def published(self, fit_started: float, fit_ended: float) -> None:
        self.unpublished = False
        self.last_refit = fit_ended
        self.wait = max(self.interval, REFIT_WAIT_PER_FIT_SECOND * (fit_ended - fit_started))

    def block_ms(self, now: float, limit_ms: int) -> int:
        """How long a blocking read may wait: ``limit_ms`` at most, and not past a due refit."""
        if not self.unpublished:
            return limit_ms
        # in floats first: before the first publish last_refit is -inf (due at once: poll)
        until_refit_ms = (self.last_refit + self.wait - now) * 1000
        return int(min(limit_ms, max(1.0, until_refit_ms)))
