"""The model's global efficiency factors: one place, never per chip (DESIGN.md section 4).

The defaults are fitted on data/measured_public.csv by ``dse calibrate``
(dse/analysis/calibration.py: coordinate descent from published anchors, inside bounds
anchored on published fractions of peak, loss = mean log error capped at 25 %), rounded to
three digits. Refit when the model or
the data change; tests/dse/test_validate.py checks the defaults still are the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Efficiency", "DEFAULT"]


@dataclass(frozen=True)
class Efficiency:
    # Achieved fraction of peak FLOP/s of large matrix products end to end. cuBLAS reaches
    # 80-86 % on large bf16 GEMMs of A100/H100; serving engines' fp8 and fused kernels less.
    compute_max: float = 0.666
    # Small products (decode) lose the rest to tile padding and wave quantisation over the
    # chip's compute units (dse.evaluator.roofline._tile_efficiency): shapes, not a factor.
    # Achieved fraction of peak memory bandwidth (copies reach ~90 %).
    memory: float = 0.763
    # Fixed cost of every operator instance on a chip that launches kernels: launch,
    # synchronisation, framework. A launch and its wait take 4-6 us on a current GPU and
    # driver (pegainfer, "From Launch Overhead to CUDA Graph", RTX 5070 Ti, CUDA 13), "5-20 us"
    # through frameworks (devbytes.co.in, "Reducing CUDA kernel launch overhead"); NVIDIA
    # measured ~20 us for a PyTorch element-wise kernel on a V100 (Nsight Systems guide); a
    # CUDA graph replays a node in ~1-2 us. 7 us: eager launches of current stacks, where the
    # all-data fit of the efficiency factors also lands (7.5 us). Held fixed, not fitted per
    # cross-validation fold (dse.analysis.calibration.BOUNDS). Compiled graphs and dataflow
    # chips (hwspace.tables.EXECUTION_MODELS) pay none.
    op_overhead_s: float = 7e-6
    # Extra latency of a reduction barrier (softmax, norms).
    reduction_latency_s: float = 1e-6
    # Achieved fraction of peak memory bandwidth of attention reading the KV cache: paged,
    # per-sequence blocks gather worse than a weight stream (sources in calibration.BOUNDS).
    kv_memory: float = 0.689
    # Vector-unit FLOP per weight to dequantise weight-only formats (int4 weights under 16-bit
    # activations): llama.cpp Q4_0 is y = (q - 8) * d per weight (ggml-quants.c
    # dequantize_row_q4_0): unpack a nibble, convert, subtract, scale = 4 operations.
    dequant_flop_per_weight: float = 4.0
    # Share of memory + SRAM usable by weights, KV cache and activations (vLLM defaults to
    # 0.9; TensorRT-LLM served 94 % of an H100 in measured row 57); the rest is runtime.
    usable_memory: float = 0.945
    # A flash-attention tile: query and key blocks of this many rows.
    flash_tile_rows: int = 128


DEFAULT = Efficiency()
