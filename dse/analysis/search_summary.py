"""What a search's Pareto front says about design: ranges of the parameters and derived
ratios per niche, and the niches side by side at the end of a multirun."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback

from dse.analysis.report_text import print_rows

__all__ = ["QUANTITIES", "front_ranges", "print_front_summary", "print_comparison",
           "CompareFronts"]

# front column -> label with its unit
QUANTITIES = {
    "bytes_per_flop": "memory bandwidth per FLOP/s (bytes/FLOP)",
    "mem_bw_tb_s": "memory bandwidth (TB/s)",
    "mem_capacity_gb": "memory capacity (GB)",
    "sram_mb": "SRAM (MB)",
    "peak_tflops": "peak bf16 (TFLOP/s)",
    "macs": "MACs",
    "chips": "chips per system",
}


def front_ranges(front: pd.DataFrame) -> pd.DataFrame:
    """min / median / max of each design quantity over the front's members."""
    rows = [dict(quantity=label, min=front[c].min(), median=front[c].median(),
                 max=front[c].max()) for c, label in QUANTITIES.items() if c in front]
    return pd.DataFrame(rows)


def print_front_summary(niche: str, front: pd.DataFrame) -> None:
    if front.empty:
        print(f"{niche}: no feasible design on the front")
        return
    print_rows(f"{niche}: Pareto front of {len(front)} designs, design quantities",
               front_ranges(front).to_dict("records"))


def print_comparison(fronts: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Median design quantities of each niche's front side by side, and the article's claim
    (a local LLM wants memory capacity and bandwidth more than compute) checked on them."""
    rows = []
    for c, label in QUANTITIES.items():
        rows.append({"quantity": label, **{n: f[c].median() for n, f in fronts.items()
                                           if c in f and not f.empty}})
    print_rows("median of each niche's Pareto front", rows)
    verdict = {}
    if {"local_llm", "hyperscale"} <= set(fronts) and not any(
            fronts[n].empty for n in ("local_llm", "hyperscale")):
        local, hyper = fronts["local_llm"], fronts["hyperscale"]
        ratio = local["bytes_per_flop"].median() / hyper["bytes_per_flop"].median()
        verdict = dict(bandwidth_per_flop_ratio=ratio, supported=bool(ratio > 1.0))
        word = "supports" if ratio > 1 else "does not support"
        print(f"The article says a local LLM wants memory bandwidth and capacity more than "
              f"compute: local_llm's front has {ratio:.1f}x the memory bandwidth per FLOP/s of "
              f"hyperscale's, which {word} it.")
    return verdict


class CompareFronts(Callback):
    """Hydra callback: after ``--multirun``, read every job's pareto.parquet and compare."""

    def on_multirun_end(self, config, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        fronts = {}
        for path in sorted(sweep_dir.glob("*/pareto.parquet")):
            name = path.parent.name.split("_", 1)[-1]
            fronts[name] = pd.read_parquet(path)
        if len(fronts) > 1:
            print_comparison(fronts)
