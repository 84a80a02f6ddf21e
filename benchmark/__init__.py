"""LARB harness: tasks, submission validation, metrics, results and the leaderboard.

This package must import without torch: scoring a CSV needs only the core install.
"""

__version__ = "0.1.0"
