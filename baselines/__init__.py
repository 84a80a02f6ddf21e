"""LARB baselines: registered retrieval models that write submissions like any outside team.

Nothing here scores itself; `larb evaluate` does. Needs the `[baselines]` extra (torch, ...).
"""
