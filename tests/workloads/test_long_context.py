"""Sliding-window attention (Mistral 7B): attention and the KV cache stop growing past the
window, so long contexts keep the batch that short ones have."""

import dataclasses

import pytest

from dse.api import explain, predict
from dse.presets import load_workload
from workloads.llm import cached_tokens, param_count, prompt_keys

MISTRAL = load_workload("mistral-7b")
FULL = dataclasses.replace(MISTRAL, name="mistral-7b-full", sliding_window=None)


def test_mistral_parameter_count():
    # huggingface.co/mistralai/Mistral-7B-v0.1: 7.24B parameters.
    assert param_count(MISTRAL)[0] == pytest.approx(7.24e9, rel=0.01)


def test_prompt_keys_are_the_exact_causal_mean():
    w = dataclasses.replace(MISTRAL, sliding_window=4)
    assert prompt_keys(w, 10) == pytest.approx(sum(min(i, 4) for i in range(1, 11)) / 10)
    assert prompt_keys(w, 3) == 2.0 == prompt_keys(FULL, 3)
    assert cached_tokens(MISTRAL, 30_000) == 4096 and cached_tokens(FULL, 30_000) == 30_000


def _attention_flop(cfg, ctx):
    _, rows = explain("h100", cfg, phase="decode", batch=1, context_len=ctx)
    return next(r["flop"] for r in rows if r["op"] == "attention")


def test_decode_attention_stops_growing_past_the_window():
    assert _attention_flop(MISTRAL, 8000) == _attention_flop(MISTRAL, 30000)
    assert _attention_flop(FULL, 30000) > 3 * _attention_flop(MISTRAL, 30000)
    assert _attention_flop(MISTRAL, 2000) == _attention_flop(FULL, 2000)


def test_rolling_cache_keeps_the_batch_at_long_context():
    # Mistral 7B paper, section 2: the rolling buffer cache "reduces the cache memory usage by
    # 8x" at 32k tokens with a 4k window, "without impacting the model quality".
    kw = dict(phase="decode", batch="max", context_len=32000, max_num_seqs=None)
    window, full = predict("h100", MISTRAL, **kw), predict("h100", FULL, **kw)
    short = predict("h100", MISTRAL, **{**kw, "context_len": 4000})
    assert window["max_batch"] == pytest.approx(short["max_batch"], rel=0.03)
    assert window["max_batch"] / full["max_batch"] == pytest.approx(32000 / 4096, rel=0.05)
    assert window["throughput_per_s"] > 3 * full["throughput_per_s"]


@pytest.mark.parametrize("window", [0, -1, 40_000])
def test_bad_window_is_named(window):
    with pytest.raises(ValueError, match="workload.sliding_window"):
        load_workload({**dataclasses.asdict(MISTRAL), "sliding_window": window})
