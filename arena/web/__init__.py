"""The web side: JSON API routers, the Gradio page, and the app that mounts both. Handlers are thin:
they call the battle engine, the owners' service and the published board, nothing more. In front
of them, the guards: body limits, refused floods, the page's queue, connections at the socket.

May import: arena.battles, arena.errors, arena.keys, arena.matchmaker, arena.metrics, arena.models,
arena.ops, arena.owners, arena.trust, leaderboard.data, leaderboard.models, leaderboard.store,
leaderboard.views.
"""
