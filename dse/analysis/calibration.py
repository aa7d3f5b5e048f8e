"""Fit the global efficiency factors on measured results; leave-one-chip-out validation.

One set of factors for every chip (never per chip), fitted by minimising the mean absolute
log error of the mapped rows. The search is deterministic: coordinate descent with a golden-
section line search per factor inside bounds that published measurements anchor (large bf16
matrix products reach 80-86 % of peak on A100/H100; copies reach ~90 % of peak bandwidth).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from dse.analysis.validate import Case, predict_cases
from dse.evaluator.efficiency import DEFAULT, Efficiency

__all__ = ["BOUNDS", "NEUTRAL", "CV_KEYS", "loss", "fit", "fold_fits", "leave_one_out",
           "leave_one_chip_out"]

CV_KEYS = ("chip", "vendor")

# factor -> (low, high, searched on a log scale)
BOUNDS: dict[str, tuple[float, float, bool]] = {
    # End-to-end kernels run below cuBLAS's 80-86 % on large GEMMs: the band reaches down.
    "compute_max": (0.40, 0.90, False),
    "memory": (0.50, 0.92, False),  # ~90 % for copies is the ceiling
    # op_overhead_s is not fitted (dse.evaluator.efficiency): a fold without NVIDIA's rows
    # left it to Apple's llama.cpp (graph chips pay none) and moved every GPU 15-20 %.
    # Decode attention on a paged KV cache: 78-83 % of peak at 512 tokens on A100/H100
    # (onnxruntime PR #21414 table); FlashInfer reports "close to 100%" only for long
    # sequences; small per-step KV reads run far below.
    "kv_memory": (0.40, 0.90, False),
    # TensorRT-LLM served row 57 (Llama-7B fp8, batch 120 x 2,176 tokens): 75.2 GB of fp8 KV
    # cache and weights on an 80 GB H100, so at least 94 % of memory is usable.
    "usable_memory": (0.94, 0.97, False),
}
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
# Where every fit starts: published anchors before any calibration, so a held-out chip never
# leaks into the fit that predicts it (the defaults were fitted with every chip).
NEUTRAL = dataclasses.replace(DEFAULT, compute_max=0.80, memory=0.85, kv_memory=0.80,
                              usable_memory=0.95)


# Errors beyond 25 % count as 25 %: the fit then maximises how many rows it gets right instead
# of bending every factor toward a few rows whose software lags the hardware (llama.cpp's
# Dec-2023 CUDA builds reach a quarter of the prompt rate of 2025 builds on the same A100).
LOSS_CAP = math.log(1.25)


def loss(cases: list[Case], eff: Efficiency) -> float:
    """Mean of min(|log(predicted / measured)|, LOSS_CAP); a row the design cannot run
    costs the cap."""
    pred = predict_cases(cases, eff)
    meas = np.array([c.measured for c in cases])
    err = np.abs(np.log(pred / meas))
    return float(np.minimum(np.where(np.isfinite(err), err, LOSS_CAP), LOSS_CAP).mean())


def _line_search(cases, eff: Efficiency, name: str, steps: int) -> Efficiency:
    low, high, log = BOUNDS[name]
    to_x = math.log if log else float
    from_x = math.exp if log else float
    a, b = to_x(low), to_x(high)

    def f(x: float) -> float:
        return loss(cases, dataclasses.replace(eff, **{name: from_x(x)}))

    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(steps):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(d)
    best_x, best_f = (c, fc) if fc <= fd else (d, fd)
    current = loss(cases, eff)
    return dataclasses.replace(eff, **{name: from_x(best_x)}) if best_f < current else eff


def fit(cases: list[Case], start: Efficiency = NEUTRAL, sweeps: int = 2,
        steps: int = 12) -> Efficiency:
    """Coordinate descent over BOUNDS: ``sweeps`` passes, ``steps`` golden-section steps per
    factor. Deterministic: the same cases give the same factors."""
    eff = start
    for _ in range(sweeps):
        for name in BOUNDS:
            eff = _line_search(cases, eff, name, steps)
    return eff


def fold_fits(cases: list[Case], by: str = "chip", on_fold: Callable[[str], None] | None = None,
              **fit_args) -> dict[str, Efficiency]:
    """For each value of ``by`` ("chip" or "vendor"): the factors fitted without its rows. Their
    spread is how far the data pins each factor down (robust ranking draws from it).
    ``on_fold(held)`` is called after each fit (progress)."""
    if by not in CV_KEYS:
        raise ValueError(f"cv = {by!r}; allowed: {', '.join(CV_KEYS)}")
    fits = {}
    for held in sorted({getattr(c, by) for c in cases}):
        fits[held] = fit([c for c in cases if getattr(c, by) != held], **fit_args)
        if on_fold is not None:
            on_fold(held)
    return fits


def leave_one_out(cases: list[Case], by: str = "chip",
                  on_fold: Callable[[str], None] | None = None, **fit_args) -> pd.DataFrame:
    """For each value of ``by`` ("chip" or "vendor"): fit on the other rows, predict the held-
    out rows. Returns one row per case with the held-out prediction."""
    out = []
    for held, eff in fold_fits(cases, by, on_fold, **fit_args).items():
        test = [c for c in cases if getattr(c, by) == held]
        pred = predict_cases(test, eff)
        out += [dict(id=c.row_id, chip=c.chip, vendor=c.vendor, workload=c.workload,
                     regime=c.regime, metric=c.metric, measured=c.measured, predicted=p,
                     error=p / c.measured - 1.0) for c, p in zip(test, pred, strict=True)]
    return pd.DataFrame(out)


def leave_one_chip_out(cases: list[Case], **fit_args) -> pd.DataFrame:
    return leave_one_out(cases, "chip", **fit_args)
