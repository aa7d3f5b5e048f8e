"""Search quality: hypervolume of NSGA-II, TPE and random searches vs the exhaustive grid.

The `bench` space (49,152 grid points, every range stepped so a search samples exactly the
grid) is evaluated exhaustively for the local_llm niche; its feasible Pareto front's
hypervolume (reference: zero throughput per USD and per W) is the 100 %. Each sampler then
runs with 1 %, 2 % and 5 % of the grid's evaluations, three seeds each, and the table shows the
hypervolume ratio (mean and worst seed).

    python benchmarks/search_quality.py [--seeds 3] [--niche local_llm]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from omegaconf import OmegaConf

from dse.pipeline.niche import candidate_scores, parse_niche, score_columns
from dse.pipeline.pareto import hypervolume_2d, minimised
from dse.pipeline.rows import evaluate_rows
from dse.pipeline.search import LocalEvaluator, make_search_job, run_search
from dse.pipeline.sweep import read_rows
from dse.presets import CONF_DIR
from hwspace.space import parse_space

BUDGETS = (0.01, 0.02, 0.05)
SAMPLERS = {"nsga2": lambda n: max(20, n // 20), "tpe": lambda n: 10,
            "random": lambda n: max(20, n // 20)}


def _conf(group: str, name: str) -> dict:
    data = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"))
    data.pop("defaults", None)
    return data


def _hypervolume(scores, niche) -> float:
    ok = scores[scores["feasible"]]
    columns = [c for c, _ in niche.objectives]
    f = minimised(ok[columns].to_numpy(float), [d for _, d in niche.objectives])
    return hypervolume_2d(f[np.isfinite(f).all(axis=1)], np.zeros(2))


def exhaustive(space, niche, chunk: int = 8192) -> float:
    parts = []
    for start in range(0, space.grid_size(), chunk):
        params = space.grid_chunk(start, start + chunk)
        ids = np.arange(start, min(start + chunk, space.grid_size()))
        table = evaluate_rows(params, ids, [niche]).select(score_columns(niche))
        parts.append(candidate_scores(table.to_pandas(), niche))
    import pandas as pd

    return _hypervolume(pd.concat(parts), niche)


def searched(space, niche, sampler: str, trials: int, seed: int) -> float:
    job = make_search_job(space, niche, trials, SAMPLERS[sampler](trials), sampler, seed)
    with tempfile.TemporaryDirectory() as tmp:
        run_search(job, tmp, LocalEvaluator(niche), show_progress=False)
        rows = read_rows(f"{tmp}/results", columns=score_columns(niche)).to_pandas()
    return _hypervolume(candidate_scores(rows, niche), niche)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--niche", default="local_llm")
    args = parser.parse_args()
    space = parse_space(_conf("space", "bench"))
    niche = parse_niche(_conf("niche", args.niche))
    start = time.perf_counter()
    reference = exhaustive(space, niche)
    print(f"exhaustive: {space.grid_size():,} candidates, front hypervolume {reference:.4g} "
          f"({time.perf_counter() - start:.0f} s)")
    print(f"{'sampler':8s} " + " ".join(f"{f'{b:.0%} ({int(b * space.grid_size()):,})':>22s}"
                                        for b in BUDGETS))
    for sampler in SAMPLERS:
        cells = []
        for budget in BUDGETS:
            trials = int(budget * space.grid_size())
            ratios = [searched(space, niche, sampler, trials, s) / reference
                      for s in range(args.seeds)]
            cells.append(f"{np.mean(ratios):7.1%} (min {min(ratios):6.1%})")
        print(f"{sampler:8s} " + " ".join(f"{c:>22s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
