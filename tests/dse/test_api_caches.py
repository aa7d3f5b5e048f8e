"""What predict() keeps between calls (a preset's plans, ChipArrays and derivation, a plan's
concatenated operators) never changes an answer: scenarios in any order, and arrays a caller
changes, give what a fresh process gives."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np

from dse.api import _prepare, predict
from dse.evaluator import fused, model
from dse.evaluator.efficiency import DEFAULT

_FP8 = dict(weights="fp8", activations="fp8", kv_cache="fp8")
# Dense and MoE (expert parallelism with skew), dtypes and phases that share plans and chips.
CASES = [
    ("h100", "llama3-8b", dict(phase="generate", batch=8, chips=8)),
    ("h100", "llama3-8b", dict(phase="generate", batch=8, chips=8, **_FP8)),
    ("h100", "llama3-8b", dict(phase="decode", batch=64, weights="int4")),
    ("h100", "mixtral-8x7b", dict(phase="decode", batch=64, chips=8, ep=4, expert_skew=2.0)),
    ("h100", "mixtral-8x7b", dict(phase="decode", batch=64, chips=8, ep=2, expert_skew=1.3)),
    ("h100", "deepseek-v3", dict(phase="decode", context_len=2048, chips=16, **_FP8)),
    ("h100", "llama3-8b", dict(phase="train", batch=64, chips=8)),
]
_FRESH = f"""
import json, sys
sys.path[:0] = {sys.path!r}
from dse.api import predict
cases = json.loads(sys.argv[1])
print(json.dumps([predict(c, w, **s) for c, w, s in reversed(cases)][::-1]))
"""


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k]))
        for k in a)


def _json_safe(out: dict) -> dict:
    return json.loads(json.dumps(out))


def test_any_order_gives_what_a_fresh_process_gives():
    first = [predict(c, w, **s) for c, w, s in CASES]
    again = [predict(c, w, **s) for c, w, s in reversed(CASES)][::-1]
    assert all(_same(a, b) for a, b in zip(first, again, strict=True))
    # A fresh interpreter, the cases in reverse order: every cache starts empty there.
    res = subprocess.run([sys.executable, "-c", _FRESH, json.dumps(CASES)], check=True,
                         capture_output=True, text=True)
    fresh = json.loads(res.stdout)
    assert all(_same(_json_safe(a), b) for a, b in zip(first, fresh, strict=True))


def test_changed_arrays_change_no_later_answer():
    chip, workload, scenario = CASES[3]
    before = predict(chip, workload, **scenario)
    chips, plan, sc, sys_ = _prepare(chip, workload, dict(scenario))
    out = model.evaluate(chips, plan, sc, sys_)
    for x in out.values():
        x[...] = 0
    n_sys = np.full(chips.n, sys_.chips)
    tables = fused.split_table(n_sys, plan, sys_.tp, sys_.pp, ep_pin=sys_.ep)[3]
    fused._op_tables(plan, sc, tables, DEFAULT)[...] = 0.0
    assert _same(predict(chip, workload, **scenario), before)


def test_a_plan_does_not_depend_on_the_batch():
    # api._plan keeps one plan per scenario less its batch: a batch sweep builds it once.
    from dse.presets import load_plan, load_workload
    for workload, scenario in (("llama3-8b", dict(phase="generate", prompt_len=512)),
                               ("mixtral-8x7b", dict(phase="decode", context_len=1024)),
                               ("llama3-8b", dict(phase="train")),
                               ("resnet50", dict(phase="infer"))):
        plans = [_prepare("h100", workload, dict(scenario, batch=b))[1] for b in (1, 64, 512)]
        assert plans[0] is plans[1] is plans[2]
        one, many = (load_plan(load_workload(workload),
                               _prepare("h100", workload, dict(scenario, batch=b))[2])
                     for b in (1, 64))
        assert [(p.name, p.repeats) for p in one.passes] == \
            [(p.name, p.repeats) for p in many.passes]
        for f in dataclasses.fields(one.ops):
            np.testing.assert_array_equal(getattr(one.ops, f.name), getattr(many.ops, f.name))
