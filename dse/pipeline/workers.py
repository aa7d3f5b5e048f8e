"""The one Ray adapter: start or join a cluster, run chunk tasks with backpressure.

Each task evaluates thousands of candidates (one vectorised chunk); the job description is
put in the object store once; results return in completion order via ``ray.wait`` with a
bounded number of tasks in flight (Ray design patterns: too-fine-grained tasks,
pass-large-arg-by-value, limit-pending-tasks). A worker that dies is retried by Ray.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import ray

from dse.pipeline.niche import Niche
from dse.pipeline.rows import evaluate_rows
from dse.pipeline.store import chunk_path, write_chunk
from hwspace.space import Space

__all__ = ["SweepJob", "ray_session", "check_port", "CONNECT_TIMEOUT_S", "run_chunks",
           "chunk_candidates", "RayEvaluator"]


@dataclass(frozen=True)
class SweepJob:
    """Everything a worker needs to produce any chunk of a run, deterministically."""

    space: Space
    niches: tuple[Niche, ...]
    mode: str  # grid | random
    total: int  # candidates in the run
    chunk_size: int
    seed: int = 0

    @property
    def n_chunks(self) -> int:
        return -(-self.total // self.chunk_size)


def chunk_candidates(job: SweepJob, chunk: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(space columns, candidate ids) of chunk ``chunk``: the same wherever it runs."""
    start = chunk * job.chunk_size
    stop = min(start + job.chunk_size, job.total)
    ids = np.arange(start, stop, dtype=np.int64)
    if job.mode == "grid":
        return job.space.grid_chunk(start, stop), ids
    return job.space.random_chunk(job.seed, chunk, stop - start), ids


def _evaluate(job: SweepJob, chunk: int, results_dir: str | None) -> pa.Table | int:
    params, ids = chunk_candidates(job, chunk)
    table = evaluate_rows(params, ids, job.niches)
    if results_dir is None:
        return table
    write_chunk(chunk_path(results_dir, chunk), table)
    return table.num_rows


# Worker death (a killed process, a lost node) is retried; a bug in the model is not.
_evaluate_remote = ray.remote(max_retries=5, retry_exceptions=False)(_evaluate)


_rows_remote = ray.remote(max_retries=5, retry_exceptions=False)(evaluate_rows)


class RayEvaluator:
    """Evaluates a batch of candidates (a search generation) as one vectorised chunk per
    CPU of the cluster; the niches are put in the object store once."""

    def __init__(self, niches: Sequence[Niche]):
        self._niches = ray.put(tuple(niches))
        self._tasks = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def __call__(self, params: dict[str, np.ndarray], ids: np.ndarray) -> pa.Table:
        parts = np.array_split(np.arange(len(ids)), min(self._tasks, len(ids)))
        refs = [_rows_remote.remote({k: v[p] for k, v in params.items()}, ids[p], self._niches)
                for p in parts if len(p)]
        return pa.concat_tables(ray.get(refs), promote_options="permissive")


# Ray retries an unreachable GCS for minutes (127.0.0.1:1, a port that is not Ray's); a wrong
# ray.address fails within this many seconds instead.
CONNECT_TIMEOUT_S = 20


def _unreachable(address: str, why: object) -> ValueError:
    return ValueError(f"ray.address={address}: the Ray cluster is unreachable ({why}); start "
                      "it with `ray start --head` or fix the address (docs/cluster.md)")


def check_port(address: str) -> None:
    """For HOST:PORT, a TCP connection first: a refused port or an unknown host fails now."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"ray.address={address}: give auto or HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise _unreachable(address, err.strerror or err) from None


def _join(address: str, env: dict) -> None:
    """ray.init(address) that fails within CONNECT_TIMEOUT_S with one clear ValueError. Ray
    blocks in native code, out of reach of signals; it runs in a daemon thread the process
    can leave behind."""
    if address != "auto":
        check_port(address)
    failure: list[BaseException] = []

    def connect() -> None:
        try:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            failure.append(err)

    thread = threading.Thread(target=connect, daemon=True, name="ray-connect")
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    if thread.is_alive():
        raise _unreachable(address, f"no answer in {CONNECT_TIMEOUT_S} s")
    if failure:
        raise _unreachable(address, str(failure[0]).splitlines()[0])


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[str]:
    """Join the cluster at ``address`` ("auto" or HOST:PORT), or start a local instance that
    lives as long as the block. Yields a description of where the work runs."""
    if ray.is_initialized():
        yield "ray (already connected)"
        return
    env = {"env_vars": {"PYTHONWARNINGS": "ignore"}}
    if address:
        _join(address, env)
        where = f"ray cluster at {address}"
    else:
        # "local": a new instance even where `ray start` left a cluster running on this host.
        try:
            ray.init(address="local", num_cpus=num_cpus or os.cpu_count(),
                     include_dashboard=False, runtime_env=env, log_to_driver=False)
        except BaseException:  # Ctrl-C while Ray starts: stop what it started so far
            ray.shutdown()
            raise
        where = "local ray instance"
    try:
        yield f"{where} ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
    finally:
        ray.shutdown()


# How often a sweep's driver looks for a Ctrl-C while its chunks run (dse.pipeline.runs
# ctrl_c_kept, deferred).
_POLL_S = 0.2


def run_chunks(job: SweepJob, chunks: Sequence[int], on_result: Callable[[int, object], None],
               results_dir: str | None = None, max_in_flight: int | None = None,
               stop: Callable[[], bool] = lambda: False) -> None:
    """Evaluate ``chunks`` on Ray; call ``on_result(chunk, table or row count)`` as each
    completes. With ``results_dir`` workers write their chunks there (a path every node
    reaches) and return row counts; otherwise tables return to the driver. ``stop()`` is
    polled between completions (at least every _POLL_S): True raises KeyboardInterrupt."""
    job_ref = ray.put(job)
    limit = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    todo: Iterable[int] = iter(chunks)
    pending: dict[ray.ObjectRef, int] = {}
    try:
        while True:
            if stop():
                raise KeyboardInterrupt
            for chunk in todo:
                pending[_evaluate_remote.remote(job_ref, chunk, results_dir)] = chunk
                if len(pending) >= limit:
                    break
            if not pending:
                return
            done, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
            if done:
                chunk = pending.pop(done[0])
                on_result(chunk, ray.get(done[0]))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
