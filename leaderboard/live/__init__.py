"""The live board's statistics, without Redis: what the worker keeps of the rated votes
(``tally``, ``view_tally``), which fit it publishes and when (``policy``: ``fit_live``, the one
live fit of a view's votes, the overall snapshot's too), and every view's votes and stats
(``view_fit``) that the worker publishes and ``fit --live`` repeats.

May import: leaderboard.data, leaderboard.fit, leaderboard.models, leaderboard.views.
"""
