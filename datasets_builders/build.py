"""Run a builder and write the result: a `DatasetDict` keyed by split, all or nothing.

The builder writes into the LARB cache (`datasets/`); the result is saved into a hidden
folder beside `--output` and swapped into place only when every split is written, so a
failed or killed build leaves the old output (or none) as it was
(`benchmark.output_folders`). `--overwrite` replaces only a folder that LARB wrote. Downloads
and extractions are kept in the cache, so running the same command again after an interruption resumes from there.
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

import datasets

from benchmark import assets, output_folders
from benchmark.atomic import os_faults
from benchmark.errors import WRITE_FAULTS, LarbError, os_error
from datasets_builders import builder_class, mapped_pages
from datasets_builders.audio import check_sample_rate
from datasets_builders.base import LarbBuilder

log = logging.getLogger("larb.data")
PUSH_SHARD_SIZE = "500MB"


def resolve_splits(cls: type[LarbBuilder], splits: Iterable[str] | None) -> tuple[str, ...]:
    """The requested splits ('all', comma lists and repeats allowed), defaults when none."""
    wanted: list[str] = []
    for entry in splits or ():
        wanted += [s.strip() for s in entry.split(",") if s.strip()]
    if not wanted:
        return cls.DEFAULT_SPLITS
    if "all" in wanted:
        return cls.SPLITS
    return tuple(dict.fromkeys(wanted))


def make_builder(name: str, *, splits: Iterable[str] | None = None, sample_rate: int | None = None,
                 data_dir: str | Path | None = None, options: dict[str, str] | None = None) -> LarbBuilder:
    """A configured builder, its request checked before any download."""
    cls = builder_class(name)
    chosen = resolve_splits(cls, splits)
    options = dict(options or {})
    cls.check_request(chosen, options)
    check_sample_rate(sample_rate)
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser().resolve()
        if not data_dir.is_dir():
            raise LarbError("the data folder does not exist.", path=data_dir,
                            fix="pass the folder that holds the official files you downloaded.")
    return cls(cache_dir=str(assets.cache_dir() / "datasets"), data_dir=str(data_dir) if data_dir else None,
               sample_rate=sample_rate, splits=chosen, options=tuple(sorted(options.items())))


def build(name: str, *, splits: Iterable[str] | None = None, sample_rate: int | None = None,
          data_dir: str | Path | None = None, output: str | Path | None = None, num_proc: int | None = None,
          push_to_hub: str | None = None, options: dict[str, str] | None = None,
          overwrite: bool = False) -> datasets.DatasetDict:
    """Build dataset `name` and save it to `output` and/or push it to the Hub."""
    if output is None and push_to_hub is None:
        raise LarbError("nothing would be kept of this build.", fix="give --output DIR or --push-to-hub REPO.")
    target = Path(output).expanduser().resolve() if output is not None else None
    if target is not None:
        reads = [Path(data_dir).expanduser()] if data_dir is not None else []
        output_folders.check_target(target, overwrite=overwrite, reads=[*reads, assets.cache_dir()])
    if num_proc is not None and num_proc < 1:
        raise LarbError(f"--num-proc must be at least 1, not {num_proc}.", fix="pass --num-proc 1 or more.")
    builder = make_builder(name, splits=splits, sample_rate=sample_rate, data_dir=data_dir, options=options)
    try:
        builder.download_and_prepare(num_proc=num_proc if num_proc and num_proc > 1 else None,
                                     download_mode=datasets.DownloadMode.FORCE_REDOWNLOAD)
    except Exception as exc:
        cause = _user_error(exc)
        if cause is not None:
            raise cause from None
        raise
    result = datasets.DatasetDict({split: finish(builder.as_dataset(split=split), sample_rate)
                                   for split in builder.splits})
    if target is not None:
        save_atomically(result, target, overwrite=overwrite)
        shutil.rmtree(builder.cache_dir, ignore_errors=True)
        result = datasets.load_from_disk(str(target))
    if push_to_hub:  # datasets uploads each split as Parquet shards of at most PUSH_SHARD_SIZE
        result.push_to_hub(push_to_hub, max_shard_size=PUSH_SHARD_SIZE)
    return result


def finish(dataset: datasets.Dataset, sample_rate: int | None) -> datasets.Dataset:
    """Type the stored audio struct as an `Audio` column (no decoding, so no torchcodec needed)."""
    return dataset.cast_column("audio", datasets.Audio(sampling_rate=sample_rate, decode=False))


def save_atomically(result: datasets.DatasetDict, target: Path, *, overwrite: bool = False) -> Path:
    """`save_to_disk` into a marked staging folder beside `target`, then swap it into place."""
    staging = output_folders.staging_folder(target, "larb data build")
    try:
        sources = [f["filename"] for split in result.values() for f in split.cache_files]
        with os_faults(staging, doing=f"saving the build into {target}"), mapped_pages.released(sources):
            result.save_to_disk(str(staging))
        output_folders.publish(staging, target, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _user_error(exc: BaseException) -> LarbError | None:
    """The `LarbError` behind a `datasets` wrapper (DatasetGenerationError and the like).

    A full disk or a read-only cache is named as such, not blamed on the archive being read.
    From a worker process (`--num-proc`) only the traceback text comes back (a pool's
    RemoteTraceback); its last `LarbError:` line is the message, already rendered."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, LarbError):
            return exc
        if isinstance(exc, OSError) and exc.errno in WRITE_FAULTS:
            return os_error(exc, doing="building the dataset in the LARB cache")
        if isinstance(exc, OSError) and "Not enough disk space" in str(exc):  # datasets' own check
            return os_error(OSError(errno.ENOSPC, "No space left on device"), assets.cache_dir(),
                            doing="building the dataset in the LARB cache")
        remote = getattr(exc, "tb", None)
        if isinstance(remote, str) and _REMOTE_MARK in remote:
            return LarbError(remote.rsplit(_REMOTE_MARK, 1)[1].splitlines()[0].strip())
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


_REMOTE_MARK = "benchmark.errors.LarbError: "
