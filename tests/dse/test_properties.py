"""Monotonicity and bounds that must hold for any chip (hypothesis over random candidates)."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.api import _prepare, predict
from dse.evaluator import model
from hwspace.tables import MEMORY_TYPES, NODE_NAMES

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)

SCENARIOS = [
    ("llama3-8b", dict(phase="decode", batch=8, context_len=1024, weights="int4")),
    ("llama2-7b", dict(phase="generate", batch=4, prompt_len=256, gen_len=64)),
    ("llama2-70b", dict(phase="decode", batch="max", weights="fp8", activations="fp8", chips=8)),
    ("mixtral-8x7b", dict(phase="decode", batch=16, weights="int8", chips=4)),
    ("resnet50", dict(batch=32, weights="int8", activations="int8")),
    ("bert-large", dict(batch=4, prompt_len=384)),
]


@st.composite
def chips(draw):
    mem = draw(st.sampled_from([m for m in MEMORY_TYPES if m != "none"] + ["none"]))
    stacks = 0 if mem == "none" else draw(st.integers(1, 8))
    return dict(
        name="candidate",
        process_node=draw(st.sampled_from(NODE_NAMES)),
        macs=draw(st.integers(2_000, 400_000)),
        clock_ghz=draw(st.floats(0.5, 2.0)),
        sram_mb=draw(st.floats(1.0, 1000.0) if mem != "none" else st.floats(200.0, 4000.0)),
        dtype_speedup={"fp8": draw(st.sampled_from([0, 2])), "int8": 2,
                       "int4": draw(st.sampled_from([0, 4]))},
        memory=dict(type=mem, stacks=stacks),
        links=dict(count=draw(st.integers(1, 18)), gb_s_per_link=draw(st.floats(5.0, 100.0))),
        dies=2,
    )


scenarios = st.sampled_from(SCENARIOS)


def _scaled(chip: dict, path: str, factor: float) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in chip.items()}
    if "." in path:
        outer, inner = path.split(".")
        out[outer][inner] = out[outer][inner] * factor
    else:
        out[path] = type(out[path])(out[path] * factor)
    return out


@SETTINGS
@given(chips(), scenarios, st.floats(1.1, 4.0))
def test_more_memory_bandwidth_never_lowers_throughput(chip, case, factor):
    from hwspace.memory import derive_memory
    from hwspace.tables import MEMORY_TYPES as TYPES

    if chip["memory"]["type"] == "none":
        return
    idx = np.array([TYPES.index(chip["memory"]["type"])])
    _, bw = derive_memory(idx, np.array([chip["memory"]["stacks"]]), np.array([np.nan]),
                          np.array([np.nan]))
    chip["memory"]["bandwidth_tb_s"] = float(bw[0])
    workload, sc = case
    slow = predict(chip, workload, **sc)
    fast = predict(_scaled(chip, "memory.bandwidth_tb_s", factor), workload, **sc)
    if slow["fits"]:
        assert fast["fits"]
        assert fast["throughput_per_s"] >= slow["throughput_per_s"] * (1 - 1e-9)


def _offchip_bytes(chip: dict, workload: str, sc: dict) -> float:
    chips_arr, plan, scen, sys = _prepare(chip, workload, dict(sc))
    _, detail = model.explain(chips_arr, plan, scen, sys)
    return sum(p.repeats * float(np.sum(detail[p.name]["mem_bytes"] * p.ops.count))
               for p in plan.passes)


@SETTINGS
@given(chips(), scenarios, st.floats(1.1, 8.0))
def test_more_sram_never_raises_offchip_bytes(chip, case, factor):
    workload, sc = case
    sc = {**sc, "chips": 1, "batch": 1 if sc.get("batch") == "max" else sc["batch"]}
    small = predict(chip, workload, **sc)
    if not small["fits"]:
        return
    big_chip = _scaled(chip, "sram_mb", factor)
    if not predict(big_chip, workload, **sc)["fits"]:  # a larger die may pass the reticle
        return
    assert _offchip_bytes(big_chip, workload, sc) <= _offchip_bytes(chip, workload, sc) * (1 + 1e-9)


@SETTINGS
@given(chips(), scenarios, st.floats(1.1, 4.0), st.booleans())
def test_more_macs_never_raise_compute_time(chip, case, factor, fixed_tdp):
    workload, sc = case
    sc = {**sc, "chips": 1, "batch": 1 if sc.get("batch") == "max" else sc["batch"]}
    if fixed_tdp:
        chip["tdp_w"] = 300.0
    few = _compute_time(chip, workload, sc)
    many = _compute_time(_scaled(chip, "macs", factor), workload, sc)
    assert many <= few * (1 + 1e-9)
    if not fixed_tdp:  # without a power cap, nothing else can slow a faster datapath down
        slow = predict(chip, workload, **sc)
        fast = predict(_scaled(chip, "macs", factor), workload, **sc)
        if slow["fits"] and fast["fits"]:
            assert fast["latency_s"] <= slow["latency_s"] * (1 + 1e-9)


def _compute_time(chip: dict, workload: str, sc: dict) -> float:
    chips_arr, plan, scen, sys = _prepare(chip, workload, dict(sc))
    _, detail = model.explain(chips_arr, plan, scen, sys)
    return sum(p.repeats * float(np.sum(detail[p.name]["t_compute"] * p.ops.count))
               for p in plan.passes)


@SETTINGS
@given(chips(), scenarios)
def test_achieved_flops_never_exceed_peak_and_energy_is_positive(chip, case):
    workload, sc = case
    out = predict(chip, workload, **sc)
    if not math.isnan(out["utilization"]):
        assert 0.0 < out["utilization"] <= 1.0
    if out["fits"]:
        assert out["energy_per_item_j"] > 0 and out["power_w"] > 0
        assert out["throughput_per_s"] > 0


@SETTINGS
@given(chips(), st.floats(1.1, 3.0))
def test_cost_grows_with_die_area(chip, factor):
    chip["dies"] = 16  # keep every die under the reticle
    small = predict(chip, "resnet50")
    big = predict(_scaled(chip, "sram_mb", factor), "resnet50")
    assert big["die_area_mm2"] > small["die_area_mm2"]
    assert big["die_cost_usd"] > small["die_cost_usd"]
    assert big["unit_cost_usd"] > small["unit_cost_usd"]


@SETTINGS
@given(chips(), st.sampled_from(SCENARIOS[:2] + SCENARIOS[4:]), st.integers(2, 8))
def test_n_chips_serve_at_least_n_times_one_chip(chip, case, n):
    # Data parallelism is always one of the splits: N chips at N times the batch do at least
    # N times the work of one chip at its batch.
    workload, sc = case
    one = predict(chip, workload, **{**sc, "chips": 1})
    many = predict(chip, workload, **{**sc, "chips": n, "batch": sc["batch"] * n})
    if one["fits"]:
        assert many["fits"]
        assert many["throughput_per_s"] >= n * one["throughput_per_s"] * (1 - 1e-9)
