"""The site's figures as SVG text, byte-identical on every rebuild.

Drawn by matplotlib (the field's plotting library; SVG needs no JavaScript at view time). Its
SVG writer stamps a date and random element ids unless told otherwise: the date is dropped and
the ids are salted with a constant, and text is drawn as paths so no font is needed to view it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

# typed Any: matplotlib's stubs accept only a dict literal of known keys
_SVG_SETTINGS: Any = {"svg.hashsalt": "larb-site", "svg.fonttype": "path", "font.size": 9}


def _render(draw: Callable[[Any], None], width: float, height: float) -> tuple[str, int, int]:
    """Draw on a fresh figure (no pyplot state) and return (SVG text, width px, height px)."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_SVG_SETTINGS):
        figure = Figure(figsize=(width, height), dpi=96, layout="constrained")
        draw(figure)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue(), round(width * 96), round(height * 96)


def interval_plot(labels: Sequence[str], means: Sequence[float], lows: Sequence[float], highs: Sequence[float],
                  metric: str) -> tuple[str, int, int]:
    """Each system's `metric` with its 95 % interval, best at the top: (SVG, width px, height px)."""
    def draw(figure: Any) -> None:
        axes = figure.add_subplot()
        positions = list(range(len(labels)))[::-1]
        errors = [[m - lo for m, lo in zip(means, lows, strict=True)],
                  [hi - m for m, hi in zip(means, highs, strict=True)]]
        axes.errorbar(means, positions, xerr=errors, fmt="o", color="#2b59c3", ecolor="#7f9bd8", capsize=3)
        axes.set_yticks(positions, labels)
        axes.set_xlabel(f"{metric} (95 % jackknife interval)")
        axes.set_xlim(0, max(1e-3, min(1.0, max(highs) * 1.08)))
        axes.grid(axis="x", color="#e3e6ec")

    return _render(draw, 7.5, 0.9 + 0.32 * len(labels))


def training_curves(history: Sequence[dict[str, Any]]) -> tuple[str, int, int]:
    """Training and validation loss, and validation mAP@10, per epoch: (SVG, width px, height px)."""
    epochs = [record["epoch"] for record in history]

    def draw(figure: Any) -> None:
        loss, quality = figure.subplots(1, 2)
        loss.plot(epochs, [r["train_loss"] for r in history], marker=".", label="training")
        loss.plot(epochs, [r["val_loss"] for r in history], marker=".", label="validation")
        loss.set_xlabel("epoch")
        loss.set_ylabel("loss")
        loss.legend(frameon=False)
        quality.plot(epochs, [r["val_mAP@10"] for r in history], marker=".", color="#1b7a36")
        quality.set_xlabel("epoch")
        quality.set_ylabel("validation mAP@10")
        for axes in (loss, quality):
            axes.grid(color="#e3e6ec")

    return _render(draw, 7.5, 2.8)
