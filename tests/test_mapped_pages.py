"""`mapped_pages`: the pages of a read-only memory map leave the process's RSS, its data do not change."""

from __future__ import annotations

import hashlib
import mmap
import sys
from pathlib import Path

import numpy as np
import pytest

from datasets_builders.mapped_pages import release, released


def _rss_file_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise and /proc are Linux's")
def test_released_pages_leave_the_rss_and_reads_see_the_same_data(tmp_path):
    path = tmp_path / "shard.arrow"
    path.write_bytes(np.random.default_rng(0).bytes(48 << 20))
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        digest = hashlib.sha256(mapped).hexdigest()  # touches every page
        before = _rss_file_bytes()
        assert release({str(path)}) >= 48 << 20
        assert before - _rss_file_bytes() > 40 << 20
        assert hashlib.sha256(mapped).hexdigest() == digest
        with released([path]):
            hashlib.sha256(mapped).hexdigest()
        assert before - _rss_file_bytes() > 40 << 20  # released again when the block ends
        assert release({str(tmp_path / "other.arrow")}) == 0  # other files are left alone
