"""The kernel-efficiency term: tile padding and idle units of matrix products over a chip's
compute units (dse.evaluator.roofline._tile_efficiency), in place of a fitted m_half."""

import pytest

from dse.api import explain, predict
from dse.evaluator.roofline import tile_efficiency
from hwspace.compute import default_compute_units


def test_whole_tiles_in_whole_waves_run_at_full_rate():
    # 8 x 8 tiles of 128 x 128 on 64 units: one full wave.
    assert tile_efficiency(1024.0, 1024.0, 4096.0, 64.0, 1.0) == pytest.approx(1.0)


def test_a_matrix_vector_product_fills_one_sixteenth_of_a_tile():
    # One token against a weight matrix: the smallest tensor-core tile has 16 rows (PTX ISA
    # mma.m16n8k16), so a decode GEMV uses 1/16 of the matrix units' rate at best.
    assert tile_efficiency(1.0, 4096.0, 4096.0, 32.0, 1.0) == pytest.approx(1 / 16)


def test_too_few_tiles_leave_units_idle_unless_the_reduction_splits():
    # 8 output tiles on 132 units (a tensor-parallel slice of a small product): split-K
    # over a deep reduction fills them; a shallow one (K = 256) cannot be split and keeps 8
    # of 132 busy (DU-09799-001 section 3; CUTLASS split-K).
    assert tile_efficiency(128.0, 1024.0, 8192.0, 132.0, 1.0) == pytest.approx(1.0)
    assert tile_efficiency(128.0, 1024.0, 256.0, 132.0, 1.0) == pytest.approx(8 / 132)


def test_narrow_outputs_pad_to_a_tile_of_16_columns():
    # 40 output columns run as 64-wide tiles: 40/64 of the rate.
    assert tile_efficiency(4096.0, 40.0, 4096.0, 8.0, 1.0) == pytest.approx(40 / 64)


def test_throughput_never_falls_as_the_batch_grows():
    # No wave quantisation in the rows (stream-K balances the tail): rows / time is
    # non-decreasing, so a batch search cannot be gamed by a tile boundary.
    rates = [m * tile_efficiency(m, 1536.0, 4096.0, 132.0, 1.0) for m in range(1, 600)]
    assert all(b >= a for a, b in zip(rates, rates[1:], strict=False))


def test_default_units_are_one_per_a100_sm_of_macs():
    # A100: 108 SMs of 1,024 bf16 MACs (NVIDIA A100 whitepaper).
    assert default_compute_units(108 * 1024) == 108


def _compute_share(rows) -> float:
    linear = [r for r in rows if r["kind"] == "matmul" and r["phase"] == "decode"]
    return sum(r["time_s"] for r in linear if r["bound"] == "compute") / sum(
        r["time_s"] for r in linear)


def test_decode_at_64_sequences_is_bound_by_memory_not_compute():
    # The complaint about m_half: it made 16-64-sequence decode compute-bound, which
    # GEMV-like kernels are not. Llama-3-8B on an H100 at batch 64 reads 16 GB of weights per
    # step (4.8 ms at 3.35 TB/s) for 1 TFLOP (1 ms at 989 TFLOP/s): memory-bound.
    _, rows = explain("h100", "llama3-8b", phase="decode", batch=64, context_len=256)
    assert _compute_share(rows) < 0.2


def test_a_tensor_parallel_all_reduce_waits_for_its_product():
    # TensorRT-LLM and vLLM call the all-reduce (NCCL or a custom kernel) after the GEMM that
    # produces the partial sums: the two add up, they do not overlap. Published direction:
    # Llama-2-70B fp8 on 8 H100s takes 85.1 ms to the first token of 2,048 (NVIDIA
    # TensorRT-LLM performance table, data/measured_public.csv row 67); with the link time
    # hidden under compute the model said 53 ms. Here the links stay faster than every
    # product, yet slower links still lengthen the prefill.
    from dse.presets import load_chip as load

    def ttft(gb_s):
        chip = _chip_dict(load("h100"))
        chip["links"]["gb_s_per_link"] = gb_s
        return predict(chip, "llama2-70b", phase="prefill", batch=1, prompt_len=2048, chips=8,
                       tp=8, weights="fp8", activations="fp8", kv_cache="fp8")["ttft_s"]
    assert ttft(200.0) > 1.01 * ttft(400.0)
    assert ttft(25.0) > 0.055  # the 18 NVLink4 links of 25 GB/s


def _chip_dict(cfg):
    from dataclasses import asdict
    return asdict(cfg)
