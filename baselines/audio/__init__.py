"""Audio for the baselines: reading files, the clip store, crops and tiles."""
