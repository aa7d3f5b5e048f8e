"""Off-chip memory: capacity and bandwidth from type x stacks, energy per byte, price."""

from __future__ import annotations

import numpy as np

from hwspace.tables import MEMORY_TYPES, memory_column

__all__ = ["derive_memory", "usable_capacity_bytes", "memory_pj_per_byte", "memory_cost_usd"]

_NONE = MEMORY_TYPES.index("none")


def derive_memory(
    mem_idx: np.ndarray,
    stacks: np.ndarray,
    capacity_gb: np.ndarray,
    bandwidth_tb_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Capacity (GB) and bandwidth (TB/s): given figures where present (not NaN), else the
    per-stack figures of the memory table times the stack count; type ``none`` (an SRAM-only
    chip) has neither, whatever else is given. All arrays (n_cand,)."""
    cap = np.where(
        np.isnan(capacity_gb), stacks * memory_column("capacity_gb_per_stack")[mem_idx], capacity_gb
    )
    bw = np.where(
        np.isnan(bandwidth_tb_s),
        stacks * memory_column("bw_gb_s_per_stack")[mem_idx] / 1e3,
        bandwidth_tb_s,
    )
    none = mem_idx == _NONE
    return np.where(none, 0.0, cap), np.where(none, 0.0, bw)


def usable_capacity_bytes(mem_idx: np.ndarray, capacity_bytes: np.ndarray,
                          bw_bytes_per_s: np.ndarray) -> np.ndarray:
    """Off-chip bytes the chip can use (n_cand,): none for type ``none``, and none where the
    bandwidth is 0 (memory it cannot read is no memory, never free memory)."""
    return np.where((mem_idx != _NONE) & (bw_bytes_per_s > 0), capacity_bytes, 0.0)


def memory_pj_per_byte(mem_idx: np.ndarray) -> np.ndarray:
    """Access energy of the off-chip memory, pJ per byte (n_cand,)."""
    return 8.0 * memory_column("pj_per_bit")[mem_idx]


def memory_cost_usd(mem_idx: np.ndarray, capacity_bytes: np.ndarray) -> np.ndarray:
    """Price of the memory devices (n_cand,), USD."""
    return capacity_bytes / 1e9 * memory_column("usd_per_gb")[mem_idx]
