"""The model's global efficiency factors: one place, never per chip (DESIGN.md section 4).

The defaults are fitted on data/measured_public.csv by ``dse calibrate`` (dse/calibration.py:
coordinate descent from published anchors, inside bounds anchored on published fractions of
peak, loss = mean log error capped at 25 %), rounded to three digits. Refit when the model or
the data change; tests/dse/test_validate.py checks the defaults still are the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Efficiency", "DEFAULT"]


@dataclass(frozen=True)
class Efficiency:
    # Achieved fraction of peak FLOP/s of large matrix products end to end. cuBLAS reaches
    # 80-86 % on large bf16 GEMMs of A100/H100; serving engines' fp8 and fused kernels less.
    compute_max: float = 0.725
    # Rows of a matrix product at which it reaches half of ``compute_max``: small-M products
    # (decode) leave tensor cores idle. eta(M) = compute_max * max(M / (M + m_half),
    # vector_ratio): a matrix-vector product can always run on the chip's vector units.
    m_half: float = 252.0
    # Achieved fraction of peak memory bandwidth (copies reach ~90 %).
    memory: float = 0.833
    # Fixed cost of every operator instance: kernel launch, synchronisation, framework.
    op_overhead_s: float = 9.66e-6
    # Extra latency of a reduction barrier (softmax, norms).
    reduction_latency_s: float = 1e-6
    # Achieved fraction of link bandwidth in ring all-reduces.
    collective: float = 0.311
    # Share of memory + SRAM usable by weights, KV cache and activations (vLLM defaults to
    # 0.9; TensorRT-LLM served 94 % of an H100 in measured row 57); the rest is runtime.
    usable_memory: float = 0.946
    # A flash-attention tile: query and key blocks of this many rows.
    flash_tile_rows: int = 128


DEFAULT = Efficiency()
