"""Energy per FLOP and per byte, static power and derived TDP, vectorised over candidates."""

from __future__ import annotations

import numpy as np

from hwspace.compute import COMPUTE_CLASSES
from hwspace.tables import LINK_PJ_PER_BIT, node_column

__all__ = ["DATAPATH_ENERGY_FACTOR", "flop_pj", "sram_pj_per_byte", "static_w", "derived_tdp_w"]

# [D] Energy of the MAC array alone (0.47 pJ per bf16 MAC at 4 nm, Samsung NPU JSSC 2023)
# misses operand delivery (register files, crossbars, clocks). H100 at TDP spends
# 0.71 pJ per bf16 FLOP for the whole board (costpower.md §3.2); with HBM and leakage taken
# out that is ~2x the array figure, so every FLOP costs twice the array energy.
DATAPATH_ENERGY_FACTOR = 2.0

# Energy per MAC of each class relative to the node's bf16 / int8 MAC [D costpower.md §3.2]:
# fp8 = 0.5 x bf16 (H100/B200: 2x FP8 FLOP/s at the same TDP); int4 = 0.5 x int8;
# fp4 = 0.25 x bf16 (half of fp8, same rule).
_CLASS_BASE = {"bf16": ("mac_pj_bf16", 1.0), "fp8": ("mac_pj_bf16", 0.5),
               "int8": ("mac_pj_int8", 1.0), "int4": ("mac_pj_int8", 0.5),
               "fp4": ("mac_pj_bf16", 0.25)}


def flop_pj(node_idx: np.ndarray) -> np.ndarray:
    """Energy per FLOP (pJ) of each compute class incl. datapath overhead:
    (n_cand, len(COMPUTE_CLASSES)); a MAC is 2 FLOP."""
    cols = []
    for cls in COMPUTE_CLASSES:
        column, factor = _CLASS_BASE[cls]
        cols.append(node_column(column)[node_idx] * factor / 2.0)
    return np.stack(cols, axis=1) * DATAPATH_ENERGY_FACTOR


def sram_pj_per_byte(node_idx: np.ndarray) -> np.ndarray:
    """SRAM read energy, pJ per byte (n_cand,)."""
    return 8.0 * node_column("sram_pj_per_bit")[node_idx]


def static_w(node_idx: np.ndarray, area_mm2: np.ndarray) -> np.ndarray:
    """Leakage and always-on power (n_cand,), W: proportional to silicon area."""
    return node_column("static_w_per_mm2")[node_idx] * area_mm2


def derived_tdp_w(
    static: np.ndarray,
    peak_bf16_flop_per_s: np.ndarray,
    flop_pj_bf16: np.ndarray,
    mem_bw_bytes_per_s: np.ndarray,
    mem_pj_per_byte: np.ndarray,
    sram_bw_bytes_per_s: np.ndarray,
    sram_pj: np.ndarray,
    link_bw_bytes_per_s: np.ndarray,
) -> np.ndarray:
    """Power with compute, memory, SRAM and links all at full rate, plus static (n_cand,), W.
    Checks: H100 (4 nm) ~720 W vs 700 W spec; A100 (7 nm) ~390 W vs 400 W."""
    dynamic = (
        peak_bf16_flop_per_s * flop_pj_bf16
        + mem_bw_bytes_per_s * mem_pj_per_byte
        + sram_bw_bytes_per_s * sram_pj
        + link_bw_bytes_per_s * 8.0 * LINK_PJ_PER_BIT
    )
    return static + dynamic * 1e-12
