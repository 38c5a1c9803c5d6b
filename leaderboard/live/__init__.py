"""The live board's statistics, without Redis: what the worker keeps of the rated votes
(``tally``, ``view_tally``), which fit it publishes and when (``policy``), and the fit of one view
(``view_fit``) that the worker publishes and ``fit --live`` repeats.

May import: leaderboard.data, leaderboard.fit, leaderboard.models, leaderboard.resampling,
leaderboard.trust, leaderboard.views.
"""
