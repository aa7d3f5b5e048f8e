"""Sweep scale: a random sweep of the `wide` space over the three niches, end to end.

Wall time runs from before Ray starts to the last Parquet byte; memory is the peak summed PSS
(proportional set size, so shared object-store pages count once) of this process and every
descendant (Ray's GCS, raylet and workers), sampled every 0.2 s from /proc (Linux).

    python benchmarks/sweep_scale.py [--candidates 1000000] [--chunk-size 20000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from omegaconf import OmegaConf

from dse.pipeline.sweep import make_job, run_sweep
from dse.presets import CONF_DIR

NICHES = ("local_llm", "hyperscale", "edge_vision")


def _conf(group: str, name: str) -> dict:
    data = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"))
    data.pop("defaults", None)
    return data


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(status.parent.name))
    return tree


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_pss(root: int) -> int:
    tree, total, stack = _children(), 0, [root]
    while stack:
        pid = stack.pop()
        total += _pss_bytes(pid)
        stack += tree.get(pid, [])
    return total


class PeakMemory(threading.Thread):
    """Samples the summed PSS of this process tree until stopped."""

    def __init__(self, period_s: float = 0.2):
        super().__init__(daemon=True)
        self.period_s, self.peak, self._stop_event = period_s, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _tree_pss(os.getpid()))
            self._stop_event.wait(self.period_s)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--cpus", type=int, default=None)
    args = parser.parse_args()
    job = make_job(_conf("space", "wide"), [_conf("niche", n) for n in NICHES], "random",
                   args.candidates, seed=0, chunk_size=args.chunk_size)
    out = Path(tempfile.mkdtemp(prefix="dse-scale-"))
    memory = PeakMemory()
    memory.start()
    start = time.perf_counter()
    manifest = run_sweep(job, out, num_cpus=args.cpus)
    seconds = time.perf_counter() - start
    peak = memory.stop()
    size = sum(f.stat().st_size for f in (out / "results").glob("*.parquet"))
    print(f"candidates      {job.total:,} x {len(manifest['job']['scenarios'])} scenarios")
    print(f"rows            {manifest['rows']:,} in {manifest['chunks_done']} chunks "
          f"({size / 1e6:,.0f} MB of Parquet)")
    print(f"seconds         {seconds:.1f} (Ray start to last Parquet byte)")
    print(f"rows/s          {manifest['rows'] / seconds:,.0f}")
    print(f"candidates/s    {job.total / seconds:,.0f}")
    print(f"peak memory     {peak / 1e9:.2f} GB (PSS of the driver, Ray and its workers)")
    shutil.rmtree(out)


if __name__ == "__main__":
    main()
