"""Battles: one engine for two-way and K-way battles, from the request to the vote event.

What a voter may ask for (``requests``: K and named picks, one rule for K), the operator's limits
and this process's answer budget (``limits``), the battle's stored shape (``types``), its state in
Redis (``store``, with the Lua scripts in ``scripts``), and the engine: ``engine.BattleService``,
the one face the web layer sees, built from the parts that seat models (``seating``), create
battles (``creation``), stream one model's answer (``answering``), run turns (``turns``),
regenerate an answer (``regeneration``) and take the vote (``voting``). Vote intake (``votes``:
the checked choice and the VoteEvent it becomes), what is measured of an answer and a prompt at
vote time (``style``, ``prompt_profile``, on the shared ``text_measures``), input hygiene
(``text_checks``) and the drain of a stopping process (``drain``).

May import: arena.errors, arena.keys, arena.metrics, arena.matchmaker, arena.models, arena.trust,
leaderboard.data, leaderboard.store.
"""
