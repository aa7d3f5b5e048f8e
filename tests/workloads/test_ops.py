"""Operator tables: FLOP and byte accounting that can be checked by hand."""

import pytest

from dse.presets import load_workload
from workloads import llm
from workloads.scenario import build_plan, make_scenario


def test_decode_flops_are_two_per_active_weight_plus_attention():
    # A matrix-vector product per weight matrix: 2 FLOP per weight per token (Kaplan et al.
    # 2020, "C_forward ~ 2N"), plus attention over the context.
    cfg = load_workload("llama2-7b")
    p = llm.decode_pass(cfg, context_len=1)
    ops = p.ops
    matmul_flop = float((ops.flop * ops.count)[ops.kind == 0].sum())
    streamed = llm.param_count(cfg)[0] - cfg.vocab * cfg.d_model  # embedding table is gathered
    norms = cfg.n_layers * 2 * cfg.d_model + cfg.d_model
    assert matmul_flop == pytest.approx(2 * (streamed - norms), rel=1e-6)


def test_mixtral_decode_runs_two_of_eight_experts():
    cfg = load_workload("mixtral-8x7b")
    ops = llm.decode_pass(cfg, 1).ops
    up = ops.names.index("mlp_up")
    # each token runs top_k = 2 experts: FLOP = 2 * 2 * d * 2*ff; weights hold all 8
    assert ops.flop[up] == pytest.approx(2 * 2 * cfg.d_model * 2 * cfg.d_ff)
    assert ops.weight_elems[up] == pytest.approx(8 * cfg.d_model * 2 * cfg.d_ff)
    assert ops.moe[up]


def test_generate_plan_has_prefill_and_decode_at_mean_context():
    cfg = load_workload("llama3-8b")
    sc = make_scenario("llm", dict(phase="generate", prompt_len=1000, gen_len=200,
                                   batching="static"))
    plan = build_plan(cfg, sc)
    assert [p.name for p in plan.passes] == ["prefill", "decode"]
    assert plan.passes[1].repeats == 200
    assert plan.kv_tokens == 1200
    attn = plan.passes[1].ops.names.index("attention")
    assert plan.passes[1].ops.n[attn] == 1100  # mean context of the decode steps


def test_a_continuous_generate_step_carries_prompt_len_over_gen_len_prompt_tokens():
    # Each request brings its 1,000-token prompt once per 200 generated tokens: a mixed step
    # holds 1 decode token + 5 prompt tokens per sequence (Sarathi-Serve's chunked prefill).
    cfg = load_workload("llama3-8b")
    sc = make_scenario("llm", dict(phase="generate", prompt_len=1000, gen_len=200))
    mixed = build_plan(cfg, sc).passes[-1]
    assert mixed.name == "mixed" and mixed.repeats == 200
    qkv = mixed.ops.names.index("qkv")
    assert mixed.ops.m[qkv] == 6
    prompt = mixed.ops.names.index("attention_prompt")
    assert mixed.ops.m[prompt] * cfg.n_kv_heads / cfg.n_heads == 5


def test_kv_cache_per_token_llama2_70b():
    # GQA: 2 (K, V) x 80 layers x 8 KV heads x 128 = 163,840 elements per token
    # (327,680 bytes at 16 bit), huggingface.co/meta-llama/Llama-2-70b-hf config.json.
    assert llm.kv_elems_per_token(load_workload("llama2-70b")) == 163_840
