"""Golden outputs of the evaluator: every output of dse.evaluator.model.evaluate for the preset
chips (and a fixed set of random candidates with mixed system sizes) on scenarios that reach every
branch of the model: batch 1 and batch "max", SLO batch search, continuous and static
generate, prefill, CNN, encoder, weight-only and fp8 precisions, 2:4 sparsity, MoE, and a
576-chip system. A change of the model that moves a figure must regenerate the file
deliberately (scale-sim ``test/golden_trace/``); refactors and speed work must not.

    python -m tests.golden.test_evaluator_golden   # rewrite evaluator_outputs.json
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dse import api
from dse.evaluator.model import LABELS, OUTPUTS, System, evaluate
from dse.presets import load_chip, load_workload, preset_names
from hwspace.space import parse_space
from hwspace.spec import from_columns, from_configs
from workloads.scenario import build_plan, family_of, make_scenario

GOLDEN = Path(__file__).with_name("evaluator_outputs.json")
RTOL = 1e-9
_FP8 = dict(weights="fp8", activations="fp8", kv_cache="fp8")

# id -> (workload, scenario, system)
CASES = {
    "decode_b1": ("llama3-8b", dict(phase="decode", batch=1), dict(chips=1)),
    "decode_int4_b1": ("llama3-8b", dict(phase="decode", batch=1, weights="int4"),
                       dict(chips=1)),
    "decode_max_8": ("llama2-70b", dict(phase="decode", batch="max", **_FP8), dict(chips=8)),
    "decode_max_tpot_8": ("llama2-70b", dict(phase="decode", batch="max", **_FP8),
                          dict(chips=8, tpot_slo_s=0.05)),
    "decode_fixed_waves_2": ("llama2-70b", dict(phase="decode", batch=512, context_len=3072),
                             dict(chips=2)),
    "decode_unbounded_seqs": ("llama3-8b", dict(phase="decode", batch="max"),
                              dict(chips=1, max_num_seqs=None)),
    "decode_tp_pinned": ("llama2-70b", dict(phase="decode", batch=8), dict(chips=8, tp=4)),
    "generate_continuous": ("llama3-70b", dict(phase="generate", batch="max", prompt_len=2048,
                                               gen_len=512, **_FP8),
                            dict(chips=8, tpot_slo_s=0.05, ttft_slo_s=2.0)),
    "generate_continuous_b1": ("llama3-8b", dict(phase="generate", batch=1, prompt_len=1024,
                                                 gen_len=256, weights="int4"), dict(chips=1)),
    "generate_static": ("llama3-8b", dict(phase="generate", batch=16, batching="static"),
                        dict(chips=1)),
    "prefill_b4": ("llama3-8b", dict(phase="prefill", batch=4, prompt_len=2048), dict(chips=1)),
    "prefill_max_ttft": ("llama2-13b", dict(phase="prefill", batch="max", prompt_len=1024),
                         dict(chips=2, ttft_slo_s=0.5)),
    "cnn_b1": ("resnet50", dict(phase="infer", batch=1), dict(chips=1)),
    "cnn_max_int8": ("resnet50", dict(phase="infer", batch="max", weights="int8",
                                      activations="int8"), dict(chips=1)),
    "cnn_b256_int8": ("mobilenetv2", dict(phase="infer", batch=256, weights="int8",
                                          activations="int8"), dict(chips=1)),
    "encoder": ("bert-large", dict(phase="encode", batch=32, prompt_len=384), dict(chips=1)),
    "sparse_2_4": ("llama3-8b", dict(phase="prefill", batch=2, sparsity="2:4"), dict(chips=1)),
    "moe_mixtral_max": ("mixtral-8x7b", dict(phase="generate", batch="max", prompt_len=2048,
                                             gen_len=512, **_FP8),
                        dict(chips=8, tpot_slo_s=0.05, ttft_slo_s=2.0)),
    "moe_mixtral_decode_b1": ("mixtral-8x7b", dict(phase="decode", batch=1, weights="int4"),
                              dict(chips=2)),
    "groq_576": ("llama2-70b", dict(phase="decode", batch=1, weights="int8",
                                    activations="int8", kv_cache="int8"), dict(chips=576)),
}
# Random candidates run a few cases with a system size per candidate.
RANDOM_CASES = ("decode_max_tpot_8", "generate_continuous", "cnn_max_int8", "prefill_max_ttft")
RANDOM_SPACE = dict(name="golden", params=dict(
    process_node=["n7", "n5", "n4", "n3"], macs=dict(low=10_000, high=500_000, step=1),
    clock_ghz=dict(low=0.8, high=2.0), sram_mb=dict(low=1, high=500),
    memory=dict(type=["hbm3", "hbm3e", "lpddr5x", "gddr7", "none"],
                stacks=dict(low=1, high=8, step=1)),
    links=dict(count=dict(low=0, high=18, step=1), gb_s_per_link=dict(low=10, high=100)),
    execution=["kernels", "dataflow"], sparsity_speedup=[1.0, 2.0],
    dtype_speedup=dict(fp8=2, int8=2, int4=4), chips=[1, 2, 4, 8, 16],
))
# api.explain rows (per-operator detail of the chosen split) of these (chip, case).
EXPLAIN_CASES = (("h100", "decode_max_tpot_8"), ("a100", "generate_continuous_b1"),
                 ("groq-lpu", "groq_576"), ("tpu-v5e", "cnn_max_int8"))


def preset_chips():
    return from_configs([load_chip(name) for name in preset_names("chip")])


def random_chips(n: int = 48, seed: int = 11):
    """(candidates, chips per system) drawn from RANDOM_SPACE by the sweeps' own sampler."""
    cols = parse_space(RANDOM_SPACE).random_chunk(seed, 0, n)
    return from_columns({k: v for k, v in cols.items() if k != "chips"}), cols["chips"]


def _inputs(case: str, n_sys=None):
    workload, scenario, system = CASES[case]
    cfg = load_workload(workload)
    sc = make_scenario(family_of(cfg), scenario)
    sys = System(**{**system, **({} if n_sys is None else dict(chips=n_sys))})
    return build_plan(cfg, sc), sc, sys


def _plain(out: dict) -> dict[str, list]:
    return {k: [float(x) for x in np.asarray(out[k], float)] for k in OUTPUTS}


def compute_all() -> dict:
    presets = preset_chips()
    rand, n_sys = random_chips()
    golden = {"presets": preset_names("chip"), "evaluate": {}, "random": {}, "explain": {}}
    for case in CASES:
        golden["evaluate"][case] = _plain(evaluate(presets, *_inputs(case)))
    for case in RANDOM_CASES:
        golden["random"][case] = _plain(evaluate(rand, *_inputs(case, n_sys)))
    for chip, case in EXPLAIN_CASES:
        workload, scenario, system = CASES[case]
        _, rows = api.explain(chip, workload, **scenario, **system)
        golden["explain"][f"{chip}/{case}"] = rows
    return golden


def _same(got: float, want: float) -> bool:
    if isinstance(want, str) or isinstance(got, str):
        return got == want
    if math.isnan(want):
        return math.isnan(got)
    return got == want or math.isclose(got, want, rel_tol=RTOL)


def _mismatches(got: dict[str, list], want: dict[str, list]) -> list[str]:
    bad = []
    for key, values in want.items():
        exact = key in LABELS or key == "fits"
        for i, (g, w) in enumerate(zip(got[key], values, strict=True)):
            if (g != w) if exact else not _same(g, w):
                bad.append(f"{key}[{i}]: got {g!r}, golden {w!r}")
    return bad


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def current() -> dict:
    return compute_all()


def test_presets_unchanged(golden):
    assert golden["presets"] == preset_names("chip"), "presets changed: regenerate the golden"


@pytest.mark.parametrize("case", list(CASES))
def test_evaluate_matches_golden(golden, current, case):
    bad = _mismatches(current["evaluate"][case], golden["evaluate"][case])
    assert not bad, f"{len(bad)} outputs moved, e.g. " + "; ".join(bad[:5])


@pytest.mark.parametrize("case", RANDOM_CASES)
def test_random_candidates_match_golden(golden, current, case):
    bad = _mismatches(current["random"][case], golden["random"][case])
    assert not bad, f"{len(bad)} outputs moved, e.g. " + "; ".join(bad[:5])


@pytest.mark.parametrize("key", [f"{c}/{s}" for c, s in EXPLAIN_CASES])
def test_explain_matches_golden(golden, current, key):
    got, want = current["explain"][key], golden["explain"][key]
    assert len(got) == len(want)
    for g_row, w_row in zip(got, want, strict=True):
        bad = [k for k in w_row if not _same(g_row[k], w_row[k])]
        assert not bad, f"{w_row['phase']}/{w_row['op']}: {bad} moved"


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(compute_all(), indent=0) + "\n")
    print(f"wrote {GOLDEN}")
