"""Running a process: the settings table (flags, environment, banner), the embedded Redis server
and the limit on repeated log lines.

May import: arena.battles, arena.matchmaker, arena.trust, leaderboard.config, leaderboard.data, leaderboard.store.
"""
