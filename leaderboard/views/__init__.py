"""The published board: the snapshot (``snapshot``), the per-category and style-control views
with their index, stats and history (``published``) and the category rule (``categories``). The
worker writes these documents; the API, the page, the matchmaker and the operator only read them.

May import: leaderboard.store.
"""
