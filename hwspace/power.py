"""Energy per FLOP and per byte, static power and derived TDP, vectorised over candidates."""

from __future__ import annotations

import numpy as np

from hwspace.compute import COMPUTE_CLASSES
from hwspace.tables import LINK_PJ_PER_BIT, node_column

__all__ = ["DATAPATH_ENERGY_FACTOR", "CLASS_ENERGY", "flop_pj", "sram_pj_per_byte", "static_w",
           "derived_tdp_w"]

# [D] Energy of the MAC array alone (0.47 pJ per bf16 MAC at 4 nm, Samsung NPU JSSC 2023)
# misses operand delivery (register files, crossbars, clocks). H100 at TDP spends
# 0.71 pJ per bf16 FLOP for the whole board (costpower.md §3.2); with HBM and leakage taken
# out that is ~2x the array figure, so every FLOP costs twice the array energy.
DATAPATH_ENERGY_FACTOR = 2.0

# Energy per FLOP of each class relative to bf16's: 8-bit 0.7, 4-bit half that. The spec
# sheets' 2x FP8 and INT8 rates at the same TDP would make it 0.5, but H100 SXM runs large FP8
# GEMMs at 952 TFLOP/s median against 731 for bf16 under its 700 W, 1.3x not 2x
# (AIConfigurator's measured tables, data/operators/aiconfigurator_gemm.csv, m, n, k >=
# 2,048), while A100's INT8 GEMMs (SmoothQuant, 504 of 624) keep bf16's share of peak inside
# 400 W: 0.7 fits both, and MLPerf's power-capped cards (H100 PCIe and NVL, A100 PCIe, A10,
# A30, T4), whose INT8 BERT stays 25-55 % over at 0.5. The mobile NPU's array-only INT8 figure
# (0.17 / 0.47 pJ per MAC, Samsung JSSC 2023) leaves out operand delivery, which does not
# shrink with the multiplier.
CLASS_ENERGY = {"bf16": 1.0, "fp8": 0.7, "int8": 0.7, "int4": 0.35, "fp4": 0.35}
_CLASS_ROW = np.array([CLASS_ENERGY[c] for c in COMPUTE_CLASSES])  # in COMPUTE_CLASSES order


def flop_pj(node_idx: np.ndarray, bf16_pj: np.ndarray | None = None) -> np.ndarray:
    """Energy per FLOP (pJ) of each compute class incl. datapath overhead:
    (n_cand, len(COMPUTE_CLASSES)); a MAC is 2 FLOP. ``bf16_pj``: a chip's own figure per
    bf16 FLOP (ChipConfig.flop_pj), NaN: the process node's."""
    node = node_column("mac_pj_bf16")[node_idx] / 2.0 * DATAPATH_ENERGY_FACTOR
    bf16 = node if bf16_pj is None else np.where(np.isnan(bf16_pj), node, bf16_pj)
    return bf16[:, None] * _CLASS_ROW


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
    """Power with compute (bf16), memory, SRAM and links all at full rate, plus static
    (n_cand,), W. Checks: H100 (4 nm) ~720 W vs 700 W spec; A100 (7 nm) ~390 W vs 400 W.
    8-bit peaks draw more (CLASS_ENERGY): they throttle, as H100's FP8 GEMMs do."""
    dynamic = (
        peak_bf16_flop_per_s * flop_pj_bf16
        + mem_bw_bytes_per_s * mem_pj_per_byte
        + sram_bw_bytes_per_s * sram_pj
        + link_bw_bytes_per_s * 8.0 * LINK_PJ_PER_BIT
    )
    return static + dynamic * 1e-12
