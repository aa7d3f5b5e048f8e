"""Physical limits no input can get round (issue 18, item 2), and compiled kernels that never
run a stale layout (item 6). Each test names the adversarial case it stops."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dse.api import predict
from dse.evaluator import model
from dse.presets import load_chip

ROOT = Path(__file__).resolve().parents[2]


# -- item 6: the numba cache is keyed on the layout -------------------------------------------

# Weights per chip of Llama-3-8B on an H100 from a compiled kernel (execution.need reads the
# C_* and S_* columns by index), printed as JSON.
_NEED_SCRIPT = """
import json, dse.evaluator.columns as cols
from dse.api import _prepare
from dse.evaluator.efficiency import DEFAULT
from dse.evaluator.execution import need
from dse.evaluator.model import _derived
chips, plan, sc, system = _prepare("h100", "llama3-8b", dict(phase="decode", batch=1))
chip = cols.chip_columns(chips, _derived(chips), sc, DEFAULT)[:, 0].copy()
vec = cols.scenario_vector(plan, sc, system, DEFAULT)
print(json.dumps(dict(file=cols.__file__, weights=need(chip, vec, 1, 1)[0])))
"""


def _run_copy(copy: Path) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": str(copy), "NUMBA_DEBUG_CACHE": "1"}
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", _NEED_SCRIPT], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]), done.stdout


def test_relabelled_column_recompiles_the_kernels(tmp_path):
    # The adversarial tester swapped two column indices in columns.py and got a prediction
    # 8.4 % off until the cache was deleted: numba keys a kernel on its own file only.
    for part in ("dse", "hwspace", "workloads", "conf"):
        shutil.copytree(ROOT / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    first, _ = _run_copy(tmp_path)
    assert first["file"].startswith(str(tmp_path))
    columns = tmp_path / "dse" / "evaluator" / "columns.py"
    text = columns.read_text()
    assert "(C_INV_PEAK," in text and "\n C_WEIGHT_BYTES," in text
    # Swap the first chip column with the one ``need`` reads: same model, new layout.
    columns.write_text(text.replace("(C_INV_PEAK,", "(C_SWAP,")
                       .replace("\n C_WEIGHT_BYTES,", "\n C_INV_PEAK,")
                       .replace("(C_SWAP,", "(C_WEIGHT_BYTES,"))
    second, log = _run_copy(tmp_path)
    assert second["weights"] == pytest.approx(first["weights"], rel=1e-12)
    assert "data saved" in log  # recompiled, not loaded
    third, log = _run_copy(tmp_path)
    assert third["weights"] == pytest.approx(first["weights"], rel=1e-12)
    assert "data loaded" in log and "data saved" not in log  # an unchanged layout stays warm


# -- item 2: physical limits ------------------------------------------------------------------

def _case(chip, workload: str, **scenario):
    """(ChipArrays, plan, scenario, System) of a valid predict call, for evaluate() on
    chips the input edge would refuse (the model must be safe on its own)."""
    from dse.api import _prepare

    return _prepare(chip, workload, scenario)


def _evaluate(chips, plan, sc, system) -> dict:
    return {k: v[0] for k, v in model.evaluate(chips, plan, sc, system).items()}


def test_throttled_power_is_at_most_tdp():
    # NVIDIA T4 datasheet: 70 W; ResNet-50 at batch 256 drew 79 W, random chips up to 39x TDP.
    out = predict("t4", "resnet50", batch=256)
    assert out["fits"] and out["power_w"] <= 70.0 * (1 + 1e-9)
    assert out["power_w"] == pytest.approx(70.0, rel=1e-9)  # compute-bound: at the cap
    # Energy per image agrees with the capped power (one chip).
    assert out["energy_per_item_j"] * out["throughput_per_s"] == pytest.approx(70.0, rel=1e-9)


def test_throttled_power_of_a_training_step_is_at_most_tdp():
    chips, plan, sc, system = _case("l4", "gpt2", phase="train", batch=8, chips=2)
    tdp = float(model._derived(chips).tdp_w[0])
    out = _evaluate(chips, plan, sc, system)
    assert out["fits"] and out["power_w"] <= tdp * (1 + 1e-9)


def test_static_power_above_tdp_cannot_run():
    chips, plan, sc, system = _case("h100", "llama3-8b", phase="decode", batch=1)
    static = float(model._derived(chips).static_w[0])
    starved = dataclasses.replace(chips, tdp_w=np.array([0.9 * static]))
    out = _evaluate(starved, plan, sc, system)
    assert not out["fits"] and model.REASONS[int(out["reason"])] == "power"
    assert math.isnan(out["throughput_per_s"]) and math.isnan(out["power_w"])
    train = _case("h100", "gpt2", phase="train", batch=4)
    out = _evaluate(dataclasses.replace(train[0], tdp_w=np.array([0.9 * static])), *train[1:])
    assert model.REASONS[int(out["reason"])] == "power"


def test_power_is_the_last_reason_code():
    # Stored rows keep their codes: "power" was appended, not inserted.
    assert model.REASONS[:8] == ("", "area", "links", "weights", "kv_cache", "tpot_slo",
                                 "ttft_slo", "activations")
    assert model.REASONS[-1] == "power"


def test_zero_bandwidth_memory_is_never_free():
    # H100 SXM: 3.35 TB/s HBM3 (datasheet). At 0 TB/s it served 396 tok/s vs 126: 0 * inf
    # made every KV read NaN, which max() dropped.
    chips, plan, sc, system = _case("h100", "llama3-8b", phase="decode", batch=1)
    real = _evaluate(chips, plan, sc, system)
    zero = _evaluate(dataclasses.replace(chips, mem_bw_bytes_per_s=np.array([0.0])), plan, sc,
                     system)
    assert real["fits"] and not zero["fits"]
    assert model.REASONS[int(zero["reason"])] == "weights"  # 16 GB do not fit 50 MB of SRAM


def test_memory_type_none_has_no_capacity_bandwidth_or_cost():
    # type none = an SRAM-only chip (DESIGN.md section 3), whatever capacity is also given.
    from hwspace.memory import derive_memory
    from hwspace.tables import MEMORY_TYPES

    none = np.array([MEMORY_TYPES.index("none")])
    cap, bw = derive_memory(none, np.array([5.0]), np.array([80.0]), np.array([3.35]))
    assert cap[0] == 0.0 and bw[0] == 0.0
    h100 = dataclasses.asdict(load_chip("h100"))
    del h100["unit_cost_usd"], h100["price_usd"]  # its figures would hide the memory's cost
    chips, plan, sc, system = _case(h100, "llama3-8b", phase="decode", batch=1)
    kept = dataclasses.replace(chips, mem_idx=none)  # 80 GB and 3.35 TB/s still in the arrays
    out, hbm = _evaluate(kept, plan, sc, system), _evaluate(chips, plan, sc, system)
    assert not out["fits"] and model.REASONS[int(out["reason"])] == "weights"
    assert out["unit_cost_usd"] < hbm["unit_cost_usd"]
    assert model._derived(kept).capacity_bytes[0] == kept.sram_bytes[0]


def test_training_never_counts_idle_replicas():
    # gpt2 at a global batch of one sequence: 8 chips were 1.47x one chip (8 replicas, 7
    # without data); 16 chips were slower than 8.
    sizes = (1, 2, 3, 4, 8, 16)
    rate = {n: predict("h100", "gpt2", phase="train", batch=1, chips=n) for n in sizes}
    assert all(out["dp"] == 1 for out in rate.values())
    for few, many in zip(sizes, sizes[1:], strict=False):
        assert rate[many]["throughput_per_s"] >= rate[few]["throughput_per_s"] * (1 - 1e-9)
    # Three sequences: 4 chips keep one idle rather than run a fourth, empty replica.
    three = {n: predict("h100", "gpt2", phase="train", batch=3, chips=n) for n in (3, 4, 5)}
    assert all(out["dp"] <= 3 for out in three.values())
    assert three[4]["throughput_per_s"] >= three[3]["throughput_per_s"] * (1 - 1e-9)
    assert three[5]["throughput_per_s"] >= three[4]["throughput_per_s"] * (1 - 1e-9)


def test_training_with_idle_chips_pays_for_them():
    one = predict("h100", "gpt2", phase="train", batch=1, chips=1)
    many = predict("h100", "gpt2", phase="train", batch=1, chips=16)
    assert many["system_cost_usd"] == pytest.approx(16 * one["system_cost_usd"], rel=1e-9)
    assert many["utilization"] <= one["utilization"] * (1 + 1e-9)


def test_cut_batch_is_visible():
    # H100 (80 GB) with Llama-3-70B at fp8 (~70 GB of weights) holds 7 sequences of 4k context.
    out = predict("h100", "llama3-70b", phase="decode", batch=64, weights="fp8",
                  activations="fp8", kv_cache="fp8", context_len=4096)
    assert out["fits"]  # served in waves, as engines queue what does not fit
    assert out["batch_asked"] == 64 and out["batch"] < 64
    assert out["batch_limit"] == "kv_cache"
    capped = predict("h100", "llama3-8b", phase="decode", batch="max", max_num_seqs=4)
    assert capped["batch"] == 4 and capped["batch_limit"] == "max_num_seqs"
    assert math.isnan(capped["batch_asked"])
    # batch 1 takes ~8 ms per token (126 tok/s): a 12 ms TPOT leaves room for a few more
    slo = predict("h100", "llama3-8b", phase="decode", batch="max", tpot_slo_s=0.012)
    assert slo["batch_limit"] == "tpot_slo" and slo["batch"] < slo["max_batch"]
    whole = predict("h100", "llama3-8b", phase="decode", batch=8)
    assert whole["batch"] == 8 and whole["batch_limit"] == ""


def test_predict_warns_on_a_cut_batch_and_prints_strict_json(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dse.cli", "predict", "chip=h100", "workload=llama3-70b",
         "scenario.phase=decode",
         "scenario.batch=64", "scenario.weights=fp8", "scenario.activations=fp8",
         "scenario.kv_cache=fp8", "scenario.context_len=4096", "explain=true", "--json",
         f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True)
    assert done.stderr.strip().splitlines() == ["warning: batch 64 asked, 7 served (kv_cache)"]

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    doc = json.loads(done.stdout, parse_constant=refuse)
    assert doc["batch_asked"] == 64 and doc["batch"] == 7 and doc["operators"]


def test_json_safe_nulls_nan_and_inf_at_any_depth():
    from dse.cli.common import json_safe

    doc = json_safe(dict(a=float("inf"), b=[dict(c=float("nan"), d=np.float64(-np.inf))],
                         e=1.5, f="x"))
    assert doc == dict(a=None, b=[dict(c=None, d=None)], e=1.5, f="x")


def test_outputs_are_finite_or_nan():
    # Weights resident in SRAM read nothing off chip: intensity was inf (Groq LPU, 230 MB).
    chips, plan, sc, system = _case("groq-lpu", "resnet50", batch=1)
    out = model.evaluate(chips, plan, sc, system)
    assert out["fits"][0] and math.isnan(out["arithmetic_intensity"][0])
    for key, values in out.items():
        assert not np.isinf(np.asarray(values, float)).any(), key
