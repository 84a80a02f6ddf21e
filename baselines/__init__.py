"""LARB baselines: registered retrieval models that write submissions like any outside team, and
any other model through one protocol (`baselines.model_protocol`).

    from baselines import evaluate_model
    results = evaluate_model(my_model, ["demo"])   # task id -> benchmark.Evaluation

Nothing here scores itself; the harness does. Needs the `[baselines]` extra (torch, ...).
"""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate_model", "run_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from baselines import model_runner

        return getattr(model_runner, name)
    raise AttributeError(f"module 'baselines' has no attribute {name!r}")
