"""Die area, dies per wafer, yield, die and unit cost, vectorised over candidates."""

from __future__ import annotations

import numpy as np

from hwspace.tables import (
    HARVEST_FRACTION,
    LINK_PHY_MM2_PER_GB_S,
    SCRIBE_LANE_MM,
    TCO,
    WAFER_DIAMETER_MM,
    WAFER_EDGE_LOSS_MM,
    YIELD_ALPHA,
    memory_column,
    node_column,
)

__all__ = [
    "die_area_mm2",
    "dies_per_wafer",
    "negative_binomial_yield",
    "yield_fraction",
    "die_cost_usd",
    "packaging_usd",
    "unit_cost_usd",
]

# [D] A100 die-shot (LLMCompass die_area.csv): on-chip interconnect 76 + other 40 mm2 on top
# of cores 476 + L2 119 mm2 = 20 % overhead for NoC, control and clocking.
_LOGIC_OVERHEAD = 0.20
# [D] host interface: PCIe x16 at 0.48 mm2 per lane (LLMCompass) ~ 8 mm2, rounded up with pads.
_HOST_IO_MM2 = 10.0
# [D] judgement: each unit of low-precision speedup above 1 (fp8 x2 = 1 unit) and 2:4
# sparsity add 5 % to the MAC array (shared datapath; costpower.md §2.3 notes FP8/INT8 lanes
# cost about half a BF16 lane), so faster low-precision modes are not free in the search.
_AREA_PER_SPEEDUP_UNIT = 0.05


def die_area_mm2(
    node_idx: np.ndarray,
    macs: np.ndarray,
    dtype_speedup: np.ndarray,
    sparsity_speedup: np.ndarray,
    sram_bytes: np.ndarray,
    mem_idx: np.ndarray,
    mem_stacks: np.ndarray,
    link_count: np.ndarray,
    link_bw_bytes_per_s: np.ndarray,
) -> np.ndarray:
    """Total logic silicon per package, mm2 (n_cand,): MAC array + SRAM, plus NoC/control
    overhead, + memory PHYs + link PHYs + host I/O. ``dtype_speedup`` is (n_cand, n_classes)
    with bf16 first."""
    extra_modes = np.maximum(dtype_speedup[:, 1:] - 1.0, 0.0).sum(axis=1)
    extra = _AREA_PER_SPEEDUP_UNIT * (extra_modes + (sparsity_speedup - 1.0))
    mac_mm2 = macs * node_column("mac_area_um2")[node_idx] * 1e-6 * (1.0 + extra)
    sram_mm2 = sram_bytes / 1e6 / node_column("sram_mb_per_mm2")[node_idx]
    mem_phy = mem_stacks * memory_column("phy_mm2_per_stack")[mem_idx]
    link_phy = link_count * link_bw_bytes_per_s / 1e9 * LINK_PHY_MM2_PER_GB_S
    return (mac_mm2 + sram_mm2) * (1.0 + _LOGIC_OVERHEAD) + mem_phy + link_phy + _HOST_IO_MM2


def dies_per_wafer(area_mm2: np.ndarray) -> np.ndarray:
    """Gross dies per 300 mm wafer (Chiplet Actuary chip.py): scribe-lane padded area A_c,
    N = pi (d/2 - e)^2 / A_c - pi (d - 2e) / sqrt(2 A_c)."""
    a_c = area_mm2 + 2.0 * SCRIBE_LANE_MM * np.sqrt(area_mm2) + SCRIBE_LANE_MM**2
    d, e = WAFER_DIAMETER_MM, WAFER_EDGE_LOSS_MM
    n = np.pi * (d / 2 - e) ** 2 / a_c - np.pi * (d - 2 * e) / np.sqrt(2.0 * a_c)
    return np.maximum(n, 1.0)


def negative_binomial_yield(area_mm2: np.ndarray, d0_per_cm2: np.ndarray) -> np.ndarray:
    """Defect-free fraction Y = (1 + D0 A / alpha)^-alpha, A in cm2 (ttm-cas, alpha = 3)."""
    return (1.0 + d0_per_cm2 * area_mm2 / 100.0 / YIELD_ALPHA) ** (-YIELD_ALPHA)


def yield_fraction(area_mm2: np.ndarray, node_idx: np.ndarray) -> np.ndarray:
    """Sellable fraction of dies: defect-free dies plus the harvested share of the others."""
    y = negative_binomial_yield(area_mm2, node_column("d0_per_cm2")[node_idx])
    return y + HARVEST_FRACTION * (1.0 - y)


def die_cost_usd(
    per_die_mm2: np.ndarray, node_idx: np.ndarray, wafer_scale: np.ndarray
) -> np.ndarray:
    """Cost of one good die incl. test (n_cand,), USD. A wafer-scale part is one whole wafer
    whose redundancy absorbs defects (Cerebras routes around failed cores)."""
    wafer = node_column("wafer_usd")[node_idx]
    good = dies_per_wafer(per_die_mm2) * yield_fraction(per_die_mm2, node_idx)
    per_die = np.where(wafer_scale, wafer, wafer / good)
    return per_die * (1.0 + TCO.test_fraction)


def packaging_usd(
    logic_mm2: np.ndarray, mem_idx: np.ndarray, mem_stacks: np.ndarray, dies: np.ndarray
) -> np.ndarray:
    """Package cost (n_cand,): 2.5D (CoWoS-class) when HBM or several dies share an
    interposer, scaled by interposer area from the $750 H100 package and at least the $300
    low end (siliconanalysts packaging tool); an organic package otherwise."""
    needs_2p5d = memory_column("interposer")[mem_idx].astype(bool) & (mem_stacks > 0)
    needs_2p5d |= dies > 1
    interposer_mm2 = logic_mm2 + mem_stacks * TCO.hbm_site_mm2 * needs_2p5d
    scaled = TCO.packaging_2p5d_usd * interposer_mm2 / TCO.packaging_2p5d_ref_mm2
    return np.where(needs_2p5d, np.maximum(scaled, 300.0), TCO.package_usd)


def unit_cost_usd(
    die_cost: np.ndarray,
    dies: np.ndarray,
    memory_usd: np.ndarray,
    package_usd: np.ndarray,
    tdp_w: np.ndarray,
) -> np.ndarray:
    """Manufacturing cost of one accelerator card (n_cand,), USD: silicon + memory +
    package + board (PCB, parts and power delivery)."""
    board = TCO.board_usd + TCO.psu_usd_per_w * tdp_w
    return dies * die_cost + memory_usd + package_usd + board

