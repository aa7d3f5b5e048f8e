"""Serving simulator speed: simulated requests per second of wall time on one core.

H100 with Llama-3-8B bf16, prompts of 1,024 tokens and 256 generated (the issue's case), and
lognormal lengths of the same means: the step tables are built once from the evaluator, then
the scheduler (dse.evaluator.scheduler) serves 100,000 requests at 0.5, 0.9 and 1.2 times
the analytical capacity (best of 3 runs, after a warm-up that loads the compiled loop). Then
the figures: max_rate_per_s at P99 TTFT <= 0.5 s and P99 TPOT <= 50 ms, against the
analytical capacity, and the wall time of one whole ``serve`` call.

    python benchmarks/serve_speed.py [--requests 100000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from dse.evaluator import model  # noqa: E402
from dse.evaluator.efficiency import DEFAULT  # noqa: E402
from dse.evaluator.scheduler import (  # noqa: E402
    Engine,
    Requests,
    draw_lengths,
    poisson_arrivals,
    simulate,
)
from dse.presets import load_chip, load_workload  # noqa: E402
from dse.serving import ChipModel, build_step_times, serve  # noqa: E402
from hwspace.spec import from_configs  # noqa: E402

SLO = model.System(ttft_slo_s=0.5, tpot_slo_s=0.05)
LENGTHS = {
    "fixed 1024/256": (1024, 256),
    "lognormal means 1024/256": (dict(dist="lognormal", mean=1024, sigma=0.5),
                                 dict(dist="lognormal", mean=256, sigma=0.5)),
}


def _rate(req: Requests, steps, engine: Engine) -> float:
    """Requests simulated per second of wall time, best of 3."""
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        simulate(req, steps, engine)
        best = min(best, time.perf_counter() - start)
    return len(req.arrival_s) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    n = parser.parse_args().requests
    ev = ChipModel(from_configs([load_chip("h100")]), load_workload("llama3-8b"),
                   model.System(max_num_seqs=None), DEFAULT, {})
    one = serve("h100", "llama3-8b", request_rate=1.0, prompt_len=1024, gen_len=256,
                system=SLO, n_requests=10_000)
    capacity = one["capacity_per_s"]
    engine = Engine(one["kv_blocks"])
    print(f"simulator, {n:,} requests, H100 Llama-3-8B bf16 (capacity {capacity:.1f} req/s)")
    for name, (prompt, gen) in LENGTHS.items():
        prompts = draw_lengths("prompt_len", prompt, n, 1, 8191)
        gens = np.minimum(draw_lengths("gen_len", gen, n, 2, 8191), 8192 - prompts)
        steps = build_step_times(ev, engine, int((prompts + gens).max()), prompts)
        simulate(Requests(poisson_arrivals(1.0, 10, 0), prompts[:10], gens[:10]), steps,
                 engine)  # warm-up: load the compiled loop
        for load in (0.5, 0.9, 1.2):
            req = Requests(poisson_arrivals(load * capacity, n, 0), prompts, gens)
            print(f"  {name:<26} at {load:.1f} x capacity: "
                  f"{_rate(req, steps, engine):>12,.0f} requests/s")
    start = time.perf_counter()
    out = serve("h100", "llama3-8b", request_rate=10.0, prompt_len=1024, gen_len=256,
                system=SLO, n_requests=10_000)
    print(f"serve() with max_rate, 10,000 requests: {time.perf_counter() - start:.2f} s")
    print(f"max_rate_per_s {out['max_rate_per_s']:.2f} at P99 TTFT <= 0.5 s, TPOT <= 50 ms "
          f"(analytical capacity {capacity:.2f}); at 10 req/s: TTFT P50/P99 "
          f"{out['ttft_p50_s'] * 1e3:.1f}/{out['ttft_p99_s'] * 1e3:.1f} ms, TPOT P50/P99 "
          f"{out['tpot_p50_s'] * 1e3:.1f}/{out['tpot_p99_s'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
