"""Training passes and memory: FLOP per token, model state per parameter, activations."""

import dataclasses

import pytest

from dse.presets import load_workload
from workloads.llm import param_count
from workloads.ops import MATMUL
from workloads.scenario import make_scenario
from workloads.training import STATE_BYTES, backward_pass, forward_pass, stored_activations

GPT2_XL = load_workload("gpt2-xl")
LLAMA2_70B = load_workload("llama2-70b")


def _flop(p):
    return float((p.ops.flop * p.ops.count).sum())


@pytest.mark.parametrize("cfg", [GPT2_XL, LLAMA2_70B], ids=lambda c: c.name)
def test_a_step_is_six_flop_per_parameter_per_token(cfg):
    # Kaplan et al. 2020 (arXiv 2001.08361) section 2.1: forward ~ 2N FLOP per token (plus
    # attention), backward twice the forward: C ~ 6N per token.
    seq = 2048
    fwd, bwd = forward_pass(cfg, seq), backward_pass(cfg, seq)
    weights = sum(float((p.ops.flop * p.ops.count)[p.ops.kind == MATMUL].sum())
                  for p in (fwd, bwd))
    # The embedding gathers are free; a tied LM head is a matmul with the embedding's weights.
    gathered = cfg.vocab + cfg.max_positions + cfg.type_vocab
    active = param_count(cfg)[1] - (gathered - cfg.vocab * cfg.tied_embeddings) * cfg.d_model
    assert weights / (seq * active) == pytest.approx(6.0, rel=0.01)
    # Attention's backward runs 2.5x its forward (FlashAttention-2), the rest 2x.
    assert 2.0 < _flop(bwd) / _flop(fwd) < 2.5


def test_adam_model_state_is_16_bytes_per_parameter():
    # Rajbhandari et al., ZeRO (SC 2020), section 3.1: "GPT-2 ... 1.5B parameters ...
    # requires 24 GB of memory" of model states with mixed-precision Adam (2 + 2 + 12 bytes).
    assert 2 + 2 + STATE_BYTES["adam"] == 16
    assert param_count(GPT2_XL)[0] * 16 == pytest.approx(24e9, rel=0.05)


def test_stored_activations_follow_korthikanti():
    # Korthikanti et al. 2023 (arXiv 2205.05198) section 4.1: a GPT layer keeps
    # s b h (34 + 5 a s / h) bytes at 16 bit; flash attention keeps no score matrix (the 5 a
    # s / h term) and these models run without dropout (its masks are 2 of the 34 bytes):
    # 32 s h bytes = 16 s h elements per layer. Full recomputation keeps the layer input,
    # 2 s h bytes (section 5).
    s, h, layers = 2048, GPT2_XL.d_model, GPT2_XL.n_layers
    one = dataclasses.replace(GPT2_XL, n_layers=1)
    two = dataclasses.replace(GPT2_XL, n_layers=2)
    per_layer = stored_activations(two, s)[0] - stored_activations(one, s)[0]
    assert per_layer == 16 * s * h
    kept, recomputed = stored_activations(GPT2_XL, s)
    assert recomputed < kept / 10
    rest = kept - layers * per_layer  # embedding, final norm and LM head inputs
    assert recomputed - rest == layers * s * h + per_layer


@pytest.mark.parametrize("values, field", [
    (dict(batch="max"), "scenario.batch"),
    (dict(optimizer="lion"), "scenario.optimizer"),
    (dict(zero=4), "scenario.zero"),
    (dict(recompute="selective"), "scenario.recompute"),
    (dict(interleave=0), "scenario.interleave"),
    (dict(sparsity="2:4"), "scenario.sparsity"),
])
def test_bad_training_fields_are_named(values, field):
    with pytest.raises(ValueError, match=field):
        make_scenario("llm", dict(phase="train", **values))


def test_training_fields_do_not_apply_to_inference():
    with pytest.raises(ValueError, match="scenario.zero applies to phase train"):
        make_scenario("llm", dict(phase="decode", zero=1))
    with pytest.raises(ValueError, match="does not apply to a cnn workload"):
        make_scenario("cnn", dict(phase="train"))
