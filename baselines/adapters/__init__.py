"""Adapters: models people use, behind LARB's model protocol (`baselines.model_protocol`).

Each loads local weights only (the asset mirror, or a path), never the network.
"""
