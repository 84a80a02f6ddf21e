"""The files the harness's tasks are built from (ground truth, label lists), as asset declarations.

Declared here, apart from `benchmark.tasks`, so that the asset registry can list them (the
`larb.assets` entry point `benchmark.task_assets:ASSETS`) without importing the task registry,
and `benchmark.tasks` can fetch them without the registry importing it back.
"""

from __future__ import annotations

from benchmark.assets import Asset

_ZENODO_CLOTHO = "https://zenodo.org/records/4783391/files/{}?download=1"
_RELEVANCE_REPO = ("https://raw.githubusercontent.com/xieh97/retrieval-relevance-crowdsourcing/"
                   "main/data/{}")

ASSETS: tuple[Asset, ...] = (
    Asset("clotho-v2.1/captions-evaluation", _ZENODO_CLOTHO.format("clotho_captions_evaluation.csv"),
          "md5:1b16b9e57cf7bdb7f13a13802aeb57e2", description="Clotho v2.1 evaluation captions"),
    Asset("clotho-v2.1/captions-validation", _ZENODO_CLOTHO.format("clotho_captions_validation.csv"),
          "md5:5879e023032b22a2c930aaa0528bead4", description="Clotho v2.1 validation captions"),
    Asset("clotho-v2.1/captions-development", _ZENODO_CLOTHO.format("clotho_captions_development.csv"),
          "md5:d4090b39ce9f2491908eebf4d5b09bae", description="Clotho v2.1 development captions"),
    Asset("dcase2025/multi-positive-evaluation",
          "https://raw.githubusercontent.com/CPJKU/dcase2025_task6_baseline/main/resources/metadata_eval.csv",
          "sha256:b89605991d1f3018088d5ce8619b7da8fe5e52c9cd576394977f141515f7fc65",
          description="DCASE 2025 Task 6 extra correspondence annotations (Clotho evaluation)"),
    Asset("tau-graded-2023/evaluation-queries", _RELEVANCE_REPO.format("query_data/evaluation_queries.csv"),
          "sha256:355ac320599bd0f69d3ca82b4d053f17705518d058b5154b2f27e5517ba26520"),
    Asset("tau-graded-2023/evaluation-relevances",
          _RELEVANCE_REPO.format("relevance_data/evaluation_relevances.csv"),
          "sha256:f71efb2d00bac52f2b3d61a4ac02fc2ccfd7f46e3655dfc117de4a2ddcbb239c"),
    Asset("tau-graded-2023/evaluation-text", _RELEVANCE_REPO.format("text_data/evaluation_text.csv"),
          "sha256:485969a0a369a2b87567767ec45e5b11f0bdb8b941768a60b89fb50a7bfe4640"),
    Asset("tau-graded-2023/evaluation-audio-metadata",
          _RELEVANCE_REPO.format("audio_metadata/evaluation_audio_metadata.csv"),
          "sha256:ee982ff0e673e776eac28cc05aa6023dd88bd9d9b7db85975f7dd42331168026"),
    # the Clotho metadata of the other two splits, in the same layout (source ids for the contamination audit)
    Asset("tau-graded-2023/development-audio-metadata",
          _RELEVANCE_REPO.format("audio_metadata/development_audio_metadata.csv"),
          "sha256:ec43c70ab01bbf91d1cfeac72cacdba0112dbebd1821bf9701b5a38b31a49cc8"),
    Asset("tau-graded-2023/validation-audio-metadata",
          _RELEVANCE_REPO.format("audio_metadata/validation_audio_metadata.csv"),
          "sha256:93dd92fb8cef3d3bdcf7cd1f0df5bbf986f34257463b78883a58ef2e5392c9ce"),
    Asset("audiocaps-v1/test-captions",
          "https://raw.githubusercontent.com/cdjkim/audiocaps/master/dataset/test.csv",
          "md5:9775aec3f52037d12cacda132dd5316d", description="AudioCaps v1 test captions"),
    Asset("audioset/class_labels_indices",
          "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/class_labels_indices.csv",
          "sha256:cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429",
          description="the 527 AudioSet class names"),
)


def declared(name: str) -> Asset:
    """One of `ASSETS` by name, without the registry (for modules that declare assets themselves)."""
    return next(asset for asset in ASSETS if asset.name == name)
