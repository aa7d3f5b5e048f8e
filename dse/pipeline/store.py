"""Run folders under outputs/: a Parquet dataset written chunk by chunk, and a manifest.

A chunk is written to a temporary file and renamed into place, so a chunk file is either
complete or absent; the set of chunk files is the truth about what is done. The manifest says
what the run is (rows, chunks, seconds, version, status) and is rewritten atomically too.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["RunStore", "MANIFEST", "RESULTS", "LOCK", "JOURNAL", "chunk_path", "write_chunk",
           "hold_lock", "lock_held"]

MANIFEST = "manifest.json"
LOCK = "run.lock"
RESULTS = "results"
JOURNAL = "study.journal"
_CHUNK = re.compile(r"^chunk-(\d{6})\.parquet$")
# Run folders whose lock this process holds until it exits (taken before Hydra writes into
# the folder): folder -> the open lock file. flock is per open file, so a second flock from
# this process would refuse its own run.
_HELD: dict[Path, IO] = {}


def _busy(run_dir: Path) -> ValueError:
    return ValueError(f"{run_dir}: another dse process is writing this run folder ({LOCK} is "
                      f"held); wait for it to finish")


def hold_lock(run_dir: str | Path) -> None:
    """Take ``<run>/run.lock`` for the rest of this process (ValueError when another process
    holds it). flock is released by the kernel when the holder dies, kill -9 included."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _HELD:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK, "a+")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise _busy(run_dir) from None
    _HELD[run_dir] = handle


def lock_held(run_dir: str | Path) -> bool:
    """Whether a process (this one included) writes ``run_dir`` now; creates no file."""
    run_dir = Path(run_dir).resolve()
    if run_dir in _HELD:
        return True
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


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
        if self.run_dir.resolve() in _HELD:  # taken by the CLI before Hydra started
            yield
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / LOCK, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _busy(self.run_dir) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def holds_run(self) -> bool:
        """Whether a run already lives here: a manifest, a study journal or Parquet results
        (a Hydra config or a lock alone is not a run: a refused start may leave them)."""
        if (self.run_dir / MANIFEST).exists() or (self.run_dir / JOURNAL).exists():
            return True
        return self.results_dir.is_dir() and any(self.results_dir.glob("*.parquet"))

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
        """Replace the manifest atomically; on a full disk, overwrite it in place (the file
        has its blocks already), so that a run can still record that it failed."""
        path = self.run_dir / MANIFEST
        tmp = path.with_suffix(".json.tmp")
        text = json.dumps(manifest, indent=2, default=str)
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            if err.errno != errno.ENOSPC or not path.exists():
                raise
            with open(path, "r+") as handle:
                handle.write(text)
                handle.truncate()

    def read_manifest(self) -> dict[str, Any]:
        """The manifest; ValueError naming it when it is missing or not a JSON object."""
        path = self.run_dir / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"{self.run_dir}: not a run folder (no {MANIFEST})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a readable manifest ({err})") from None
        if not isinstance(manifest, dict):
            raise ValueError(f"{path}: not a readable manifest (not a JSON object)")
        return manifest


def chunk_path(results_dir: str | Path, chunk: int, suffix: str = "") -> Path:
    """``<results>/chunk-NNNNNN[-suffix].parquet``: the one naming of dataset files."""
    return Path(results_dir) / f"chunk-{chunk:06d}{('-' + suffix) if suffix else ''}.parquet"


def write_chunk(path: Path, table: pa.Table) -> None:
    """Write ``table`` to ``path`` atomically: a temporary file in the same folder, then a
    rename (atomic on POSIX within one file system)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        pq.write_table(table, tmp, compression="zstd", compression_level=1)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk gets its space back for the manifest
        raise
    os.replace(tmp, path)
