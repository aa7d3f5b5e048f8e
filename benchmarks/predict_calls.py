"""predict() calls per second for a preset chip and workload with varying scenarios
(DESIGN.md section 7: >= 2,000), then with scenarios that never repeat (a notebook sweeping
batch and prompt length: no kept plan helps). Run: python benchmarks/predict_calls.py [seconds]."""

from __future__ import annotations

import itertools
import sys
import time

from dse.api import predict

PHASES = ("decode", "prefill", "generate")


def _rate(scenarios, seconds: float, label: str = "") -> str:
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        predict("h100", "llama3-8b", **next(scenarios))
        calls += 1
    return f"{calls / elapsed:,.0f} predict() calls/s{label} ({calls:,} calls in {elapsed:.1f} s)"


def main(seconds: float = 5.0) -> None:
    scenarios = itertools.cycle([dict(phase=p, batch=b, prompt_len=n, chips=c)
                                 for p in PHASES
                                 for b in (1, 8, 64) for n in (512, 2048) for c in (1, 8)])
    # (batch, prompt_len) pairs repeat only after 4,096 x 4,093 calls.
    fresh = (dict(phase=PHASES[i % 3], batch=1 + i % 4096, prompt_len=256 + i % 4093,
                  chips=(1, 8)[i % 2]) for i in itertools.count())
    predict("h100", "llama3-8b", phase="decode")  # compile and cache outside the clock
    print(_rate(scenarios, seconds))
    print(_rate(fresh, seconds, ", no scenario repeating"))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
