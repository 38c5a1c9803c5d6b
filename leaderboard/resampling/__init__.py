"""Bootstrap intervals: the batched Bradley-Terry bootstrap, the bootstrap by exact refits for
the other models, exact Poisson draws and how replicates are chunked.

May import: leaderboard.data, leaderboard.models.
"""
