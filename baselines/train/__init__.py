"""Training: the loops, their checkpoints and resume, optimisers and schedules."""
