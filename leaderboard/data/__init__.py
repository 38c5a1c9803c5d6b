"""Vote data: the vote event contract (``events``) and its outcome strings (``outcomes``), rankings,
per-pair counts, the durable archive and its reader, vote tables in every layout (``tables``,
``layouts``, ``loading``, ``convert``), the public export, filters (``--where``, named votes) and
per-vote weights.

May import: nothing of leaderboard (the bottom room).
"""
