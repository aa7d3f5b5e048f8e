"""The model's global efficiency factors: one place, never per chip (DESIGN.md section 4).

Calibration (issue "Fidelity") may refit these on shared/data/measured_public.csv; the
defaults below are anchored on published measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Efficiency", "DEFAULT"]


@dataclass(frozen=True)
class Efficiency:
    # Large bf16 matrix products reach about 80-86 % of peak on A100/H100 (cuBLAS
    # measurements quoted in the Fidelity issue; NVIDIA "Matrix Multiplication Background").
    compute_max: float = 0.80
    # Rows of a matrix product at which it reaches half of ``compute_max``: small-M products
    # (decode) leave tensor cores idle. eta(M) = compute_max * max(M / (M + m_half),
    # vector_fraction): a matrix-vector product can always run on the vector units.
    m_half: float = 32.0
    # Achieved fraction of peak memory bandwidth (copies reach ~90 %; GEMV ~80-85 %).
    memory: float = 0.85
    # Vector units (norms, softmax, adds) relative to the matrix peak: H100 has 67 TFLOP/s
    # of fp32 vector math beside 989 TFLOP/s of bf16 tensor math (~1/16).
    vector_fraction: float = 1.0 / 16.0
    # Fixed cost of every operator instance: kernel launch and synchronisation.
    op_overhead_s: float = 2e-6
    # Extra latency of a reduction barrier (softmax, norms).
    reduction_latency_s: float = 1e-6
    # Achieved fraction of link bandwidth in ring collectives (NCCL bus bandwidth).
    collective: float = 0.75
    # Share of memory + SRAM usable by weights, KV cache and activations (vLLM's default
    # gpu_memory_utilization is 0.9); the rest is runtime, fragmentation, buffers.
    usable_memory: float = 0.9
    # A flash-attention tile: query and key blocks of this many rows.
    flash_tile_rows: int = 128


DEFAULT = Efficiency()
