"""Battles: one engine for two-way and K-way battles, from the request to the vote event.

What a voter may ask for (``requests``), the battle's stored shape (``types``), the engine that
creates battles, streams their turns, regenerates answers and takes the vote (``engine``), vote
intake (``votes``: the checked choice and the VoteEvent it becomes), what is measured of an answer
and a prompt at vote time (``style``, ``prompt_profile``), input hygiene (``text_checks``) and the
drain of a stopping process (``drain``).

May import: arena.errors, arena.keys, arena.metrics, arena.matchmaker, arena.models, arena.trust,
leaderboard.data, leaderboard.store.
"""
