"""The fingerprinting attack, simulated: honest voters plus an attacker who always votes for one
model, through the worker's own anomalous-voter test and fit.

Truth: ``models`` models with known strengths (rating points, spread evenly over ``spread``).
Honest voters vote on uniformly chosen pairs by Bradley-Terry on the truth (``tie_rate`` of their
votes are ties); how many votes each casts is geometric (mean ``votes_per_voter``), so there are
light and heavy voters. After ``warmup`` honest votes the attack starts: ``attack_votes`` votes
from ``attacker_ids`` voter ids (round robin), each in a battle seating the target (the attacker
abandons battles without it, having fingerprinted the answers) and each for the target,
interleaved with ``honest_during`` more honest votes. As in the worker, the ratings are refitted
every ``refit_every`` votes, each vote adds to its voter's evidence under the last fit's ratings
(leaderboard.trust.voter_anomaly), and a flagged voter's votes get ``flagged_weight`` in every later fit.

Reported: detection rate (attacker ids flagged / attacker ids), false-positive rate (honest
voters flagged / honest voters), and the target's final rating minus its rating in the same run
without the attack, next to the half-width of its 95% interval.

``python -m arena.sim.attack_simulation --attacker-ids 1,4,16,314 --seeds 5`` prints a table.
"""

from __future__ import annotations

import argparse
import math
import uuid
from dataclasses import dataclass, replace

import numpy as np

from leaderboard.config import command_description
from leaderboard.data.events import MODEL_A, MODEL_B, TIE, StyleFeatures, VoteEvent
from leaderboard.live.policy import build_snapshot
from leaderboard.live.tally import VoteTally
from leaderboard.models.scale import ELO_PER_NAT
from leaderboard.trust.voter_anomaly import DEFAULT_ALPHA, VoterEvidence, flag_threshold, vote_log_ratios
from leaderboard.worker.voters import first_choice

_STYLE = StyleFeatures(tokens=100, headers=0, list_items=0, bold=0)


@dataclass(frozen=True)
class AttackConfig:
    models: int = 5
    spread: float = 200.0  # rating points between the best and the worst model
    target: int = -2  # index into the models, best first: the second weakest
    honest_voters: int = 300
    votes_per_voter: float = 10.0
    warmup: int = 2000
    honest_during: int = 1000
    attack_votes: int = 314  # as measured in the issue
    attacker_ids: int = 1
    tie_rate: float = 0.1
    refit_every: int = 50
    alpha: float = DEFAULT_ALPHA
    flagged_weight: float = 0.0


@dataclass(frozen=True)
class AttackResult:
    attacker_ids: int
    attackers_flagged: int
    honest_voters: int
    honest_flagged: int
    target_shift: float  # rating points, attacked run minus the same run without the attack
    target_half_width: float  # of the target's 95% interval in the attacked run
    votes_excluded: int

    @property
    def detection_rate(self) -> float:
        return self.attackers_flagged / self.attacker_ids

    @property
    def false_positive_rate(self) -> float:
        return self.honest_flagged / max(self.honest_voters, 1)

    @property
    def held(self) -> bool:
        """The defence held: the target moved less than its half-width, or every attacker id was flagged."""
        return abs(self.target_shift) < self.target_half_width or self.attackers_flagged == self.attacker_ids


def _event(voter: str, models: list[str], outcome: str) -> VoteEvent:
    return VoteEvent(vote_id=uuid.uuid4().hex, battle_id=uuid.uuid4().hex, mode="anonymous", models=models,
                     outcome=outcome, voter_id=voter, served_at=0.0, voted_at=0.0, selection_probability=0.1,
                     style=[_STYLE, _STYLE])


def _honest_stream(config: AttackConfig, names: list[str], strength: np.ndarray, rng: np.random.Generator, n: int):
    """``n`` honest votes; voters drawn with geometric activity (heavy voters vote more)."""
    activity = rng.geometric(1.0 / config.votes_per_voter, size=config.honest_voters).astype(float)
    activity /= activity.sum()
    voters = rng.choice(config.honest_voters, size=n, p=activity)
    for voter in voters:
        i, j = rng.choice(len(names), size=2, replace=False)
        if rng.random() < config.tie_rate:
            outcome = TIE
        else:
            p_i = 1.0 / (1.0 + math.exp(-(strength[i] - strength[j])))
            outcome = MODEL_A if rng.random() < p_i else MODEL_B
        yield _event(f"honest-{voter}", [names[i], names[j]], outcome)


def _attack_stream(config: AttackConfig, names: list[str], rng: np.random.Generator):
    target = names[config.target]
    others = [name for name in names if name != target]
    for index in range(config.attack_votes):
        opponent = others[rng.integers(len(others))]
        if rng.random() < 0.5:
            yield _event(f"attacker-{index % config.attacker_ids}", [target, opponent], MODEL_A)
        else:
            yield _event(f"attacker-{index % config.attacker_ids}", [opponent, target], MODEL_B)


def _interleave(first: list, second: list, rng: np.random.Generator) -> list:
    order = rng.permutation(np.r_[np.zeros(len(first), dtype=int), np.ones(len(second), dtype=int)])
    streams, out = (iter(first), iter(second)), []
    for which in order:
        out.append(next(streams[which]))
    return out


def _run(config: AttackConfig, votes: list[VoteEvent]) -> tuple[dict, set[str], int]:
    """Feed the votes through tally, refits and the voter test; returns (final row by model, flagged, excluded)."""
    tally, evidence, flagged = VoteTally(), {}, set()
    theta: dict[str, float] = {}
    excluded = 0

    def fit():
        view, touched = tally.without_voters(flagged, config.flagged_weight) if flagged else (tally, 0)
        return build_snapshot(view, init_theta=theta or None), touched

    for count, event in enumerate(votes, start=1):
        tally.add(event)
        if theta:
            ratios = vote_log_ratios(event.models, first_choice(event), theta)
            voter = evidence.setdefault(event.voter_id, VoterEvidence())
            voter.add(ratios)
            if event.voter_id not in flagged and voter.strongest()[1] >= flag_threshold(len(theta), config.alpha):
                flagged.add(event.voter_id)
        if count % config.refit_every == 0 or count == len(votes):
            snapshot, excluded = fit()
            if snapshot.method != "elo":
                theta = dict(zip(snapshot.models, snapshot.theta))
    return {row.model: row for row in snapshot.rows}, flagged, excluded


def simulate_attack(config: AttackConfig, seed: int = 0) -> AttackResult:
    rng = np.random.default_rng(seed)
    names = [f"model-{index}" for index in range(config.models)]
    strength = np.linspace(config.spread / 2, -config.spread / 2, config.models) / ELO_PER_NAT
    warmup = list(_honest_stream(config, names, strength, rng, config.warmup))
    during = list(_honest_stream(config, names, strength, rng, config.honest_during))
    attack = list(_attack_stream(config, names, rng))
    attacked_votes = warmup + _interleave(during, attack, rng)
    honest_rows, honest_flagged_alone, _ = _run(config, warmup + during)
    rows, flagged, excluded = _run(config, attacked_votes)
    target = names[config.target]
    attackers = {f"attacker-{index}" for index in range(config.attacker_ids)}
    honest_voters = {event.voter_id for event in warmup + during}
    return AttackResult(
        attacker_ids=config.attacker_ids,
        attackers_flagged=len(flagged & attackers),
        honest_voters=len(honest_voters),
        honest_flagged=len(flagged & honest_voters),
        target_shift=rows[target].rating - honest_rows[target].rating,
        target_half_width=(rows[target].upper - rows[target].lower) / 2,
        votes_excluded=excluded,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arena.sim.attack_simulation",
                                     description=command_description(__doc__))
    parser.add_argument("--attacker-ids", default="1,4,16,314", help="comma-separated numbers of attacker voter ids")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--attack-votes", type=int, default=AttackConfig.attack_votes)
    parser.add_argument("--flagged-weight", type=float, default=0.0)
    args = parser.parse_args(argv)
    print("ids  detection  false-pos  shift(pts)  half-width  held")
    for ids in [int(part) for part in args.attacker_ids.split(",")]:
        config = replace(AttackConfig(), attacker_ids=ids, attack_votes=args.attack_votes,
                         flagged_weight=args.flagged_weight)
        results = [simulate_attack(config, seed) for seed in range(args.seeds)]
        detection = np.mean([r.detection_rate for r in results])
        false_positive = np.mean([r.false_positive_rate for r in results])
        shift = np.mean([r.target_shift for r in results])
        half = np.mean([r.target_half_width for r in results])
        held = sum(r.held for r in results)
        print(f"{ids:>3}  {detection:9.1%}  {false_positive:9.2%}  {shift:10.1f}  {half:10.1f}  {held}/{len(results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
