"""The published board: the snapshot (``snapshot``), the per-category and style-control views
with their index, stats and history (``published``), the category rule (``categories``) and the one
reader of them all (``reader``: parse and validate, sync or asyncio, each document parsed once).
The worker writes these documents; the API, the page, the matchmaker and the operator only read
them, through ``reader``.

May import: leaderboard.store.
"""
