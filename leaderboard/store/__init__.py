"""What the leaderboard keeps in Redis and where: key names (``redis_keys``), paging the vote
stream (``stream``) and where a running embedded Redis leaves its URL (``urls``).

May import: leaderboard.data.
"""
