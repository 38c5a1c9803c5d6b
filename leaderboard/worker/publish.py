"""Publishing every leaderboard view (leaderboard.views.published) in one Redis transaction per refit.

For each published category (``overall`` first, then every category with at least
``min_category_votes`` votes) and each of "without" and "with" style control, the fit of
:func:`leaderboard.live.view_fit.fit_view` becomes a Snapshot, a ViewStats and (at most once per
``history_spacing`` seconds per view) a RatingPoint; then the ViewIndex. The overall view without
style control is the worker's usual snapshot (also at ``snapshot_key``, announced on
``snapshot_channel``). Views other than overall carry ``theta`` but no ``covariance`` (only the
matchmaker reads it, and only overall's; it is 200 x 200 numbers per view).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import redis

from leaderboard.live.view_fit import LiveVotes, fit_view, view_stats
from leaderboard.views.categories import DEFAULT_MIN_CATEGORY_VOTES, published_categories
from leaderboard.views.published import (
    OVERALL,
    RatingPoint,
    ViewIndex,
    rating_history_key,
    view_id,
    view_index_key,
    view_snapshot_key,
    view_stats_key,
)
from leaderboard.views.snapshot import Snapshot, queue_snapshot

HISTORY_LENGTH = 1440  # points kept per view (a day at one a minute)
DEFAULT_HISTORY_SPACING = 60.0  # seconds between two rating points of one view
# A view whose votes did not change since it was written is not refitted nor rewritten, except
# this often (so a Redis that lost its data gets every view back within a minute).
REWRITE_UNCHANGED_AFTER = 60.0


@dataclass
class ViewPublisher:
    redis: redis.Redis
    prefix: str
    min_category_votes: int = DEFAULT_MIN_CATEGORY_VOTES
    history_spacing: float = DEFAULT_HISTORY_SPACING
    warm_starts: dict[str, dict] = field(default_factory=dict)  # view -> theta (and beta) of its last fit
    last_point: dict[str, float] = field(default_factory=dict)  # view -> generated_at of its last RatingPoint
    written: dict[str, tuple[int, float]] = field(default_factory=dict)  # view -> (its votes, when) at its last write

    def forget(self) -> None:
        """The votes were re-read from scratch: start the fits cold, write every view."""
        self.warm_starts.clear()
        self.written.clear()

    def publish(self, live: LiveVotes, overall: Snapshot, *, next_refit_at: float | None = None,
                flagged_voters: Collection[str] = (), flagged_voter_weight: float = 0.0) -> ViewIndex:
        """Fit and write every view; ``overall`` is the overall snapshot already fitted by the worker
        (with the same ``flagged_voters`` and weight: every view weighs their votes alike)."""
        generated_at = overall.generated_at
        flagged = (frozenset(flagged_voters), flagged_voter_weight)
        categories = published_categories(live.category_votes(), self.min_category_votes)
        pipe = self.redis.pipeline(transaction=True)
        for category in categories:
            for style_control in (False, True):
                view = view_id(category.name, style_control)
                # overall also counts the archived votes that are not rated: its note tells of them
                # (and a newly flagged voter changes every view's weights)
                seen = (live.overall.archived if category.name == OVERALL else category.votes, flagged)
                votes, written_at = self.written.get(view, (None, float("-inf")))
                if votes == seen and generated_at - written_at < REWRITE_UNCHANGED_AFTER:
                    continue  # no new vote in this category: its published view stands
                self.written[view] = (seen, generated_at)
                if category.name == OVERALL and not style_control:
                    snapshot, coefficients = overall, None
                else:
                    snapshot, coefficients = self._fit(live, category.name, style_control, view, generated_at,
                                                       flagged)
                stats = view_stats(live, category.name, style_control, snapshot.models, generated_at, coefficients)
                # only the matchmaker reads a covariance, and only overall's (at snapshot_key)
                without_covariance = snapshot.model_copy(update={"covariance": []})
                pipe.set(view_snapshot_key(self.prefix, view), without_covariance.model_dump_json())
                pipe.set(view_stats_key(self.prefix, view), stats.model_dump_json())
                if generated_at - self.last_point.get(view, float("-inf")) >= self.history_spacing:
                    point = RatingPoint(generated_at=generated_at, total_votes=snapshot.total_votes,
                                        ratings={row.model: row.rating for row in snapshot.rows})
                    pipe.rpush(rating_history_key(self.prefix, view), point.model_dump_json())
                    pipe.ltrim(rating_history_key(self.prefix, view), -HISTORY_LENGTH, -1)
                    self.last_point[view] = generated_at
        index = ViewIndex(generated_at=generated_at, categories=categories, style_control=True,
                          min_category_votes=self.min_category_votes, next_refit_at=next_refit_at)
        pipe.set(view_index_key(self.prefix), index.model_dump_json())
        # at snapshot_key, and announced: the matchmaker's belief is named after its id
        queue_snapshot(pipe, self.prefix, overall)
        pipe.execute()
        return index

    def _fit(self, live: LiveVotes, category: str, style_control: bool, view: str,
             generated_at: float, flagged: tuple[frozenset, float]) -> tuple[Snapshot, dict | None]:
        fit = fit_view(live, category, style_control, warm_start=self.warm_starts.get(view),
                       flagged_voters=flagged[0], flagged_voter_weight=flagged[1])
        result = fit.result
        snapshot = result.to_snapshot(generated_at=generated_at, note=fit.note)
        if fit.fitted:
            warm = {"theta": dict(zip(result.models, (float(t) for t in result.theta)))}
            if style_control:
                warm["beta"] = list(result.style_coefficients.values())
            self.warm_starts[view] = warm
        else:
            self.warm_starts.pop(view, None)
        return snapshot, (result.style_coefficients if style_control else None)
