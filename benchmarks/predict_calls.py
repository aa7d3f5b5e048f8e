"""predict() calls per second for a preset chip and workload with varying scenarios
(DESIGN.md section 7: >= 2,000). Run: python benchmarks/predict_calls.py [seconds]."""

from __future__ import annotations

import itertools
import sys
import time

from dse.api import predict


def main(seconds: float = 5.0) -> None:
    scenarios = itertools.cycle([dict(phase=p, batch=b, prompt_len=n, chips=c)
                                 for p in ("decode", "prefill", "generate")
                                 for b in (1, 8, 64) for n in (512, 2048) for c in (1, 8)])
    predict("h100", "llama3-8b", phase="decode")  # compile and cache outside the clock
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        predict("h100", "llama3-8b", **next(scenarios))
        calls += 1
    print(f"{calls / elapsed:,.0f} predict() calls/s ({calls:,} calls in {elapsed:.1f} s)")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
