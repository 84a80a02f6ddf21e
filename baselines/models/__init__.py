"""Trainable heads of the registered baselines (the parts that sit on frozen encoders)."""
