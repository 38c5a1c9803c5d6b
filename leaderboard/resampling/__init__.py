"""Bootstrap intervals: the batched Bradley-Terry bootstrap, the bootstrap by exact refits for
any model (leaderboard.models.base.RatingModel), exact Poisson draws and how replicates are chunked.

May import: leaderboard.data, leaderboard.models.
"""
