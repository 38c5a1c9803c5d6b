"""Running a process: the settings table (flags, environment, banner) and the embedded Redis server.

May import: arena.battles, arena.matchmaker, arena.trust, leaderboard.config, leaderboard.data, leaderboard.store.
"""
