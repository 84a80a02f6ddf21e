"""What every LARB builder shares: configuration, the common schema, and example writing.

A builder is a `datasets.GeneratorBasedBuilder` used programmatically (`datasets` >= 4 runs
no loading scripts). Subclasses say which splits exist and, per split, return the list of
items to write (`_items`): a dict per clip with `audio_path` (or None when the clip is
unavailable), `file_name`, `captions` and the dataset's own metadata columns. The base turns
each item into a row of the common schema, resampling the audio if asked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import datasets

from benchmark.errors import LarbError
from datasets_builders.audio import AudioReadError, content_hash, encode

log = logging.getLogger("larb.data")
BUILD_OPTIONS_MARK = "LARB build options: "


def read_build_options(description: str | None) -> dict[str, str]:
    """The dataset options a build recorded in its info (`LarbBuilder._info`); {} when it has none."""
    text = (description or "").partition(BUILD_OPTIONS_MARK)[2]
    try:
        options = json.loads(text).get("options", {}) if text else {}
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in options.items()} if isinstance(options, dict) else {}


@dataclass(frozen=True)
class Option:
    """A dataset-specific build option (`--option KEY=VALUE`)."""

    default: str
    help: str
    choices: tuple[str, ...] = ()


@dataclass
class LarbConfig(datasets.BuilderConfig):
    """Builder configuration: target rate, splits to build, dataset options (sorted pairs)."""

    sample_rate: int | None = None
    splits: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def common_features(extra: dict[str, Any]) -> datasets.Features:
    """The schema all LARB datasets share, plus a dataset's own columns."""
    return datasets.Features({
        "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        "file_name": datasets.Value("string"),
        "captions": datasets.List(datasets.Value("string")),
        "dataset": datasets.Value("string"),
        "split": datasets.Value("string"),
        "sampling_rate": datasets.Value("int32"),
        "duration": datasets.Value("float64"),
        "channels": datasets.Value("int32"),
        # where the clip came from (`benchmark.provenance`: freesound:ID, youtube:ID, ...), the
        # YouTube segment's start in seconds, and the sha256 of the decoded audio (`audio.content_hash`)
        "source_id": datasets.Value("string"),
        "source_start": datasets.Value("float64"),
        "audio_sha256": datasets.Value("string"),
        **extra,
    })


class LarbBuilder(datasets.GeneratorBasedBuilder):
    """Base of the LARB builders. Subclasses fill in the class attributes and `_items`."""

    BUILDER_CONFIG_CLASS = LarbConfig
    VERSION = datasets.Version("1.0.0")
    # Audio rows are large: small writer batches keep peak memory low.
    DEFAULT_WRITER_BATCH_SIZE = 32

    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    HOMEPAGE: ClassVar[str] = ""
    LICENSE: ClassVar[str] = ""
    CITATION: ClassVar[str] = ""
    SPLITS: ClassVar[tuple[str, ...]] = ()
    DEFAULT_SPLITS: ClassVar[tuple[str, ...]] = ()
    OPTIONS: ClassVar[dict[str, Option]] = {}
    # what to do with an audio file that cannot be decoded: "raise" (official archives) or
    # "drop" the row (web-crawled collections with known broken files)
    ON_BAD_AUDIO: ClassVar[str] = "raise"
    EXTRA_FEATURES: ClassVar[dict[str, Any]] = {}

    # -- configuration --------------------------------------------------------------------

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.config.splits) or self.DEFAULT_SPLITS

    @property
    def data_path(self) -> Path | None:
        return Path(self.config.data_dir).expanduser() if self.config.data_dir else None

    def option(self, key: str) -> str:
        return dict(self.config.options).get(key, self.OPTIONS[key].default)

    def flag(self, key: str) -> bool:
        """A yes/no option."""
        value = self.option(key).lower()
        if value in ("yes", "true", "1"):
            return True
        if value in ("no", "false", "0"):
            return False
        raise LarbError(f"option {key}={value!r} is not yes or no.", fix=f"write --option {key}=yes or {key}=no.")

    def number(self, key: str, kind: type[int | float]) -> int | float:
        """A non-negative numeric option."""
        try:
            value = kind(self.option(key))
        except ValueError:
            raise LarbError(f"option {key}={self.option(key)!r} is not a number.",
                            fix=f"write --option {key}=<number>.") from None
        if value < 0:
            raise LarbError(f"option {key} must not be negative.", fix=f"write --option {key}=<number >= 0>.")
        return value

    @classmethod
    def check_request(cls, splits: tuple[str, ...], options: dict[str, str]) -> None:
        """Refuse unknown splits and options before any work starts."""
        unknown = [s for s in splits if s not in cls.SPLITS]
        if unknown:
            raise LarbError(f"{cls.NAME} has no split {unknown[0]!r}.",
                            fix=f"choose among {', '.join(cls.SPLITS)} (or 'all').")
        for key, value in options.items():
            if key not in cls.OPTIONS:
                known = ", ".join(cls.OPTIONS) or "none"
                raise LarbError(f"{cls.NAME} has no option {key!r}.", fix=f"its options are: {known}.")
            choices = cls.OPTIONS[key].choices
            if choices and value not in choices:
                raise LarbError(f"option {key}={value!r} is not allowed for {cls.NAME}.",
                                fix=f"choose one of {', '.join(choices)}.")

    def build_options(self) -> dict[str, object]:
        """Everything that shaped this build, recorded in the dataset's info."""
        return {"dataset": self.NAME, "splits": list(self.splits), "sample_rate": self.config.sample_rate,
                "options": {k: self.option(k) for k in self.OPTIONS}}

    # -- datasets hooks -------------------------------------------------------------------

    def _info(self) -> datasets.DatasetInfo:
        description = f"{self.TITLE}. Built by LARB (datasets_builders). " \
                      f"{BUILD_OPTIONS_MARK}{json.dumps(self.build_options(), sort_keys=True)}"
        return datasets.DatasetInfo(description=description, features=common_features(self.EXTRA_FEATURES),
                                    homepage=self.HOMEPAGE, license=self.LICENSE, citation=self.CITATION)

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        generators = []
        for split in self.splits:
            items = self._items(split)
            for index, item in enumerate(items):
                item["_index"] = index
            generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"items": items, "split": split}))
        return generators

    def _items(self, split: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _generate_examples(self, items: list[dict[str, Any]], split: str) -> Iterator[tuple[int, dict]]:
        for item in items:
            row = self._row(item, split)
            if row is not None:
                yield item["_index"], row

    def source(self, item: dict[str, Any], split: str) -> tuple[str | None, float | None]:
        """(source identity, start in seconds) of an item; each dataset says how its metadata names it."""
        return None, None

    def _row(self, item: dict[str, Any], split: str) -> dict[str, Any] | None:
        row = {k: v for k, v in item.items() if k not in ("audio_path", "_index")}
        source_id, start = self.source(item, split)
        row.update(dataset=self.NAME, split=split, audio=None, sampling_rate=None, duration=None, channels=None,
                   source_id=source_id, source_start=start, audio_sha256=None)
        path = item.get("audio_path")
        if path is None:
            return row
        try:
            clip = encode(Path(path), self.config.sample_rate)
        except AudioReadError as exc:
            if self.ON_BAD_AUDIO == "drop":
                log.warning("dropping %s: the audio cannot be decoded (%s)", item.get("file_name"), exc)
                return None
            raise LarbError(f"cannot decode the audio of {item.get('file_name')!r}: {exc}.", path=path,
                            fix="the file is corrupt: delete it (or its extracted folder) and run again, "
                                "or restore the official file.") from None
        row.update(audio=clip.column(), sampling_rate=clip.sampling_rate, duration=clip.duration,
                   channels=clip.channels, audio_sha256=content_hash(clip.data))
        return row
