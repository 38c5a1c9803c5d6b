"""The leaderboard snapshot: what the worker publishes to Redis and the web side reads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leaderboard.store.redis_keys import snapshot_channel, snapshot_key


class SnapshotRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    rating: float = Field(description="rating points (400/ln10 per nat, mean 1000 unless anchored)")
    lower: float = Field(description="lower 95% bound, rating points")
    upper: float = Field(description="upper 95% bound, rating points")
    rank: int = Field(description="1 + number of models whose lower bound exceeds this upper bound")
    rank_lower: int = Field(description="number of models whose upper bound exceeds this lower bound, plus 1")
    votes: int


class Snapshot(BaseModel):
    """Latest fit. ``theta`` and ``covariance`` (natural-log units, in ``models`` row order)
    are for the matchmaker; people read ``rows``."""

    model_config = ConfigDict(extra="forbid")

    generated_at: float
    total_votes: int
    method: str = Field(description="e.g. 'bradley-terry+sandwich' or 'elo' before the first fit")
    rows: list[SnapshotRow] = Field(description="sorted by rating, best first")
    models: list[str] = Field(default_factory=list, description="order of theta / covariance")
    theta: list[float] = Field(default_factory=list)
    covariance: list[list[float]] = Field(default_factory=list)
    note: str = ""
    id: str = Field(default="", description=(
        "names this fit: the worker announces it on snapshot_channel and the matchmaker's online belief "
        "key is derived from it (arena.matchmaker.keys.online_belief_key); when absent, as in snapshots "
        "written before the field existed, it is repr(generated_at), the name those belief keys were given"))

    @model_validator(mode="after")
    def _id_defaults_to_generated_at(self) -> Snapshot:
        if not self.id:
            self.id = repr(self.generated_at)
        return self


def queue_snapshot(pipe, prefix: str, snapshot: Snapshot) -> None:
    """Queue on ``pipe`` (a MULTI) storing ``snapshot`` as the latest and announcing its id: how the worker
    and ``python -m leaderboard rebuild`` publish, with every view in the same MULTI (the matchmaker's
    belief key is named after the id)."""
    pipe.set(snapshot_key(prefix), snapshot.model_dump_json())
    pipe.publish(snapshot_channel(prefix), snapshot.id)
