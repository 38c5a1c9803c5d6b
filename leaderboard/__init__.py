"""Everything statistical: loading votes, fitting ratings, intervals, the worker, the CLI.

This package never imports ``arena`` (the dependency points one way: arena -> leaderboard).
"""
