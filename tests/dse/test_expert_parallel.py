"""Expert parallelism: ep joins the split (ep x tp x pp x dp = chips), routed experts spread
over ep chips, the dispatch/combine all-to-all over the chip links, and the load skew the
step waits for (dse.evaluator.roofline.expert_parallel)."""

import dataclasses

import numpy as np
import pytest

from dse.api import _prepare, explain, predict
from dse.evaluator.columns import chip_columns, scenario_vector
from dse.evaluator.efficiency import DEFAULT
from dse.evaluator.execution import need
from dse.evaluator.model import evaluate
from dse.evaluator.parallel import splits
from dse.presets import load_chip, load_workload
from hwspace.derived import derive
from hwspace.spec import from_configs
from workloads import llm
from workloads.scenario import Scenario

_FP8 = dict(weights="fp8", activations="fp8", kv_cache="fp8")
# DeepSeek-V3 decode at 2k context on 16 H100s at fp8 (its weights, 671 GB, need 9 chips).
_V3 = dict(phase="decode", context_len=2048, chips=16, **_FP8)


@pytest.mark.parametrize("batch", ["max", 1024])
def test_deepseek_v3_large_batch_decode_picks_expert_parallelism(batch):
    # DeepSeek serves V3 with expert parallelism and data-parallel attention ("our solution
    # employs cross-node Expert Parallelism": deepseek-ai/open-infra-index, 202502
    # OpenSourceWeek day 6, DeepSeek-V3/R1 inference system overview; EP320 for decode,
    # arXiv 2412.19437 section 3.4.2). Without a scheduler cap, so memory alone sets "max":
    # MLA's latent cache is replicated on every tensor-parallel chip, not split, and EP keeps
    # one copy per group of the sequences it serves.
    kw = dict(_V3, batch=batch, max_num_seqs=None)
    free = predict("h100", "deepseek-v3", **kw)
    no_ep = predict("h100", "deepseek-v3", ep=1, **kw)
    assert free["fits"] and no_ep["fits"]
    assert free["ep"] > 1 and no_ep["ep"] == 1
    assert free["ep"] * free["tp"] * free["pp"] * free["dp"] == 16
    assert free["throughput_per_s"] > 1.5 * no_ep["throughput_per_s"]


def _same(a: dict, b: dict) -> bool:
    """Equal outputs, NaN equal to NaN."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and np.isnan(a[k]) and np.isnan(b[k]))
        for k in a)


def test_dense_models_never_change_and_refuse_a_pinned_ep():
    kw = dict(phase="generate", batch="max", prompt_len=1024, gen_len=256, chips=8,
              tpot_slo_s=0.05, **_FP8)
    free = predict("h100", "llama3-70b", **kw)
    assert _same(free, predict("h100", "llama3-70b", ep=1, **kw))
    assert free["ep"] == 1
    assert all(ep == 1 for *_, ep in splits(64, 64, 80))  # no experts: ep = 1 only
    with pytest.raises(ValueError, match=r"system\.ep = 2: .*dense"):
        predict("h100", "llama3-70b", ep=2, **kw)


def test_ep_must_divide_the_experts_and_the_chips():
    assert {ep for *_, ep in splits(16, 64, 64, experts=8)} == {1, 2, 4, 8}
    assert {ep for *_, ep in splits(12, 64, 64, experts=256)} == {1, 2, 4}
    with pytest.raises(ValueError, match=r"system\.ep = 3: .*divisor of its 8 routed"):
        predict("h100", "mixtral-8x7b", phase="decode", chips=6, ep=3)
    with pytest.raises(ValueError, match=r"system\.ep = 4: ep x tp x pp \(4\) must divide"):
        predict("h100", "mixtral-8x7b", phase="decode", chips=6, ep=4)


@pytest.mark.parametrize("bad", [0, 2.5, "two", True])
def test_a_pinned_ep_outside_its_range_is_one_line(bad):
    with pytest.raises(ValueError, match=r"system\.ep"):
        predict("h100", "mixtral-8x7b", phase="decode", chips=8, ep=bad)


def test_training_runs_without_expert_parallelism():
    kw = dict(phase="train", batch=64, prompt_len=1024, chips=8)
    assert predict("h100", "mixtral-8x7b", **kw)["ep"] == 1
    with pytest.raises(ValueError, match=r"system\.ep = 2: .*training runs without"):
        predict("h100", "mixtral-8x7b", ep=2, **kw)


def test_each_chip_holds_its_share_of_the_routed_experts():
    chips, plan, sc, sys = _prepare("h100", "deepseek-v3", dict(_V3, batch=16))
    vec = scenario_vector(plan, sc, sys, DEFAULT)
    chip = chip_columns(chips, derive(chips), sc, DEFAULT)[:, 0]
    cfg = load_workload("deepseek-v3")
    # 58 MoE layers x 256 experts x 3 matrices of 7168 x 2048 (config.json): 653.5e9.
    experts = 58 * 256 * 3 * 7168 * 2048
    total = llm.param_count(cfg)[0]
    for tp, ep in ((1, 1), (1, 16), (2, 8)):
        weights = need(chip, vec, tp, 1, ep)[0]  # fp8: one byte per weight
        assert weights == pytest.approx((total - experts + experts / ep) / tp, rel=1e-12)


def _rows(ep: int, batch: int, **kw) -> dict:
    """The explain rows of DeepSeek-V3 decode at a pinned ep (tp = pp = 1), by op name."""
    _, rows = explain("h100", "deepseek-v3", batch=batch, ep=ep, tp=1, pp=1,
                      **dict(_V3, **kw))
    return {r["op"]: r for r in rows}


def test_all_to_all_grows_with_tokens_and_ep_and_is_free_without_ep():
    # Bytes per chip each way ~ tokens x top_k x d_model x bytes x (ep - 1) / ep (x skew):
    # dispatch at fp8, combine at 16 bit (DeepEP README: "FP8 dispatching and BF16
    # combining").
    skew = Scenario.expert_skew
    # 128 sequences over dp x ep = 16 groups of one chip: 8 tokens per chip.
    by_ep = {ep: _rows(ep, 128) for ep in (2, 4, 8, 16)}
    for ep, rows in by_ep.items():
        sent = 8 * 8 * 7168 * (ep - 1) / ep * skew
        assert rows["moe_dispatch"]["link_bytes"] == pytest.approx(sent, rel=1e-12)
        assert rows["moe_combine"]["link_bytes"] == pytest.approx(2 * sent, rel=1e-12)
    times = [by_ep[ep]["moe_dispatch"]["time_s"] for ep in (2, 4, 8, 16)]
    assert np.all(np.diff(times) > 0)
    by_batch = [_rows(16, b)["moe_combine"]["time_s"] for b in (16, 256, 4096)]
    assert np.all(np.diff(by_batch) > 0)
    alone = _rows(1, 8, chips=16)  # ep = 1: no all-to-all at all, not even its overhead
    assert alone["moe_dispatch"]["time_s"] == alone["moe_combine"]["time_s"] == 0.0


def test_touched_experts_per_chip_count_every_group_tokens():
    # Each chip holds E / ep experts; the T tokens of all ep groups, the busiest chip's
    # skew-fold share of them, touch E / ep (1 - (1 - k / E)^(skew T)) (DESIGN.md section 4).
    ep, skew, k, e = 16, Scenario.expert_skew, 8, 256
    row = _rows(ep, 16)["mlp_down"]  # one sequence per group: 16 tokens in all
    touched = e / ep * (1 - (1 - k / e) ** (skew * 16))
    assert row["mem_bytes"] == pytest.approx(touched * 2048 * 7168, rel=1e-9)


def test_load_skew_slows_the_step_and_is_capped_by_what_one_chip_can_get():
    # The step waits for the busiest chip: skew 1 (balanced) < 1.18 (the default: SGLang's
    # DeepSeek-V3 EP32 prefill, default placement vs perfect EPLB, LMSYS blog 2025-05-05)
    # < 2. A chip of E / ep experts gets at most all tokens: skew <= min(ep, E / top_k).
    tpot = [predict("h100", "deepseek-v3", batch=1024, ep=16, expert_skew=s, **_V3)["tpot_s"]
            for s in (1.0, Scenario.expert_skew, 2.0, 16.0, 1000.0)]
    assert tpot[0] < tpot[1] < tpot[2] < tpot[3]
    assert tpot[3] == tpot[4]
    balanced = predict("h100", "deepseek-v3", batch=1024, ep=1, expert_skew=1.0, **_V3)
    skewed = predict("h100", "deepseek-v3", batch=1024, ep=1, expert_skew=2.0, **_V3)
    assert _same(balanced, skewed)  # one chip group holds every expert: nothing to wait for


@pytest.mark.parametrize("bad", [0.5, -1.0, float("nan"), "high", True])
def test_expert_skew_outside_its_range_is_one_line(bad):
    with pytest.raises(ValueError, match=r"scenario\.expert_skew"):
        predict("h100", "mixtral-8x7b", phase="decode", expert_skew=bad)


def test_vectorised_candidates_agree_with_one_at_a_time():
    # One chip is a batch of one: a batch of mixed system sizes picks each one's own split.
    chips, plan, sc, sys = _prepare("h100", "mixtral-8x7b", dict(phase="decode", batch="max",
                                                                 **_FP8))
    many = from_configs([load_chip("h100")] * 3)
    sizes = np.array([2, 8, 16])
    out = evaluate(many, plan, sc, dataclasses.replace(sys, chips=sizes))
    for i, n in enumerate(sizes):
        one = evaluate(chips, plan, sc, dataclasses.replace(sys, chips=int(n)))
        assert out["ep"][i] == one["ep"][0]
        assert out["throughput_per_s"][i] == pytest.approx(one["throughput_per_s"][0])
    assert np.all(out["ep"] * out["tp"] * out["pp"] * out["dp"] == sizes)
