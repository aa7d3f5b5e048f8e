"""dse sweep: a design space x a niche's scenarios, evaluated on Ray, written as Parquet.

The run folder (Hydra's, under outputs/) holds the resolved config (.hydra/config.yaml), the
manifest and the dataset. Chunks are deterministic, written atomically, and listed by file, so
an interrupted run resumes without gaps or duplicates (``dse sweep resume=<run folder>``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dse import __version__
from dse.pipeline.niche import Niche, parse_niche
from dse.pipeline.runs import (
    ctrl_c_kept,
    now,
    refuse_existing,
    running_manifest,
    stop_run,
    whole_number,
)
from dse.pipeline.store import RunStore
from dse.pipeline.workers import SweepJob, ray_session, run_chunks
from hwspace.space import Space, parse_space

__all__ = ["make_job", "run_sweep", "read_rows"]

_MODES = ("grid", "random")


def make_job(space: Mapping | Space, niches: list[Mapping | Niche], mode: str,
             samples: int | None, seed: int, chunk_size: int) -> SweepJob:
    """A validated job: every config error surfaces here, before any Ray work."""
    space = space if isinstance(space, Space) else parse_space(space)
    niches = tuple(n if isinstance(n, Niche) else parse_niche(n) for n in niches)
    if mode not in _MODES:
        raise ValueError(f"sweep.mode must be grid or random, got {mode!r}")
    chunk_size = whole_number("sweep.chunk_size", chunk_size)
    seed = whole_number("sweep.seed", seed, low=0)  # numpy seeds are non-negative
    if mode == "grid":
        total = space.grid_size()
    else:
        total = whole_number("sweep.samples", samples)
    return SweepJob(space, niches, mode, total, chunk_size, seed)


def _describe(job: SweepJob) -> dict[str, Any]:
    return dict(space=job.space.name, niches=[n.name for n in job.niches], mode=job.mode,
                candidates=job.total, chunk_size=job.chunk_size, chunks=job.n_chunks,
                seed=job.seed,
                scenarios=[f"{n.name}/{s.name}" for n in job.niches for s in n.scenarios])


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn())


def run_sweep(job: SweepJob, run_dir: str | Path, *, address: str | None = None,
              num_cpus: int | None = None, results_dir: str | None = None,
              resume: bool = False, max_in_flight: int | None = None,
              show_progress: bool = True) -> dict[str, Any]:
    """Evaluate every chunk of ``job`` not yet on disk and return the manifest.

    Raises:
        ValueError: a new run into a folder that holds a run; resuming a folder whose
            manifest describes a different job; a run that failed (its manifest says
            ``failed``, why, and how to resume).
        SystemExit(130): on Ctrl-C, after recording the run as interrupted.
    """
    for key, value in (("ray.num_cpus", num_cpus), ("sweep.max_in_flight", max_in_flight)):
        if value is not None:
            whole_number(key, value)
    store = RunStore(run_dir, results_dir)
    with store.lock():
        if not resume:
            refuse_existing(store, "sweep")
        return _run_sweep(job, store, address, num_cpus, results_dir, resume, max_in_flight,
                          show_progress)


def _run_sweep(job: SweepJob, store: RunStore, address: str | None, num_cpus: int | None,
               results_dir: str | None, resume: bool, max_in_flight: int | None,
               show_progress: bool) -> dict[str, Any]:
    run_dir = store.run_dir
    previous = store.read_manifest() if resume else {}
    if resume and previous.get("job") != _describe(job):
        raise ValueError(f"{run_dir}: the manifest describes another job; cannot resume")
    store.prepare()
    manifest = running_manifest(previous, resume, version=__version__, kind="sweep",
                                job=_describe(job), results_dir=str(store.results_dir),
                                rows_expected=job.total * len(_describe(job)["scenarios"]))
    store.write_manifest(manifest)
    start = time.perf_counter()
    try:
        with ctrl_c_kept(deferred=True) as interrupted:
            _evaluate_missing(job, store, manifest, address, num_cpus, results_dir,
                              max_in_flight, show_progress, lambda: bool(interrupted))
    except (Exception, KeyboardInterrupt) as err:
        stop_run(store, manifest, "sweep", err, dict(
            chunks_done=len(store.done_chunks()), rows=store.rows(),
            seconds=previous.get("seconds", 0) + time.perf_counter() - start))
    manifest.update(status="complete", chunks_done=len(store.done_chunks()), rows=store.rows(),
                    seconds=previous.get("seconds", 0) + time.perf_counter() - start,
                    finished=now())
    store.write_manifest(manifest)
    return manifest


def _evaluate_missing(job: SweepJob, store: RunStore, manifest: dict[str, Any],
                      address: str | None, num_cpus: int | None, results_dir: str | None,
                      max_in_flight: int | None, show_progress: bool,
                      stop: Callable[[], bool]) -> None:
    """Start or join Ray and evaluate every chunk not on disk, with a progress bar, until
    ``stop()`` (a Ctrl-C)."""
    todo = sorted(set(range(job.n_chunks)) - store.done_chunks())
    start = time.perf_counter()
    with ray_session(address, num_cpus) as where, _progress() as bar:
        manifest["ray"] = where
        done_before = job.total - sum(_chunk_size(job, c) for c in todo)
        task = bar.add_task("sweep", total=job.total, completed=done_before, rate="",
                            visible=show_progress)

        def on_result(chunk: int, result: object) -> None:
            if isinstance(result, pa.Table):
                store.write_chunk(chunk, result)
            bar.advance(task, _chunk_size(job, chunk))
            seconds = time.perf_counter() - start
            done = bar.tasks[task].completed - done_before
            bar.update(task, rate=f"{done / max(seconds, 1e-9):,.0f} candidates/s")

        run_chunks(job, todo, on_result, results_dir=results_dir, max_in_flight=max_in_flight,
                   stop=stop)


def _chunk_size(job: SweepJob, chunk: int) -> int:
    return min(job.chunk_size, job.total - chunk * job.chunk_size)


def read_rows(results_dir: str | Path, columns: list[str] | None = None) -> pa.Table:
    """The run's dataset (every chunk file) as one table."""
    files = sorted(Path(results_dir).glob("chunk-*.parquet"))
    if not files:
        raise ValueError(f"{results_dir}: no results")
    return pa.concat_tables([pq.read_table(f, columns=columns) for f in files],
                            promote_options="permissive")
