"""Rating models: Bradley-Terry (with Davidson ties), style control, Plackett-Luce and the joint
pairwise + K-wise fit, online Elo; the Newton solver they share (``optim``), the comparison graph
checks (``graph``), sandwich covariances (``sandwich``), rank intervals (``ranks``), the reporting
scale (``scale``) and the one result type (``result``).

May import: leaderboard.data, leaderboard.views.
"""
