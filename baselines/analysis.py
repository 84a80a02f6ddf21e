"""`larb analyze`: how a model uses its embedding space on a task (the CS224N report's analysis,
offered for any model of the protocol and any trained baseline run).

The figures (`benchmark.embedding_space`): per modality the report's sigma and h (on sets of
`set_size` items drawn at random, averaged; the report's batch was 64), Wang and Isola's
uniformity and effective rank; across modalities the alignment of matching pairs (each caption
with its first relevant file) and the modality gap; and the hubness of the model's ranking.
A PCA of both modalities together (the report's Figure 3) is drawn beside the JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from baselines.model_protocol import EncoderModel, ProtocolEmbeddings
from benchmark import embedding_space as space
from benchmark.atomic import atomic_write_bytes
from benchmark.evaluation import evaluate
from benchmark.tasks import Task

SET_SIZE = 64
SUBSETS = 20


def _subsets(n: int, set_size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if n <= set_size:
        return [np.arange(n)]
    return [rng.choice(n, size=set_size, replace=False) for _ in range(SUBSETS)]


def _modality(vectors: np.ndarray, set_size: int, seed: int) -> dict[str, float]:
    subsets = _subsets(len(vectors), set_size, seed)
    return {
        "sigma": float(np.mean([space.point_uniformity(vectors[s], seed=seed) for s in subsets])),
        "h": float(np.mean([space.voxel_uniformity(vectors[s], seed=seed) for s in subsets])),
        "set_size": int(min(set_size, len(vectors))),
        "uniformity": space.uniformity(vectors),
        "effective_rank": space.effective_rank(vectors),
        "n": int(len(vectors)),
    }


def analyze(model: EncoderModel, task: Task, *, set_size: int = SET_SIZE, seed: int = 0,
            progress: bool = True) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(the figures, audio vectors, text vectors) of `model` on a text-to-audio `task`."""
    embeddings = ProtocolEmbeddings(model, progress=progress)
    gt = task.ground_truth
    audio = embeddings.audio([task.audio_path(name) for name in gt.corpus])
    text = embeddings.text(gt.query_texts)
    corpus_index = {name: i for i, name in enumerate(gt.corpus)}
    paired = np.asarray([corpus_index[next(iter(gt.relevance[q]))] for q in gt.query_ids])
    result = evaluate(text @ audio.T, task, submission_id=model.name)
    figures = {
        "model": model.name, "task": task.id, "dimensions": int(audio.shape[1]),
        "audio": _modality(audio, set_size, seed), "text": _modality(text, set_size, seed),
        "alignment": space.alignment(audio[paired], text),
        "modality_gap": space.modality_gap(audio, text),
        "hubness": space.hubness(result.ranking.indices, len(gt.corpus), 10),
        "retrieval": result.metrics,
        "reading": f"sigma and h on {space.DIMS} random dimensions, {space.REPEATS} draws, sets of "
                   f"{min(set_size, len(audio))} items ({SUBSETS} random sets when there are more)",
    }
    return figures, audio, text


def pca_scatter(audio: np.ndarray, text: np.ndarray, path: Path, title: str) -> Path:
    """Both modalities on the first two principal components of their union, as a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    joint = np.concatenate([audio, text])
    centred = joint - joint.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    points = centred @ components[:2].T
    figure, axes = plt.subplots(figsize=(5, 5), dpi=100)
    axes.scatter(*points[len(audio):].T, s=6, alpha=0.5, label=f"text ({len(text)})")
    axes.scatter(*points[:len(audio)].T, s=10, alpha=0.8, label=f"audio ({len(audio)})")
    axes.set(title=title, xlabel="PC 1", ylabel="PC 2")
    axes.legend(loc="best")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())
