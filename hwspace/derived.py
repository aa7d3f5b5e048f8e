"""Everything a chip implies, computed once per batch of candidates: peaks, bandwidths,
area, cost, power. The evaluator reads these; it never recomputes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hwspace import compute, cost, memory, power
from hwspace.spec import ChipArrays, from_columns
from hwspace.tables import RETICLE_MM2, WAFER_SCALE_MAX_MM2

__all__ = ["ChipDerived", "derive", "headline"]


@dataclass(frozen=True)
class ChipDerived:
    """Derived figures, (n_cand,) unless noted; ``*_cls`` arrays are (n_cand, n_classes)."""

    peak_flop_per_s_cls: np.ndarray
    flop_pj_cls: np.ndarray
    sram_bw_bytes_per_s: np.ndarray
    link_bw_bytes_per_s: np.ndarray  # all links of one chip, one direction
    mem_capacity_bytes: np.ndarray  # off-chip memory the chip can read (0: none)
    capacity_bytes: np.ndarray  # off-chip memory + SRAM
    mem_pj_per_byte: np.ndarray
    sram_pj_per_byte: np.ndarray
    die_area_mm2: np.ndarray  # all logic silicon of the package
    per_die_mm2: np.ndarray
    area_ok: np.ndarray  # each die within the reticle (or the wafer, when wafer-scale)
    die_cost_usd: np.ndarray
    unit_cost_usd: np.ndarray
    static_w: np.ndarray
    tdp_w: np.ndarray


def headline(cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What design-space columns imply, for summaries: peak bf16 TFLOP/s, memory bandwidth
    (TB/s) and capacity (GB), and memory bytes per FLOP. ``chips`` (a system size) is
    ignored."""
    chips = from_columns({k: np.asarray(v) for k, v in cols.items() if k != "chips"})
    peak = derive(chips).peak_flop_per_s_cls[:, 0]
    return dict(peak_tflops=peak / 1e12, mem_bw_tb_s=chips.mem_bw_bytes_per_s / 1e12,
                mem_capacity_gb=chips.mem_capacity_bytes / 1e9,
                bytes_per_flop=chips.mem_bw_bytes_per_s / peak)


def derive(chips: ChipArrays) -> ChipDerived:
    """Peaks, bandwidths, area, yield, cost, static power and TDP of every candidate."""
    # All dtype classes at once: (n_cand, 1) MACs and clock against (n_cand, n_classes).
    peak = compute.peak_flop_per_s(chips.macs[:, None], chips.clock_hz[:, None],
                                   chips.dtype_speedup)
    peak[:, 0] = 2.0 * chips.macs * chips.clock_hz
    sram_bw = compute.sram_bw_bytes_per_s(
        chips.sram_bw_bytes_per_s, chips.sram_bytes, chips.macs, chips.clock_hz
    )
    area = np.where(
        np.isnan(chips.die_area_mm2),
        cost.die_area_mm2(
            chips.node_idx, chips.macs, chips.dtype_speedup, chips.sparsity_speedup,
            chips.sram_bytes, chips.mem_idx, chips.mem_stacks, chips.link_count,
            chips.link_bw_bytes_per_s,
        ),
        chips.die_area_mm2,
    )
    per_die = area / chips.dies
    area_ok = np.where(chips.wafer_scale, area <= WAFER_SCALE_MAX_MM2, per_die <= RETICLE_MM2)
    link_bw = chips.link_count * chips.link_bw_bytes_per_s
    mem_capacity = memory.usable_capacity_bytes(chips.mem_idx, chips.mem_capacity_bytes,
                                                chips.mem_bw_bytes_per_s)
    mem_pj = memory.memory_pj_per_byte(chips.mem_idx)
    sram_pj = power.sram_pj_per_byte(chips.node_idx)
    flop_pj = power.flop_pj(chips.node_idx, chips.flop_pj)
    static = power.static_w(chips.node_idx, area)
    tdp = np.where(
        np.isnan(chips.tdp_w),
        power.derived_tdp_w(
            static, peak[:, 0], flop_pj[:, 0], chips.mem_bw_bytes_per_s, mem_pj,
            sram_bw, sram_pj, link_bw,
        ),
        chips.tdp_w,
    )
    die_cost = cost.die_cost_usd(per_die, chips.node_idx, chips.wafer_scale)
    unit = cost.unit_cost_usd(
        die_cost,
        chips.dies,
        memory.memory_cost_usd(chips.mem_idx, chips.mem_capacity_bytes),
        cost.packaging_usd(area, chips.mem_idx, chips.mem_stacks, chips.dies),
        tdp,
    )
    return ChipDerived(
        peak_flop_per_s_cls=peak,
        flop_pj_cls=flop_pj,
        sram_bw_bytes_per_s=sram_bw,
        link_bw_bytes_per_s=link_bw,
        mem_capacity_bytes=mem_capacity,
        capacity_bytes=mem_capacity + chips.sram_bytes,
        mem_pj_per_byte=mem_pj,
        sram_pj_per_byte=sram_pj,
        die_area_mm2=area,
        per_die_mm2=per_die,
        area_ok=area_ok,
        die_cost_usd=die_cost,
        unit_cost_usd=np.where(np.isnan(chips.unit_cost_usd), unit, chips.unit_cost_usd),
        static_w=static,
        tdp_w=tdp,
    )
