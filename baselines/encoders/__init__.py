"""Pretrained audio and text encoders, loaded from their published checkpoints via the asset cache."""
