"""The operator's commands: ``serve`` (the composition root that starts Redis, the demo
endpoints, the worker and the web app), ``matchmaker`` (``operator``), ``owners`` / ``models``
and ``voters``. The only room that wires every other room together.

May import: arena.battles, arena.errors, arena.keys, arena.matchmaker, arena.metrics, arena.models,
arena.ops, arena.owners, arena.trust, arena.web, leaderboard.config, leaderboard.data, leaderboard.store,
leaderboard.views, leaderboard.worker.
"""

import os

# Gradio reports every page it builds to its analytics host (api.gradio.app, through
# huggingface.co) and asks that host for its latest version, unless this is "False": an arena
# talks to no one but its models, and offline it would wait on those lookups. Set here, before any
# command module (serve, which loads Gradio) is imported; an operator's own value is kept.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
