"""The baseline's part of `larb demo` (entry point `larb.demo`): a real pretrained run, offline.

With mn04, all-MiniLM-L6-v2 and the AudioSet label list cached or in `$LARB_ASSETS_MIRROR`,
it writes two submissions for the `demo` task: the zero-shot tags-only system (lambda 0) and
the full model trained on `demo-train` (validation on held-out training files). Without them
it downloads nothing: it says what is missing and adds no system (the board still shows the
example submissions and chance).
"""

from __future__ import annotations

from pathlib import Path

from baselines import assets
from baselines.assets import available_offline
from baselines.models.passt_mpnet_tags import NAME
from baselines.runner import run_baseline, train_baseline

OFFLINE_SETTINGS = ("tagger=mn04", "text_encoder=all-MiniLM-L6-v2")
NEEDED = (assets.MN04, assets.MINILM, assets.AUDIOSET_LABELS)


def demo_submissions(work: Path) -> list[Path]:
    """Submission folders written under `work` (none when the assets are not available offline)."""
    missing = [name for name in NEEDED if not available_offline(name)]
    if missing:
        print(f"{NAME}: not run, to avoid a download: {', '.join(missing)} not cached or mirrored. "
              f"Set LARB_ASSETS_MIRROR to a folder holding them (e.g. ../shared/assets) to include it.")
        return []
    print(f"{NAME}: mn04 + all-MiniLM-L6-v2 on the CPU: zero-shot, then trained on demo-train ...")
    zero_shot = run_baseline(NAME, "demo", [], work / f"{NAME}-mn04-minilm-zeroshot",
                             [*OFFLINE_SETTINGS, "lambda=0"], progress=False)
    result = train_baseline(NAME, "demo-train", None, work / "runs" / NAME, OFFLINE_SETTINGS, progress=False)
    trained = run_baseline(NAME, "demo", [result.best_checkpoint], work / f"{NAME}-mn04-minilm-demo-train", [],
                           progress=False)
    return [zero_shot, trained]
