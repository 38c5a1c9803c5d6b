"""Model owners: their accounts and registered models in Redis (``store``), what they may do
(``service``: register, update, delete; approve and reject for the operator), what they see
(``view``), and the catalog that merges the operator's models with the registered ones
(``catalog``).

May import: arena.errors, arena.keys, arena.models, arena.trust, leaderboard.store, leaderboard.views.
"""
