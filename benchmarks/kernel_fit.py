"""Leave-one-chip-out error of the kernel-efficiency model on the public operator rows
(data/operators/), beside a plain roofline with one global efficiency and a roofline with a
launch cost per harness.

    python benchmarks/kernel_fit.py            # by chip (about 1 minute on one core)
    python benchmarks/kernel_fit.py --silicon  # A100 variants held out together

Prints the median absolute relative error per op kind and per chip, and the parameters of the
fit on all rows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from dse.analysis.kernel_fit import fit_kernel, leave_one_chip_out
from dse.analysis.operators import load_operators

_ERRORS = {"err_kernel": "kernel model", "err_roofline": "roofline (1 eff.)",
           "err_roofline_launch": "roofline + launch"}


def _table(judged: pd.DataFrame, by: str) -> str:
    """Median absolute relative error (%) of each model, one line per ``by`` value."""
    med = judged.groupby(by)[list(_ERRORS)].median().mul(100.0).round(1)
    med.insert(0, "rows", judged.groupby(by).size())
    return med.rename(columns=_ERRORS).to_string()


def _regime(rows: pd.DataFrame) -> pd.Series:
    """compute-bound / memory-bound by the roofline's ridge point at the row's dtype."""
    intensity = rows.flop / rows.mem_bytes
    ridge = rows.peak_flop_per_s / rows.mem_bw_bytes_per_s
    return np.where(intensity >= ridge, "compute-bound", "memory-bound")


def main() -> None:
    """Fit, judge leave-one-chip-out, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silicon", action="store_true",
                        help="hold out each die (the A100 variants together), not each SKU")
    args = parser.parse_args()
    rows = load_operators()
    group = "chip"
    if args.silicon:
        rows = rows.assign(silicon=rows.chip.str.replace(r"A100 .*", "A100", regex=True))
        group = "silicon"
    start = time.perf_counter()
    judged = leave_one_chip_out(rows, group=group)
    judged["regime"] = _regime(judged)
    gemm = judged[judged.op_kind == "gemm"]
    print(f"{len(rows)} operator rows, {rows.chip.nunique()} chips, "
          f"{rows.vendor.nunique()} vendors; held out by {group} "
          f"({time.perf_counter() - start:.0f} s)\n")
    print("Median |error| (%) by op kind, each chip predicted by a fit without it:")
    print(_table(judged, "op_kind"), "\n")
    print("GEMM rows by chip:")
    print(_table(gemm, "chip"), "\n")
    print("GEMM rows by regime:")
    print(_table(gemm, "regime"), "\n")
    per_chip = gemm.groupby("chip")[list(_ERRORS)].median().median().mul(100.0).round(1)
    print("GEMM, median over chips of the per-chip median (%):",
          ", ".join(f"{_ERRORS[k]} {v}" for k, v in per_chip.items()))
    print("GEMM, all rows pooled (%):",
          ", ".join(f"{_ERRORS[k]} {v:.1f}" for k, v in gemm[list(_ERRORS)].median()
                    .mul(100.0).items()))
    print("\nFit on all rows:", fit_kernel(rows))


if __name__ == "__main__":
    main()
