"""Many small downloads (YouTube segments, web audio files): parallel, polite, resumable.

Each job writes one file. A file already present is done. Every outcome is kept in a JSON
manifest beside the files: `ok`, `unavailable` (permanent: removed, private, 404; not tried
again unless asked) or `failed` (transient: tried again next run). Unavailable clips are
data, not errors: the build records them and goes on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmark.atomic import atomic_write_text
from benchmark.errors import LarbError

log = logging.getLogger("larb.data")

MANIFEST = "manifest.json"


class Unavailable(Exception):
    """The source says this item is gone for good (removed, private, not found)."""


@dataclass(frozen=True)
class Job:
    key: str
    target: Path
    source: str


class RateLimiter:
    """Spaces the starts of requests by at least `interval` seconds, across threads."""

    def __init__(self, interval: float) -> None:
        self.interval = max(0.0, interval)
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class Manifest:
    """The outcome of every job, saved atomically (written by the coordinating thread only)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST
        self.entries: dict[str, dict[str, object]] = {}
        if self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text("utf-8")).get("items", {})
            except (json.JSONDecodeError, AttributeError):
                log.warning("%s is unreadable; starting a new manifest.", self.path)

    def status(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return str(entry["status"]) if entry else None

    def reason(self, key: str) -> str:
        entry = self.entries.get(key)
        return str(entry.get("reason", "")) if entry else ""

    def record(self, key: str, status: str, reason: str = "") -> None:
        previous = self.entries.get(key, {})
        self.entries[key] = {"status": status, "reason": reason[:500],
                             "attempts": int(previous.get("attempts", 0)) + 1,
                             "updated": datetime.now(UTC).isoformat(timespec="seconds")}

    def save(self) -> None:
        counts: dict[str, int] = {}
        for entry in self.entries.values():
            counts[str(entry["status"])] = counts.get(str(entry["status"]), 0) + 1
        atomic_write_text(self.path, json.dumps({"counts": counts, "items": self.entries}, indent=1,
                                                sort_keys=True, ensure_ascii=False))


def run(jobs: Iterable[Job], fetch: Callable[[Job], None], folder: Path, *, workers: int = 4,
        interval: float = 1.0, retry_unavailable: bool = False, progress: bool = True,
        description: str = "downloading") -> Manifest:
    """Run `fetch(job)` for every job whose target is missing; return the updated manifest.

    `fetch` writes `job.target` (atomically) or raises `Unavailable` / any other exception
    (recorded as failed); a `LarbError` stops the whole run, the manifest saved."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(folder)
    todo = []
    for job in jobs:
        if job.target.is_file():
            if manifest.status(job.key) != "ok":
                manifest.record(job.key, "ok")
            continue
        if manifest.status(job.key) == "unavailable" and not retry_unavailable:
            continue
        todo.append(job)
    limiter = RateLimiter(interval)

    def task(job: Job) -> None:
        limiter.wait()
        fetch(job)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=description, unit="clip", leave=False, disable=None if progress else True)
    last_save = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: dict[Future, Job] = {}
        queue = iter(todo)
        try:
            while True:
                while len(pending) < 2 * max(1, workers):
                    job = next(queue, None)
                    if job is None:
                        break
                    pending[pool.submit(task, job)] = job
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    error = future.exception()
                    if isinstance(error, LarbError):  # the user must act (e.g. YouTube's bot check)
                        raise error
                    if error is None and job.target.is_file():
                        manifest.record(job.key, "ok")
                    elif isinstance(error, Unavailable):
                        manifest.record(job.key, "unavailable", str(error))
                    else:
                        manifest.record(job.key, "failed", f"{type(error).__name__}: {error}" if error
                                        else "no file was written")
                    bar.update(1)
                if time.monotonic() - last_save > 10:
                    manifest.save()
                    last_save = time.monotonic()
        finally:
            for future in pending:
                future.cancel()
            manifest.save()
            bar.close()
    return manifest
