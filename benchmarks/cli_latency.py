"""Wall time of `dse predict chip=h100 workload=llama3-8b` and of `python -m dse predict ...`,
median of 5 runs after one warm-up that fills numba's cache (issue 20: under 1 s). Run on an
idle machine: python benchmarks/cli_latency.py [runs]."""

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


def wall_s(command: list[str]) -> float:
    """Seconds from start to exit of ``command`` (its output discarded); it must succeed."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(runs: int = 5) -> None:
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for label, command in COMMANDS.items():
        wall_s(command)  # warm-up: numba compiles into its cache on a first run
        times_s = [wall_s(command) for _ in range(runs)]
        print(f"{label}: median {statistics.median(times_s):.3f} s over {runs} runs "
              f"(min {min(times_s):.3f} s, max {max(times_s):.3f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
