"""Mamba-2 layers (Dao & Gu 2024, arXiv 2405.21060) and hybrids: a fixed state per sequence
instead of a KV cache, so at long context a hybrid holds far more sequences than a
transformer of the same size."""

import dataclasses

import pytest

from dse.api import explain, predict
from dse.presets import load_workload
from workloads import llm

HYBRID = load_workload("nemotron-h-8b")
MAMBA = load_workload("mamba2-2.7b")
# Llama-3.1-8B: Llama-3-8B's network with a 128K context (huggingface.co/meta-llama/
# Llama-3.1-8B config.json: max_position_embeddings 131072, same layers, heads and widths).
LLAMA = dataclasses.replace(load_workload("llama3-8b"), name="llama3.1-8b",
                            max_context=131_072)
LONG = 128_000  # tokens of context
MAX_DECODE = dict(phase="decode", batch="max", max_num_seqs=None)


def _mem_bytes(cfg, context_len, **scenario):
    """Off-chip bytes of each operator of one decode step at batch 1, by name."""
    _, rows = explain("h100", cfg, phase="decode", batch=1, context_len=context_len,
                      **scenario)
    return {r["op"]: r["mem_bytes"] for r in rows}


def test_nemotron_h_parameters_match_the_published_checkpoint():
    # huggingface.co/nvidia/Nemotron-H-8B-Base-8K: 8,100,852,736 parameters (safetensors).
    assert llm.param_count(HYBRID) == (8_100_852_736, 8_100_852_736)


def test_nemotron_h_state_per_sequence_follows_its_config():
    # huggingface.co/nvidia/Nemotron-H-8B-Base-8K config.json: per Mamba-2 layer an SSM state
    # of 128 heads x 64 x 128 and a conv state of 3 x (8192 + 2 x 8 x 128) channels; 24 such
    # layers, at bf16 (mamba_ssm Mamba2.allocate_inference_cache: the weights' dtype).
    per_layer = 128 * 64 * 128 + 3 * (8192 + 2 * 8 * 128)
    assert llm.state_bytes_per_seq(HYBRID) == 24 * per_layer * 2 == 51_806_208
    fp32 = dataclasses.replace(HYBRID, ssm_state_dtype="fp32")
    assert llm.state_bytes_per_seq(fp32) == 2 * llm.state_bytes_per_seq(HYBRID)
    # Only the 4 attention layers cache K and V: 2 x 8 heads x 128 each per token.
    assert llm.kv_elems_per_token(HYBRID) == 4 * 2 * 8 * 128
    assert llm.kv_elems_per_token(MAMBA) == 0 and llm.layer_counts(MAMBA) == (0, 0, 64)


def test_hybrid_holds_far_more_sequences_at_128k_than_a_same_size_transformer():
    # Nemotron-H-8B (8.1B) against Llama-3.1-8B (8.0B) on one H100 at 128k tokens: the
    # hybrid caches K and V in 4 of 52 layers, Llama in all 32 (8x the KV bytes per token),
    # and adds a 49 MiB state per sequence that does not grow with the context.
    hybrid = predict("h100", HYBRID, context_len=LONG, **MAX_DECODE)
    llama = predict("h100", LLAMA, context_len=LONG, **MAX_DECODE)
    assert hybrid["fits"] and llama["fits"]
    assert llama["max_batch"] >= 1
    assert hybrid["max_batch"] / llama["max_batch"] >= 8  # 27 vs 3 sequences
    assert hybrid["throughput_per_s"] > 5 * llama["throughput_per_s"]


def test_pure_mamba_capacity_does_not_shrink_with_context():
    long_mamba = dataclasses.replace(MAMBA, max_context=131_072)
    short = predict("h100", long_mamba, context_len=1_000, **MAX_DECODE)
    long = predict("h100", long_mamba, context_len=LONG, **MAX_DECODE)
    assert short["max_batch"] == long["max_batch"] > 100
    assert long["tpot_s"] == pytest.approx(short["tpot_s"], rel=1e-9)


def test_decode_reads_and_writes_the_state_whatever_the_context():
    short, long = _mem_bytes(HYBRID, 4_000), _mem_bytes(HYBRID, 100_000)
    state = 128 * 64 * 128 * 2  # bytes of one layer's SSM state at bf16
    assert short["ssd_step"] == long["ssd_step"] == 2 * state  # read and write
    assert short["conv1d"] == long["conv1d"]
    assert long["attention"] > 20 * short["attention"]
    # The state keeps its dtype whatever the KV cache's: an fp8 cache leaves it at bf16.
    assert _mem_bytes(HYBRID, 4_000, kv_cache="fp8")["ssd_step"] == 2 * state
    fp32 = dataclasses.replace(HYBRID, ssm_state_dtype="fp32")
    assert _mem_bytes(fp32, 4_000)["ssd_step"] == 4 * state


@pytest.mark.parametrize("context_len", [4_000, 100_000])
def test_decode_bytes_are_weights_kv_and_state(context_len):
    # One step at batch 1 reads every weight once (the embedding table only by the row it
    # gathers), the attention layers' K and V, and reads and writes the whole state.
    rows = explain("h100", HYBRID, phase="decode", batch=1, context_len=context_len)[1]
    weights = 2 * (llm.param_count(HYBRID)[0] - 131_072 * 4096)  # bf16
    kv = 2 * llm.kv_elems_per_token(HYBRID) * context_len
    expected = weights + kv + 2 * llm.state_bytes_per_seq(HYBRID)
    assert sum(r["mem_bytes"] * r["count"] for r in rows) == pytest.approx(expected, rel=1e-3)


def test_attention_and_mlp_pattern_is_the_transformer():
    # Fast path vs general: Llama-3-8B written as 64 pattern layers, attention then MLP,
    # each with its own norm, is the same network as 32 two-norm transformer layers.
    llama = load_workload("llama3-8b")
    split = dataclasses.replace(llama, n_layers=64, layer_pattern="*-" * 32, norms_per_layer=1)
    assert llm.param_count(split) == llm.param_count(llama)
    for scenario in (dict(phase="decode", batch="max"), dict(phase="generate", batch=8),
                     dict(phase="prefill", batch=2, prompt_len=2048)):
        a, b = predict("h100", llama, **scenario), predict("h100", split, **scenario)
        for key in ("throughput_per_s", "max_batch", "ttft_s", "tpot_s"):
            assert a[key] == pytest.approx(b[key], rel=1e-12, nan_ok=True), (scenario, key)


def _prefill_flop(cfg, prompt_len):
    """FLOP of each operator over one prompt, by name (count times per instance)."""
    _, rows = explain("h100", cfg, phase="prefill", batch=1, prompt_len=prompt_len)
    return {r["op"]: r["flop"] * r["count"] for r in rows}


def test_prefill_flop_is_two_per_weight_plus_linear_scan():
    # Forward FLOP per token ~ 2 N for the N non-embedding weights (Kaplan et al. 2020,
    # arXiv 2001.08361, Table 1); the SSD scan and 4 attention layers add a few per cent.
    prompt = 8_192
    flop = _prefill_flop(HYBRID, prompt)
    embed_and_head = 2 * 131_072 * 4096
    dense = 2 * (llm.param_count(HYBRID)[0] - embed_and_head)
    assert sum(flop.values()) / prompt == pytest.approx(dense, rel=0.06)
    assert sum(flop.values()) / prompt > dense
    # The chunked scan costs the same per token at 4x the prompt; attention 4x more.
    longer = _prefill_flop(HYBRID, 4 * prompt)
    assert longer["ssd_scan"] == pytest.approx(4 * flop["ssd_scan"], rel=1e-9)
    assert longer["attention"] > 15 * flop["attention"]


def test_pure_mamba_serves_with_continuous_batching():
    out = predict("h100", MAMBA, phase="generate", batch="max", prompt_len=1024, gen_len=512,
                  tpot_slo_s=0.05)
    assert out["fits"], out["reason"]
    assert out["batch"] > 1 and 0 < out["tpot_s"] <= 0.05


@pytest.mark.parametrize("change, field", [
    (dict(layer_pattern="M-X"), "workload.layer_pattern"),
    (dict(layer_pattern="M-M"), "workload.layer_pattern"),  # 3 of 52 layers
    (dict(layer_pattern=None), "workload.ssm_heads"),
    (dict(ssm_heads=0), "workload.ssm_heads"),
    (dict(ssm_groups=3), "workload.ssm_heads"),
    (dict(d_ff=0), "workload.d_ff"),
    (dict(norms_per_layer=2), "workload.norms_per_layer"),
    (dict(ssm_state_dtype="fp8"), "workload.ssm_state_dtype"),
])
def test_bad_hybrid_is_named(change, field):
    with pytest.raises(ValueError, match=field):
        load_workload({**dataclasses.asdict(HYBRID), **change})


def test_pure_mamba_heads_must_be_its_mamba_heads():
    with pytest.raises(ValueError, match="workload.n_heads"):
        load_workload({**dataclasses.asdict(MAMBA), "n_heads": 40})
