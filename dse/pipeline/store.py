"""Run folders under outputs/: a Parquet dataset written chunk by chunk, and a manifest.

A chunk is written to a temporary file and renamed into place, so a chunk file is either
complete or absent; the set of chunk files is the truth about what is done. The manifest says
what the run is (rows, chunks, seconds, version, status) and is rewritten atomically too.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["RunStore", "MANIFEST", "RESULTS", "LOCK", "chunk_path", "write_chunk"]

MANIFEST = "manifest.json"
LOCK = "run.lock"
RESULTS = "results"
_CHUNK = re.compile(r"^chunk-(\d{6})\.parquet$")


class RunStore:
    """The files of one run: ``<run>/manifest.json`` and ``<results>/chunk-NNNNNN.parquet``
    (``results`` defaults to ``<run>/results``; a path every Ray node reaches may replace it)."""

    def __init__(self, run_dir: str | Path, results_dir: str | Path | None = None):
        self.run_dir = Path(run_dir)
        self.results_dir = Path(results_dir) if results_dir else self.run_dir / RESULTS

    def prepare(self) -> None:
        """Create the folders and drop temporaries an interrupted writer left behind."""
        self.results_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.results_dir.glob("*.tmp"):
            tmp.unlink()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``<run>/run.lock`` for the block: a second writer of this folder (two resumes
        at once) gets a ValueError. flock is released by the kernel when the holder dies,
        kill -9 included, so a stale lock never blocks a resume."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / LOCK, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(f"{self.run_dir}: another dse process is writing this run "
                                 f"folder ({LOCK} is held); wait for it to finish") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def chunk_path(self, chunk: int) -> Path:
        return chunk_path(self.results_dir, chunk)

    def done_chunks(self) -> set[int]:
        if not self.results_dir.exists():
            return set()
        return {int(m.group(1)) for p in self.results_dir.iterdir()
                if (m := _CHUNK.match(p.name))}

    def write_chunk(self, chunk: int, table: pa.Table) -> None:
        write_chunk(self.chunk_path(chunk), table)

    def rows(self) -> int:
        return sum(pq.read_metadata(p).num_rows for p in self.chunk_files())

    def rows_any(self) -> int:
        """Rows of every Parquet file in the results folder (search recovery files too)."""
        return sum(pq.read_metadata(p).num_rows for p in self.results_dir.glob("*.parquet"))

    def chunk_files(self) -> list[Path]:
        return sorted(self.chunk_path(c) for c in self.done_chunks())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        path = self.run_dir / MANIFEST
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str))
        os.replace(tmp, path)

    def read_manifest(self) -> dict[str, Any]:
        path = self.run_dir / MANIFEST
        if not path.exists():
            raise ValueError(f"{self.run_dir}: not a run folder (no {MANIFEST})")
        return json.loads(path.read_text())


def chunk_path(results_dir: str | Path, chunk: int, suffix: str = "") -> Path:
    """``<results>/chunk-NNNNNN[-suffix].parquet``: the one naming of dataset files."""
    return Path(results_dir) / f"chunk-{chunk:06d}{('-' + suffix) if suffix else ''}.parquet"


def write_chunk(path: Path, table: pa.Table) -> None:
    """Write ``table`` to ``path`` atomically: a temporary file in the same folder, then a
    rename (atomic on POSIX within one file system)."""
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=1)
    os.replace(tmp, path)
