"""Rating models: the one interface they implement and the one input they take (``base``:
``RatingModel``, ``VoteData``); Bradley-Terry with half or Davidson ties (``pairwise``, on the
solvers of ``bradley_terry``), style control, Plackett-Luce and the joint pairwise + K-wise fit,
online Elo; the Newton solver they share (``optim``), the comparison graph checks and runaway
limits (``graph``), sandwich covariances (``sandwich``), rank intervals (``ranks``), the reporting
scale (``scale``) and the one result type (``result``). Intervals, the bootstrap and the scale
are applied once for every model by ``leaderboard.fit.fit``.

May import: leaderboard.data, leaderboard.views.
"""
