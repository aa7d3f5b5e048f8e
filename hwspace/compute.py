"""Compute peaks per dtype class and on-chip (SRAM) bandwidth, vectorised over candidates."""

from __future__ import annotations

import numpy as np

__all__ = ["COMPUTE_CLASSES", "peak_flop_per_s", "sram_bw_bytes_per_s",
           "SRAM_BYTES_PER_CYCLE_PER_MB", "DEFAULT_VECTOR_RATIO", "MACS_PER_UNIT",
           "default_compute_units"]

# The dtype classes a datapath may accelerate; bf16 is the reference (speedup 1).
COMPUTE_CLASSES: tuple[str, ...] = ("bf16", "fp8", "int8", "int4", "fp4")

# Vector units (norms, softmax, matrix-vector products) relative to the matrix bf16 peak, where
# a chip does not say. [D] NVIDIA non-tensor FP16 vs dense tensor bf16: H100 SXM 133.8 / 989
# = 0.135, A100 78 / 312 = 0.25 (NVIDIA H100 and A100 whitepapers, not in shared/data). An
# accelerator built around its matrix array keeps a vector unit of that order: 1/8.
DEFAULT_VECTOR_RATIO = 0.125

# Where a chip does not say how many compute units (SMs, CUs, cores) its MACs form: one per
# 1,024 bf16 MACs, an A100 SM (312 TFLOP/s = 108 SMs x 1,024 MACs x 2 x 1.41 GHz; NVIDIA A100
# whitepaper). Units set how a matrix product's output tiles quantise into waves.
MACS_PER_UNIT = 1024.0


def default_compute_units(macs: np.ndarray) -> np.ndarray:
    """Compute units of chips that do not state them: MACS_PER_UNIT MACs each, at least 1."""
    return np.maximum(1.0, np.round(np.asarray(macs, float) / MACS_PER_UNIT))


# [D] Groq LPU: 80 TB/s from 230 MB of SRAM at 900 MHz = 386 bytes per cycle per MB
# (techpowerup.com via chips.csv; clock from Abts et al., ISCA 2020). Cerebras WSE-3 gives
# 21 PB/s / 44 GB at ~1.1 GHz = 434: banks scale with capacity.
SRAM_BYTES_PER_CYCLE_PER_MB = 400.0
# A MAC consumes at most two bf16 operands per cycle: more SRAM ports than that cannot be fed.
_SRAM_BYTES_PER_MAC_CYCLE = 4.0


def peak_flop_per_s(macs: np.ndarray, clock_hz: np.ndarray, speedup: np.ndarray) -> np.ndarray:
    """Peak dense FLOP/s: 2 FLOP per MAC per cycle times the dtype speedup.

    Args:
        macs, clock_hz: (n_cand,) or (n_cand, 1) MAC units at bf16 and clock in Hz.
        speedup: (n_cand,) or (n_cand, n_classes) throughput multiplier of the dtype class vs
            bf16; 0 means the class is unsupported and math runs at bf16 (multiplier 1).

    Returns:
        FLOP/s, the broadcast shape of the arguments.
    """
    return 2.0 * macs * clock_hz * np.where(speedup > 0, speedup, 1.0)


def sram_bw_bytes_per_s(
    given: np.ndarray, sram_bytes: np.ndarray, macs: np.ndarray, clock_hz: np.ndarray
) -> np.ndarray:
    """On-chip bandwidth in bytes/s: the given figure, else derived from SRAM banks and clock,
    capped by what the MACs can consume."""
    banks = sram_bytes / 1e6 * SRAM_BYTES_PER_CYCLE_PER_MB
    derived = clock_hz * np.minimum(banks, macs * _SRAM_BYTES_PER_MAC_CYCLE)
    return np.where(np.isnan(given), derived, given)
