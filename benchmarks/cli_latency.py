"""Wall time of `dse predict chip=h100 workload=llama3-8b` and of `python -m dse predict ...`,
median of 5 runs after one warm-up that fills numba's cache (issue 20: under 1 s), with the
CPU time (user + system) of the same runs: on a shared machine the wall time also counts
the time other processes held the cores, the CPU time does not. Run on an idle machine:
python benchmarks/cli_latency.py [runs]."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ARGS = ["predict", "chip=h100", "workload=llama3-8b"]
COMMANDS = {
    "dse predict": [str(Path(sys.executable).with_name("dse")), *ARGS],
    "python -m dse predict": [sys.executable, "-m", "dse", *ARGS],
}


def timed_s(command: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds from start to exit of ``command`` (its output discarded); it must
    succeed."""
    start, before = time.perf_counter(), os.times()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system -
                                                         before.children_system)
    return time.perf_counter() - start, cpu


def main(runs: int = 5) -> None:
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for label, command in COMMANDS.items():
        timed_s(command)  # warm-up: numba compiles into its cache on a first run
        wall, cpu = zip(*(timed_s(command) for _ in range(runs)), strict=True)
        print(f"{label}: median {statistics.median(wall):.3f} s over {runs} runs "
              f"(min {min(wall):.3f} s, max {max(wall):.3f} s); CPU median "
              f"{statistics.median(cpu):.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
