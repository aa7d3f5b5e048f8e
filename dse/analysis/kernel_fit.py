"""Kernel-efficiency model of one operator from its shape and the chip's spec, fitted globally
on public operator rows (dse.analysis.operators) and judged leave-one-chip-out.

A matrix product runs as output tiles of ``TILE_M x TILE_N`` spread over the compute units
(SMs, CUs) in waves (NVIDIA, "Matrix Multiplication Background User's Guide",
DU-09799-001, section 3: tile and wave quantisation). Its compute time is the waves it needs
times the time of one padded tile at the unit's share of peak, plus a fixed cost per wave
(prologue, epilogue); when there are fewer tiles than units, the kernel splits the reduction
(split-K, flash-decoding) so that small-M, GEMV-like products fill the chip and end up bound by
bandwidth. Compute and memory time combine as a p-norm (p -> inf: the roofline's max) plus a
fixed launch cost. Vector ops (softmax, norms, elementwise) run at the vector rate, untiled.
Global parameters, never per chip: ``KernelParams``. The launch cost is one per measurement
harness (the ``dataset`` column): eager PyTorch timed around one call pays ~25-40 us, a
TensorRT-LLM plugin timed in a loop ~3 us, on the same GPU; it belongs to the software stack,
not to the chip, so it carries over to a chip that has not been built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from dse.analysis.operators import OPERATOR_FILES

__all__ = ["TILE_M", "TILE_N", "HARNESSES", "MATRIX_KINDS", "KernelParams", "shape_efficiency",
           "kernel_time_s", "roofline_time_s", "fit_kernel", "fit_roofline",
           "leave_one_chip_out"]

# Output tile of one thread block: 128 x 128 is the CTA tile of the cuBLAS/CUTLASS kernels
# that dominate large GEMMs (DU-09799-001 section 2.3 "Typical Tile Dimensions In cuBLAS";
# the kernel names of data/operators/neusight_gemm.csv, e.g. ampere_sgemm_128x128_nn).
TILE_M = 128
TILE_N = 128
# Libraries pick a shorter tile for few rows (cuBLAS/TRT-LLM small-M kernels, flash-decoding),
# down to the 16 rows of one tensor-core MMA (PTX ISA mma.m16n8k16): rows pad to a power of two.
_MIN_TILE_M = 16
# The smallest slice of the reduction one split-K work item takes: below it the partial sums
# cost more than they save (CUTLASS split-K slices are multiples of the 32-deep K tile).
_MIN_K_SLICE = 256
MATRIX_KINDS = ("gemm", "attention_prefill", "attention_decode")
HARNESSES = OPERATOR_FILES


@dataclass(frozen=True)
class KernelParams:
    """Global parameters of the kernel model (fractions of peak; seconds)."""

    compute_eff: float = 0.8  # fraction of a unit's peak inside a full tile
    memory_eff: float = 0.8  # fraction of peak memory bandwidth
    wave_s: float = 1e-6  # fixed cost per wave: a tile's prologue and epilogue
    # Compute and memory overlap imperfectly: time = (t_c^p + t_m^p)^(1/p); p -> inf is the
    # roofline's max, p = 1 no overlap at all. The fit on data/operators/ finds p ~ 1.3.
    overlap_p: float = 3.0
    # Fixed cost per kernel (launch, framework, synchronisation), one per HARNESSES entry.
    launch_s: tuple[float, ...] = field(default=(5e-6,) * len(HARNESSES))

    def vector(self) -> np.ndarray:
        """The parameters as one array (the fit's unknowns)."""
        return np.array([self.compute_eff, self.memory_eff, self.wave_s, self.overlap_p,
                         *self.launch_s])

    @classmethod
    def from_vector(cls, v: np.ndarray) -> KernelParams:
        """Inverse of ``vector``."""
        return cls(*(float(x) for x in v[:4]), tuple(float(x) for x in v[4:]))


_OVERLAP_P = 3  # position of overlap_p in KernelParams.vector()


def _launch_s(rows: pd.DataFrame, launch_s) -> np.ndarray:
    """Each row's launch cost, looked up by its harness, (n_rows,)."""
    codes = pd.Categorical(rows.dataset, categories=HARNESSES).codes
    if (codes < 0).any():
        raise ValueError(f"dataset: {sorted(set(rows.dataset) - set(HARNESSES))} given; "
                         f"allowed: {list(HARNESSES)}")
    return np.asarray(launch_s)[codes]


def _work_items(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tiles, split-K factor, padded-tile fraction) per row, (n_rows,) each."""
    units = rows.compute_units.to_numpy()
    m, n, k = rows.m.to_numpy(), rows.n.to_numpy(), rows.k.to_numpy()
    # Attention tiles over query rows x head dimension and reduces over the keys (n).
    attention = rows.op_kind.str.startswith("attention").to_numpy()
    out_n = np.where(attention, k, n)
    depth = np.where(attention, n, k)
    tile_m = np.clip(2.0 ** np.ceil(np.log2(np.maximum(m, 1.0))), _MIN_TILE_M, TILE_M)
    tiles = rows.batch.to_numpy() * np.ceil(m / tile_m) * np.ceil(out_n / TILE_N)
    split = np.clip(np.floor(units / tiles), 1.0, np.maximum(1.0, np.floor(depth / _MIN_K_SLICE)))
    useful = (m * out_n) / (np.ceil(m / tile_m) * tile_m * np.ceil(out_n / TILE_N) * TILE_N)
    return tiles, split, useful


def shape_efficiency(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(fraction of peak left by tile padding and wave quantisation, waves) of each matrix
    row, (n_rows,) each: work items / (waves x units), times the useful share of each padded
    tile. 1.0 for a product of whole tiles filling whole waves.

    Args:
        rows: columns op_kind, batch, m, n, k (attention: batch x KV heads, query rows x
            heads per KV head, keys, head dim) and compute_units.
    """
    tiles, split, useful = _work_items(rows)
    units = rows.compute_units.to_numpy()
    waves = np.ceil(tiles * split / units)
    return useful * tiles * split / (waves * units), waves


def kernel_time_s(rows: pd.DataFrame, p: KernelParams) -> np.ndarray:
    """Predicted time of each operator row (s), (n_rows,).

    Args:
        rows: operator rows with the columns of ``dse.analysis.operators.load_operators``
            (op_kind, batch, m, n, k, flop, mem_bytes, peak_flop_per_s,
            mem_bw_bytes_per_s, compute_units).
        p: the global parameters.
    """
    flop = rows.flop.to_numpy()
    t_mem = rows.mem_bytes.to_numpy() / (rows.mem_bw_bytes_per_s.to_numpy() * p.memory_eff)
    rate = rows.peak_flop_per_s.to_numpy() * p.compute_eff  # FLOP/s of all units at work
    matrix = rows.op_kind.isin(MATRIX_KINDS).to_numpy()
    # Each wave runs one padded tile (its 1/split of the reduction) per unit, plus a fixed cost.
    eff, waves = shape_efficiency(rows)
    t_compute = np.where(matrix, flop / (rate * eff) + waves * p.wave_s, flop / rate)
    t_max = np.maximum(t_compute, t_mem)  # scaled so that the power stays finite
    t_overlap = t_max * ((t_compute / t_max) ** p.overlap_p
                         + (t_mem / t_max) ** p.overlap_p) ** (1.0 / p.overlap_p)
    return _launch_s(rows, p.launch_s) + t_overlap


def roofline_time_s(rows: pd.DataFrame, efficiency: float,
                    launch_s: tuple[float, ...] | None = None) -> np.ndarray:
    """Plain roofline: max(FLOP / peak, bytes / bandwidth) / efficiency, plus the harness's
    launch cost when ``launch_s`` is given (one per HARNESSES entry), (n_rows,)."""
    t = np.maximum(rows.flop.to_numpy() / rows.peak_flop_per_s.to_numpy(),
                   rows.mem_bytes.to_numpy() / rows.mem_bw_bytes_per_s.to_numpy())
    return t / efficiency + (0.0 if launch_s is None else _launch_s(rows, launch_s))


def _chip_weights(rows: pd.DataFrame) -> np.ndarray:
    """Least-squares weights giving every chip the same total weight, (n_rows,)."""
    counts = rows.chip.map(rows.chip.value_counts()).to_numpy(dtype=float)
    return 1.0 / np.sqrt(counts)


def _fit(rows: pd.DataFrame, predict, x0: np.ndarray, bounds=(-np.inf, np.inf)) -> np.ndarray:
    """Parameters minimising the chip-weighted squared log error of ``predict``; the fit
    runs on their logarithms (``x0`` and ``bounds`` too), which keeps every one positive."""
    log_t = np.log(rows.time_s.to_numpy())
    w = _chip_weights(rows)
    result = least_squares(lambda x: w * (np.log(predict(np.exp(x))) - log_t), x0,
                           bounds=bounds, method="trf")
    return np.exp(result.x)


def fit_kernel(rows: pd.DataFrame) -> KernelParams:
    """The kernel model's global parameters, fitted in log time on ``rows``."""
    x0 = np.log(KernelParams().vector())
    # Overlap between additive (p = 1) and a hard max (p = 32): below 1 it is not physical.
    lower, upper = np.full_like(x0, -np.inf), np.full_like(x0, np.inf)
    lower[_OVERLAP_P], upper[_OVERLAP_P] = 0.0, np.log(32.0)
    x = _fit(rows, lambda v: kernel_time_s(rows, KernelParams.from_vector(v)), x0,
             (lower, upper))
    return KernelParams.from_vector(x)


def fit_roofline(rows: pd.DataFrame, with_launch: bool = False):
    """(efficiency, launch_s) of the plain roofline fitted in log time on ``rows``; launch_s
    (one per HARNESSES entry) is None unless ``with_launch``."""
    if with_launch:
        x = _fit(rows, lambda v: roofline_time_s(rows, v[0], v[1:]),
                 np.log([0.5] + [5e-6] * len(HARNESSES)))
        return float(x[0]), tuple(x[1:])
    (eff,) = _fit(rows, lambda v: roofline_time_s(rows, v[0]), np.log([0.5]))
    return float(eff), None


def leave_one_chip_out(rows: pd.DataFrame, group: str = "chip") -> pd.DataFrame:
    """Each row predicted by models fitted without its chip (or other ``group`` column).

    Returns:
        ``rows`` with columns pred_kernel_s, pred_roofline_s (one global efficiency) and
        pred_roofline_launch_s (efficiency and launch cost), and their absolute relative
        errors err_kernel, err_roofline, err_roofline_launch.
    """
    out = rows.copy()
    for col in ("pred_kernel_s", "pred_roofline_s", "pred_roofline_launch_s"):
        out[col] = np.nan
    for held in rows[group].unique():
        test = (rows[group] == held).to_numpy()
        train = rows[~test]
        held_rows = rows[test]
        out.loc[test, "pred_kernel_s"] = kernel_time_s(held_rows, fit_kernel(train))
        out.loc[test, "pred_roofline_s"] = roofline_time_s(held_rows, *fit_roofline(train))
        out.loc[test, "pred_roofline_launch_s"] = roofline_time_s(
            held_rows, *fit_roofline(train, with_launch=True))
    for name in ("kernel", "roofline", "roofline_launch"):
        out[f"err_{name}"] = np.abs(out[f"pred_{name}_s"] / out.time_s - 1.0)
    return out
