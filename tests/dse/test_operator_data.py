"""Public operator measurements (data/operators/) and the kernel-efficiency model fitted on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dse.analysis.kernel_fit import (KernelParams, fit_kernel, kernel_time_s,
                                     leave_one_chip_out, roofline_time_s, shape_efficiency)
from dse.analysis.operators import (COMM_FILES, DATA_DIR, END_TO_END_FILES, OPERATOR_FILES,
                                    SPEC_FILE, load_end_to_end, load_operators, reserved_hits)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return load_operators()


@pytest.mark.parametrize("name", ["NVIDIA H200 SXM", "B200", "GB200 NVL72", "AMD MI300X",
                                  "MI300A", "L40S", "NVIDIA L4", "L4 24GB", "RTX 4090",
                                  "GeForce 4090", "rtx4090", "Apple M2 Ultra", "M3 Max",
                                  "m4-max"])
def test_reserved_names_are_caught(name):
    assert reserved_hits(name)


@pytest.mark.parametrize("name", ["GH200 480GB", "NVIDIA L40", "L40 48GB", "A100", "H100 SXM",
                                  "MI250", "NVIDIA T4", "Tesla P4", "RTX 3090", "M1 Max",
                                  "M3 Pro", "b2000", "H2000"])
def test_other_names_pass(name):
    assert not reserved_hits(name)


def test_no_reserved_chip_in_any_file():
    # The reserved chips are the held-out check of issue 19: not one row, not one mention.
    hits = {p.name: reserved_hits(p.read_text()) for p in DATA_DIR.iterdir() if p.is_file()}
    assert not {name: h[:5] for name, h in hits.items() if h}


def test_rows_of_five_chips_two_vendors_each_with_a_source(rows):
    assert rows.chip.nunique() >= 5
    assert rows.vendor.nunique() >= 2
    assert rows.source.str.strip().str.len().gt(0).all()
    assert (rows.time_s > 0).all() and (rows.flop > 0).all() and (rows.mem_bytes > 0).all()


def test_every_file_row_has_a_source():
    for path in DATA_DIR.glob("*.csv"):
        frame = pd.read_csv(path)
        assert frame.source.notna().all() and frame.source.str.len().gt(0).all(), path.name


def test_every_file_is_operator_end_to_end_collective_or_spec():
    # A file outside these lists would be read by nothing, or by the wrong loader.
    known = {*OPERATOR_FILES, *END_TO_END_FILES, *COMM_FILES, SPEC_FILE}
    assert {p.name for p in DATA_DIR.glob("*.csv")} == known


def test_end_to_end_rows_stay_apart(rows):
    assert not set(rows.dataset) & set(END_TO_END_FILES)
    for name, frame in load_end_to_end().items():
        assert (frame.row_kind == "end_to_end").all(), name


def _gemm_sample(rows: pd.DataFrame, per_chip: int = 150) -> pd.DataFrame:
    gemm = rows[rows.op_kind == "gemm"]
    return gemm.sample(frac=1.0, random_state=0).groupby("chip").head(per_chip)


def test_kernel_model_beats_plain_roofline_leave_one_chip_out(rows):
    judged = leave_one_chip_out(_gemm_sample(rows))
    kernel, roofline = judged.err_kernel.median(), judged.err_roofline.median()
    # Margin: at least a third less median error on chips the fit never saw.
    assert kernel < 0.67 * roofline, (kernel, roofline)


def _h100_bf16(batch: float, m: float, n: float, k: float, **spec) -> pd.DataFrame:
    """One bf16 GEMM on the H100 SXM spec (conf/chip/h100.yaml: 132 SMs, 989.4 TFLOP/s,
    3.35 TB/s), TensorRT-LLM harness."""
    base = dict(compute_units=132.0, peak_flop_per_s=989.4e12, mem_bw_bytes_per_s=3.35e12)
    base.update(spec)
    return pd.DataFrame([dict(op_kind="gemm", batch=batch, m=m, n=n, k=k,
                              flop=2.0 * batch * m * n * k,
                              mem_bytes=2.0 * batch * (m * k + k * n + m * n),
                              dataset="aiconfigurator_gemm.csv", **base)])


def test_one_tile_past_a_full_wave_takes_about_two_waves():
    # NVIDIA, "Matrix Multiplication Background User's Guide" (DU-09799-001), section 3.2
    # Wave Quantization: with one tile per SM, a grid a few tiles past the SM count runs a
    # second, almost empty wave, and the GEMM takes about twice as long. Here 33 x 4 = 132
    # tiles of 128 x 128 fill the H100's 132 SMs once; one more row makes 34 x 4 = 136.
    p = KernelParams(launch_s=(0.0,) * 4)
    full, one_more = _h100_bf16(1, 128 * 33, 512, 16384), _h100_bf16(1, 128 * 33 + 1, 512, 16384)
    assert kernel_time_s(one_more, p)[0] / kernel_time_s(full, p)[0] == pytest.approx(2.0, rel=0.15)
    # The plain roofline sees only the 0.02 % more FLOP.
    assert roofline_time_s(one_more, 0.8)[0] / roofline_time_s(full, 0.8)[0] < 1.001


@pytest.mark.parametrize(("m", "n", "expected_eff", "expected_waves"), [
    (128 * 33, 512, 1.0, 1),  # 132 whole tiles on 132 SMs: nothing lost
    (128 * 66, 512, 1.0, 2),  # two full waves
    (128 * 33 + 1, 512, 136 / 264 * (128 * 33 + 1) / (128 * 34), 2),  # 136 tiles, 2 waves
    # 8 rows pad to one 16-row MMA tile; 64 tiles split K in 2: 128 of 132 SMs busy.
    (8, 8192, 8 / 16 * 128 / 132, 1),
])
def test_shape_efficiency_closed_forms(m, n, expected_eff, expected_waves):
    eff, waves = shape_efficiency(_h100_bf16(1, m, n, 8192))
    assert eff[0] == pytest.approx(expected_eff)
    assert waves[0] == expected_waves


def test_gemv_is_bound_by_bandwidth_not_compute():
    # Decode is a matrix-vector product: ~1-2 FLOP per weight byte at 16 bit (DESIGN.md
    # section 4), far below the H100's ridge point of ~300 FLOP/byte: its time follows
    # bandwidth, not peak FLOP/s.
    p = KernelParams(launch_s=(0.0,) * 4)
    base = kernel_time_s(_h100_bf16(1, 1, 8192, 8192), p)[0]
    more_bw = kernel_time_s(_h100_bf16(1, 1, 8192, 8192, mem_bw_bytes_per_s=6.7e12), p)[0]
    more_flop = kernel_time_s(_h100_bf16(1, 1, 8192, 8192, peak_flop_per_s=1978.8e12), p)[0]
    assert more_bw / base < 0.65
    assert more_flop / base > 0.9


def test_fit_is_global_and_finite(rows):
    p = fit_kernel(_gemm_sample(rows, per_chip=60))
    assert 0.1 < p.compute_eff <= 1.5 and 0.1 < p.memory_eff <= 1.5
    assert np.all(np.isfinite(p.vector())) and np.all(p.vector() > 0)
