"""Rank and report at scale: `dse rank` and `dse report` on a 1,000,000-candidate x
3-scenario run (the edge_vision niche over its own space), each as the CLI a user runs.

The run is made once by a real sweep (Ray, Parquet) into a temporary folder. Each verb runs
in a fresh subprocess; memory is its peak resident set (wait4's rusage of that child).

    python benchmarks/rank_report_scale.py [--candidates 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from dse.cli.schema import register
from dse.presets import CONF_DIR


def _make_run(run: Path, candidates: int) -> float:
    """A random edge_vision sweep of ``candidates`` through the CLI; its wall seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dse.cli", "sweep", "space=edge_vision",
                    "niche=edge_vision", f"sweep.samples={candidates}", "sweep.chunk_size=50000",
                    f"hydra.run.dir={run}", "top=1"], check=True, capture_output=True)
    return time.perf_counter() - start


def _timed(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident GB) of ``dse <args>`` in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dse.cli", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage; ru_maxrss in KiB
    seconds = time.perf_counter() - start
    if status:
        raise SystemExit(f"dse {' '.join(args)} failed (status {status})")
    return seconds, usage.ru_maxrss / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="make or reuse the run here")
    args = parser.parse_args()
    register()
    scenarios = len(OmegaConf.load(CONF_DIR / "niche" / "edge_vision.yaml").scenarios)
    with tempfile.TemporaryDirectory() as tmp:
        run = args.keep or Path(tmp) / "run"
        if not (run / "manifest.json").exists():
            print(f"sweep of {args.candidates:,} candidates x {scenarios} scenarios: "
                  f"{_make_run(run, args.candidates):.1f} s")
        rank_s, rank_gb = _timed(["rank", f"run={run}", "top=10"])
        print(f"dse rank:   {rank_s:6.1f} s  peak RSS {rank_gb:.2f} GB  (goal < 5 s, < 2 GB)")
        report_s, report_gb = _timed(["report", f"run={run}", f"out={tmp}/report"])
        print(f"dse report: {report_s:6.1f} s  peak RSS {report_gb:.2f} GB  (goal < 30 s, < 2 GB)")


if __name__ == "__main__":
    main()
