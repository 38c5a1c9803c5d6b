"""How much a voter is believed: the sequential test of anomalous voters (``voter_anomaly``).

May import: nothing of leaderboard.
"""
