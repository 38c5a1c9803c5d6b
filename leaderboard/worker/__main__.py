"""``python -m leaderboard.worker`` is ``python -m leaderboard worker``."""

import sys

from leaderboard.worker.cli import main

sys.exit(main())
