"""CNN execution as inference compilers run it (issue 19, item 3): fused epilogues, the tile of
a layer's activations that fits on chip, and the int8 tensor rates of the chips MLPerf ResNet-50
rows run on. Each test moves a prediction the way the cited source says it moves."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from dse.api import explain
from dse.presets import CONF_DIR, load_chip
from workloads import cnn
from workloads.config import CNNConfig
from workloads.ops import ELEMENTWISE, MATMUL

_INT8 = dict(weights="int8", activations="int8")


def _preset(kind: str, name: str, **changes) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / kind / f"{name}.yaml"))
    cfg.pop("defaults", None)
    return {**cfg, **changes}


def _resnet50(**changes) -> dict:
    return _preset("workload", "resnet50", family="cnn", **changes)


def _per_image(chip, workload, batch):
    """(DRAM bytes per image, FLOP per image, throughput) of one chip at a fixed batch."""
    out, rows = explain(chip, workload, batch=batch, **_INT8)
    images = out["batch"]
    return (sum(r["mem_bytes"] * r["count"] for r in rows) / images,
            sum(r["flop"] * r["count"] for r in rows) / images, out["throughput_per_s"])


def test_resnet50_flop_is_the_published_count():
    # torchvision ResNet50_Weights.IMAGENET1K_V1: 4.09 GMACs per 224 x 224 image; the fused
    # epilogue adds only the residual adds' FLOP (< 0.2 %).
    cfg = OmegaConf.merge(OmegaConf.structured(CNNConfig), _resnet50())
    assert cnn.macs(cfg) == pytest.approx(4.09e9, rel=0.01)
    flop = _per_image("a10", _resnet50(), 1)[1]
    assert flop == pytest.approx(2 * 4.09e9, rel=0.01)


def test_fused_epilogues_leave_one_kernel_per_convolution():
    # TensorRT "Layer Fusion" catalog (docs.nvidia.com/deeplearning/tensorrt/latest/performance/
    # fusion-catalog.html): convolution + scale (folded BN) + ReLU + element-wise sum run as one
    # kernel. ResNet-50: 53 convolutions and the FC layer, 16 residual adds, all as matmuls.
    cfg = OmegaConf.merge(OmegaConf.structured(CNNConfig), _resnet50())
    ops = cnn.infer_pass(cfg).ops
    assert not (ops.kind == ELEMENTWISE).any()
    assert ops.count[ops.kind == MATMUL].sum() == 54
    assert sum(c for name, c in zip(ops.names, ops.count, strict=True) if "_add" in name) == 16
    unfused = cnn.infer_pass(OmegaConf.merge(cfg, dict(fuse_epilogues=False))).ops
    assert unfused.count[unfused.kind == ELEMENTWISE].sum() == 2 * 53 + 16


def test_fusion_cuts_dram_bytes_and_raises_throughput():
    # Without fusion each epilogue is a round trip of the conv's output through memory: a
    # ResNet-50 batch that spills its activations moves about 3x the bytes (the epilogues read
    # and write each output twice more) and runs slower; the vector work stays.
    fused = _per_image("a10", _resnet50(), 256)
    unfused = _per_image("a10", _resnet50(fuse_epilogues=False), 256)
    assert unfused[0] > 2.0 * fused[0]
    assert unfused[2] < fused[2]
    assert unfused[1] == pytest.approx(fused[1], rel=0.02)


def test_activations_that_fit_on_chip_skip_dram():
    # A layer's output tile that fits the free SRAM stays there for the next layer (CUDA
    # cudaAccessPolicyWindow: the hit share of a window persists in L2): the same card with
    # 8x the L2 moves fewer bytes per image at a batch whose activations spill, and runs
    # faster.
    small = _per_image(_preset("chip", "a10"), _resnet50(), 64)
    large = _per_image(_preset("chip", "a10", sram_mb=48), _resnet50(), 64)
    assert large[0] < 0.9 * small[0]
    assert large[2] > small[2]


def test_a_tile_of_spilling_activations_stays_on_chip():
    # Not all or nothing: where a layer's activations pass the free SRAM, the tile that fits
    # still skips DRAM, so each MB more of SRAM saves about a MB per spilling layer instance
    # (ResNet-50 at batch 256 on an A10: all 54 spill; 6 -> 7 MB of L2 saves ~0.7 %).
    small = _per_image(_preset("chip", "a10"), _resnet50(), 256)
    large = _per_image(_preset("chip", "a10", sram_mb=7), _resnet50(), 256)
    assert large[0] < 0.997 * small[0]


def test_activations_that_fit_already_gain_nothing_from_more_sram():
    # At batch 1 every ResNet-50 layer (widest: 56 x 56 x 256 in and out, 1.6 MB at int8) fits
    # the A10's 6 MB L2: more SRAM moves no activation byte off DRAM, only weights stream.
    # (A larger buffer still streams the weights slightly better: Hong-Kung, under 1 %.)
    cfg = OmegaConf.merge(OmegaConf.structured(CNNConfig), _resnet50())
    weight_bytes = float((cnn.infer_pass(cfg).ops.weight_elems
                          * cnn.infer_pass(cfg).ops.count).sum())  # int8: a byte each
    small = _per_image(_preset("chip", "a10"), _resnet50(), 1)
    large = _per_image(_preset("chip", "a10", sram_mb=12), _resnet50(), 1)
    assert small[0] == pytest.approx(weight_bytes, rel=0.03)
    assert large[0] == pytest.approx(small[0], rel=0.01)


def test_activations_past_the_sram_round_trip_memory():
    # Where the batch's activations dwarf the SRAM they make their round trip: at least the
    # conv inputs and outputs (int8: one byte each) past the free SRAM reach DRAM.
    cfg = OmegaConf.merge(OmegaConf.structured(CNNConfig), _resnet50())
    ops = cnn.infer_pass(cfg).ops
    act_per_image = float(((ops.act_in_elems + ops.act_out_elems) * ops.count).sum())
    mem = _per_image(_preset("chip", "a10", sram_mb=1), _resnet50(), 256)[0]
    assert mem > 0.9 * act_per_image


@pytest.mark.parametrize("chip,int8_tops", [
    ("t4", 130.0),  # NVIDIA T4 datasheet: 65 FP16 / 130 INT8 TOPS
    ("a2", 36.25),  # hmc-tech.com A2: 18.13 FP16 / 36.25 INT8 dense
    ("a10", 250.0),  # NVIDIA A10 datasheet: 125 FP16 / 250 INT8 dense
    ("a30", 330.0),  # NVIDIA A30 datasheet: 165 FP16 / 330 INT8 dense
    ("a100", 624.0),  # NVIDIA A100 datasheet: 312 BF16 / 624 INT8 dense
    ("jetson-agx-orin", 85.0),  # Jetson AGX Orin brief: GPU 170 sparse INT8 = 85 dense
])
def test_int8_tensor_rate_matches_the_datasheet(chip, int8_tops):
    cfg = load_chip(chip)
    peak = 2.0 * cfg.macs * cfg.clock_ghz * 1e9 * cfg.dtype_speedup["int8"] / 1e12
    assert peak == pytest.approx(int8_tops, rel=0.03)


def _csv_row(row_id: str) -> dict:
    import csv

    from dse.analysis.validate import DATA
    with DATA.open(newline="") as f:
        return next(r for r in csv.DictReader(f) if r["id"] == row_id)


def test_mlperf_bert_on_tensorrt_runs_unpadded_squad():
    # NVIDIA's harness packs SQuAD unpadded (cu_seqlens: mlcommons/inference_results_v3.0@
    # closed/NVIDIA/code/bert/tensorrt/fp16_builder_var_seqlen.py); 54 % of the 384 slots are
    # padding (Zhang et al., ISPASS 2021): a sample is 177 tokens.
    from dse.analysis.validate import Case, Unmapped, map_row
    case = map_row(_csv_row("31"))  # A100 SXM, TensorRT, bert-99 Offline: 3,590 samples/s
    assert isinstance(case, Case) and case.kwargs["prompt_len"] == 177
    assert case.kwargs["weights"] == "int8"
    # bert-99.9 runs the FP16 engine on Ampere; on Hopper NVIDIA mixes FP8 in (use_fp8), a
    # mix no single dtype states: unmapped, with the reason.
    assert map_row(_csv_row("2096")).kwargs["weights"] == "bf16"
    hopper = map_row(_csv_row("2254"))
    assert isinstance(hopper, Unmapped) and "use_fp8" in hopper.reason
    # Another stack does not say whether it pads: the row stays unmapped, with the reason.
    qualcomm = map_row(_csv_row("2438"))
    assert isinstance(qualcomm, Unmapped) and "pads" in qualcomm.reason


def test_unpadded_length_brings_bert_within_the_peak():
    # 3,590 samples/s at 384 tokens would need ~888 int8 TOP/s, above the A100's 624 dense:
    # at the unpadded mean the FLOP per sample halves and the prediction rises past the
    # padded one toward the measured rate.
    padded = explain("a100", "bert-large", batch=256, prompt_len=384, **_INT8)
    unpadded = explain("a100", "bert-large", batch=256, prompt_len=177, **_INT8)
    flop = [sum(r["flop"] * r["count"] for r in rows) / 256 for _, rows in (padded, unpadded)]
    assert 3590 * flop[0] > 624e12 > 3590 * flop[1]
    assert unpadded[0]["throughput_per_s"] > 2.0 * padded[0]["throughput_per_s"]
