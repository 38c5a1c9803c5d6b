"""Model endpoints: which models the arena serves (``config``), streaming their answers through the
official clients (``endpoints``: the pool; ``endpoint_clients``: the openai and Hugging Face
clients; ``endpoint_failures``: their failures in plain words), the live check of a new endpoint
(``health_check``), runtime health and the circuit breaker (``health``), one status vocabulary
(``availability``), the names a running arena knows (``names``) and the built-in demo models and
their server (``demo_models``, ``demo_server``).

May import: arena.errors, arena.keys, arena.trust, leaderboard.store, leaderboard.views.
"""
