"""Evaluator speed: candidate x scenario evaluations per second on one core.

100,000 random candidates on three scenarios (Core issue): Llama-3-8B decode at batch 1 with
int4 weights; Llama-2-70B decode at fp8 with the batch chosen by capacity on 8 chips;
ResNet-50 at batch 256, int8. Prints the rate of each and overall (best of 3 runs, after a
warm-up that loads the compiled kernel).

    python benchmarks/evaluator_speed.py [--candidates 100000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from dse.evaluator.model import System, evaluate  # noqa: E402
from dse.presets import load_workload  # noqa: E402
from hwspace.spec import from_columns  # noqa: E402
from workloads.scenario import build_plan, family_of, make_scenario  # noqa: E402

SCENARIOS = [
    ("llama3-8b", dict(phase="decode", batch=1, weights="int4"), 1),
    ("llama2-70b", dict(phase="decode", batch="max", weights="fp8", activations="fp8",
                        kv_cache="fp8"), 8),
    ("resnet50", dict(phase="infer", batch=256, weights="int8", activations="int8"), 1),
]


def random_candidates(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return from_columns(dict(
        process_node=rng.choice(["n7", "n5", "n4", "n3"], n),
        macs=rng.integers(10_000, 500_000, n),
        clock_ghz=rng.uniform(0.8, 2.0, n),
        sram_mb=rng.uniform(1, 500, n),
        memory_type=rng.choice(["hbm3", "hbm3e", "lpddr5x", "gddr7"], n),
        memory_stacks=rng.integers(1, 9, n),
        links_count=rng.integers(1, 19, n),
        links_gb_s_per_link=rng.uniform(10, 100, n),
        dtype_speedup_fp8=2.0, dtype_speedup_int8=2.0, dtype_speedup_int4=4.0,
    ))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    chips = random_candidates(args.candidates)
    cases = []
    for name, sc, n_chips in SCENARIOS:
        cfg = load_workload(name)
        scenario = make_scenario(family_of(cfg), sc)
        cases.append((name, build_plan(cfg, scenario), scenario, System(chips=n_chips)))
    evaluate(chips.take(np.arange(100)), *cases[0][1:])  # warm-up: load the compiled kernel
    total = 0.0
    for name, plan, scenario, system in cases:
        best = min(_timed(chips, plan, scenario, system) for _ in range(args.repeats))
        total += best
        print(f"{name:12s} {best:6.3f} s  {args.candidates / best:12,.0f} evaluations/s")
    rate = len(cases) * args.candidates / total
    print(f"overall      {total:6.3f} s  {rate:12,.0f} candidate x scenario evaluations/s")


def _timed(chips, plan, scenario, system) -> float:
    start = time.perf_counter()
    evaluate(chips, plan, scenario, system)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
