"""Evaluator speed: candidate x scenario evaluations per second on one core.

100,000 random candidates on three scenarios (Core issue): Llama-3-8B decode at batch 1 with
int4 weights; Llama-2-70B decode at fp8 with the batch chosen by capacity on 8 chips;
ResNet-50 at batch 256, int8. Each timed run evaluates a fresh copy of the candidates on the
three scenarios in turn, as a sweep chunk does: the chips' derivation (area, cost, power) is
paid once per batch, by the first scenario. Prints the rate of each and overall (best of 3
runs, after a warm-up that loads the compiled kernel), then how the rate grows with the
number of candidates and with the chips per system (the tp x pp x dp splits evaluated), and
the rate of a training step (Llama-2-70B, 1,024 sequences of 4,096 tokens: every split x ZeRO
stage x recomputation) at 8 to 1,024 chips.

    python benchmarks/evaluator_speed.py [--candidates 100000] [--no-scaling]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from dse.evaluator.model import System, evaluate  # noqa: E402
from dse.evaluator.parallel import splits  # noqa: E402
from dse.presets import load_workload  # noqa: E402
from hwspace.spec import from_columns  # noqa: E402
from workloads.scenario import build_plan, family_of, make_scenario  # noqa: E402

SCENARIOS = [
    ("llama3-8b", dict(phase="decode", batch=1, weights="int4"), 1),
    ("llama2-70b", dict(phase="decode", batch="max", weights="fp8", activations="fp8",
                        kv_cache="fp8"), 8),
    ("resnet50", dict(phase="infer", batch=256, weights="int8", activations="int8"), 1),
]
SCALING_CANDIDATES = (1_000, 10_000, 100_000, 1_000_000)
SCALING_CHIPS = (1, 8, 64, 576)
TRAINING_CHIPS = (8, 64, 1024)


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


def _case(name: str, scenario: dict, chips: int):
    cfg = load_workload(name)
    sc = make_scenario(family_of(cfg), scenario)
    return build_plan(cfg, sc), sc, System(chips=chips)


def _timed_batch(chips, cases) -> list[float]:
    """Seconds of each case on a fresh copy of ``chips`` (derived once, by the first)."""
    batch = chips.take(np.arange(chips.n))
    times = []
    for case in cases:
        start = time.perf_counter()
        evaluate(batch, *case)
        times.append(time.perf_counter() - start)
    return times


def headline(chips, repeats: int) -> None:
    cases = [_case(*s) for s in SCENARIOS]
    runs = np.array([_timed_batch(chips, cases) for _ in range(repeats)])
    for (name, _, _), best in zip(SCENARIOS, runs.min(axis=0), strict=True):
        print(f"{name:12s} {best:6.3f} s  {chips.n / best:12,.0f} evaluations/s")
    total = runs.sum(axis=1).min()
    rate = len(cases) * chips.n / total
    print(f"overall      {total:6.3f} s  {rate:12,.0f} candidate x scenario evaluations/s")


def scaling(repeats: int) -> None:
    cases = [_case(*s) for s in SCENARIOS]
    print("\ncandidates   overall evaluations/s (the three scenarios)")
    for n in SCALING_CANDIDATES:
        chips = random_candidates(n)
        total = min(sum(_timed_batch(chips, cases)) for _ in range(repeats))
        print(f"{n:>10,d}   {len(cases) * n / total:12,.0f}")
    chips = random_candidates(100_000)
    name, scenario, _ = SCENARIOS[1]
    print(f"\nchips/system  splits  {name} evaluations/s (100,000 candidates)")
    for n_chips in SCALING_CHIPS:
        case = _case(name, scenario, n_chips)
        n_splits = len(splits(n_chips, case[0].n_heads, case[0].n_layers))
        best = min(_timed_batch(chips, [case])[0] for _ in range(repeats))
        print(f"{n_chips:>12d}  {n_splits:>6d}  {chips.n / best:12,.0f}")


def training(chips, repeats: int) -> None:
    print(f"\nchips/system  llama2-70b train evaluations/s ({chips.n:,} candidates)")
    for n_chips in TRAINING_CHIPS:
        case = _case("llama2-70b", dict(phase="train", batch=1024, prompt_len=4096), n_chips)
        best = min(_timed_batch(chips, [case])[0] for _ in range(repeats))
        print(f"{n_chips:>12d}  {chips.n / best:12,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-scaling", action="store_true")
    args = parser.parse_args()
    chips = random_candidates(args.candidates)
    evaluate(chips.take(np.arange(100)), *_case(*SCENARIOS[0]))  # warm-up: load the kernel
    headline(chips, args.repeats)
    if not args.no_scaling:
        scaling(args.repeats)
        training(chips, args.repeats)


if __name__ == "__main__":
    main()
