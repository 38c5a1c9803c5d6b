"""The operator's commands: ``serve`` (the composition root that starts Redis, the demo
endpoints, the worker and the web app), ``matchmaker`` (``operator``), ``owners`` / ``models``
and ``voters``. The only room that wires every other room together.

May import: arena.battles, arena.errors, arena.keys, arena.matchmaker, arena.metrics, arena.models,
arena.ops, arena.owners, arena.trust, arena.web, leaderboard.config, leaderboard.data, leaderboard.store,
leaderboard.views, leaderboard.worker.
"""
