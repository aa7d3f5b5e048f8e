"""Bad input gets one clear error naming the field; an infeasible design is a result."""

import subprocess
import sys

import pytest

from dse.api import predict

GOOD = dict(name="x", process_node="n5", macs=100_000, clock_ghz=1.0, sram_mb=64,
            memory=dict(type="hbm3", stacks=4))


@pytest.mark.parametrize("chip, workload, scenario, field", [
    ("h999", "llama3-8b", {}, "h999"),
    ({**GOOD, "macs": -5}, "llama3-8b", {}, "macs"),
    ({**GOOD, "memory": dict(type="hbm9", stacks=1)}, "llama3-8b", {}, "memory.type"),
    ({**GOOD, "process_node": "n1"}, "llama3-8b", {}, "process_node"),
    ({**GOOD, "clock_ghz": 0}, "llama3-8b", {}, "clock_ghz"),
    ({**GOOD, "dtype_speedup": {"int3": 2}}, "llama3-8b", {}, "dtype_speedup"),
    ({**GOOD, "bogus": 1}, "llama3-8b", {}, "bogus"),
    ({k: v for k, v in GOOD.items() if k != "macs"}, "llama3-8b", {}, "macs"),
    ("h100", "llama9", {}, "llama9"),
    ("h100", "llama3-8b", dict(weights="int3"), "scenario.weights"),
    ("h100", "llama3-8b", dict(batch=0), "scenario.batch"),
    ("h100", "llama3-8b", dict(batch=2.5), "scenario.batch"),
    ("h100", "llama3-8b", dict(phase="infer"), "scenario.phase"),
    ("h100", "llama3-8b", dict(sparsity="1:8"), "scenario.sparsity"),
    ("h100", "llama3-8b", dict(chips=0), "chips"),
    ("h100", "llama3-8b", dict(prompt_len=-1), "scenario.prompt_len"),
    ("h100", "llama3-8b", dict(bogus=1), "bogus"),
])
def test_bad_input_names_the_field(chip, workload, scenario, field):
    with pytest.raises(ValueError) as err:
        predict(chip, workload, **scenario)
    assert field in str(err.value)
    assert "\n" not in str(err.value)


def test_over_reticle_design_is_a_result_not_an_error():
    out = predict({**GOOD, "macs": 2_000_000}, "llama3-8b", phase="decode")
    assert out["fits"] is False and out["reason"] == "area"
    assert out["die_area_mm2"] > 858


def test_multi_die_or_wafer_scale_lifts_the_reticle_limit():
    assert predict({**GOOD, "macs": 2_000_000, "dies": 4}, "llama3-8b", phase="decode")["fits"]
    assert predict({**GOOD, "macs": 2_000_000, "wafer_scale": True}, "llama3-8b",
                   phase="decode")["fits"]


def test_model_too_big_is_a_result_with_its_reason():
    out = predict("a100", "llama3-405b", phase="decode")
    assert out["fits"] is False and out["reason"] == "weights"
    assert out["throughput_per_s"] != out["throughput_per_s"]  # NaN: cannot run at all


def test_missed_slo_keeps_its_numbers():
    out = predict("h100", "llama2-70b", phase="decode", batch=512, chips=8, tpot_slo_s=0.001)
    assert out["fits"] is False and out["reason"] == "tpot_slo"
    assert out["tpot_s"] > 0.001


def test_batch_max_respects_the_tpot_slo():
    free = predict("h100", "llama2-70b", phase="decode", batch="max", chips=8)
    slo = predict("h100", "llama2-70b", phase="decode", batch="max", chips=8, tpot_slo_s=0.03)
    assert slo["fits"] and slo["tpot_s"] <= 0.03
    assert slo["batch"] <= free["batch"]
    assert free["batch"] == free["max_batch"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "dse.cli", *args], capture_output=True, text=True)


def test_cli_bad_scenario_exits_2_with_one_line():
    res = _cli("predict", "scenario.batch=0")
    assert res.returncode == 2
    assert "scenario.batch" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_unknown_preset_names_it():
    res = _cli("predict", "chip=h999")
    assert res.returncode != 0
    assert "h999" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("workload, scenario", [
    ("llama2-7b", dict(phase="generate", prompt_len=4000, gen_len=200)),  # 4,096-token model
    ("bert-large", dict(prompt_len=1024)),  # 512 positions
    ("gpt2", dict(phase="decode", context_len=2000)),  # 1,024 positions
])
def test_context_beyond_the_model_is_refused(workload, scenario):
    with pytest.raises(ValueError, match="max_context"):
        predict("h100", workload, **scenario)


def test_a_reduction_whose_vector_does_not_fit_on_chip_round_trips():
    # 4 KB of SRAM cannot hold a 4,096-element norm vector (8 KB at 16 bit): more traffic.
    tiny = dict(name="t", process_node="n7", macs=4096, clock_ghz=1, sram_mb=0.004,
                memory=dict(type="lpddr5x", stacks=2))
    small = predict(tiny, "llama2-7b", phase="decode")["arithmetic_intensity"]
    roomy = predict({**tiny, "sram_mb": 8}, "llama2-7b", phase="decode")["arithmetic_intensity"]
    assert small < roomy
