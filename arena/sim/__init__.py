"""Simulators and load tools, kept apart from serving: the matchmaker simulator (``simulate``,
``simulation``), the fingerprinting attack against the anomaly test (``attack_simulation``) and
load against an arena on this machine (``load_test``, 127.0.0.1 only).

May import: arena.battles, arena.errors, arena.keys, arena.matchmaker, arena.ops, arena.trust,
leaderboard.config, leaderboard.data, leaderboard.live, leaderboard.models, leaderboard.trust,
leaderboard.worker.
"""
