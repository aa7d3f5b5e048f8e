"""The serving engine as a config (conf/engine): its caps on sequences and tokens, and its
host time per step as a named term of the step time (dse.evaluator.engine)."""

from __future__ import annotations

import json

import pytest

from dse.api import explain, predict
from dse.cli import main
from dse.presets import load_engine, preset_names

_NO_HOST = dict(step_overhead_s=0.0, seq_overhead_s=0.0)


def test_every_engine_preset_loads():
    assert {"vllm", "trtllm", "sglang", "llamacpp"} <= set(preset_names("engine"))
    for name in preset_names("engine"):
        cfg = load_engine(name)
        assert cfg.name == name and cfg.max_num_seqs <= cfg.max_num_batched_tokens


def test_default_engine_keeps_vllm_cap():
    # vLLM's max_num_seqs = 256 (vllm/engine/arg_utils.py): the default is today's cap.
    out = predict("h100", "llama3-8b", phase="decode", batch="max")
    assert out["batch"] == 256 and out["batch_limit"] == "max_num_seqs"


def test_host_time_lowers_large_batch_decode_throughput():
    # vLLM issue #6854: ~4 ms of GPU idle per decode step waiting for the CPU (scheduling,
    # input preparation, output processing), more as the batch grows; the v0.6.0 blog: 29 %
    # of the time scheduling. With the host term the same batch serves fewer tokens/s.
    kw = dict(phase="decode", batch=256, context_len=1024)
    none = predict("h100", "llama3-8b", engine=dict(name="x", **_NO_HOST), **kw)
    vllm = predict("h100", "llama3-8b", engine="vllm", **kw)
    assert vllm["throughput_per_s"] < none["throughput_per_s"]
    assert vllm["tpot_s"] - none["tpot_s"] == pytest.approx(1e-3 + 256 * 1.1e-6, rel=0.02)


def test_per_sequence_host_time_grows_with_the_batch():
    # Sampling and bookkeeping are per running sequence (vLLM PR #46112: 0.142 ms at 128,
    # 0.287 ms at 256 in one loop alone): the host term of a step grows with its sequences.
    eng = dict(name="x", step_overhead_s=0.0, seq_overhead_s=1e-5)
    base = dict(name="x", **_NO_HOST)
    added = [predict("h100", "llama3-8b", engine=eng, phase="decode", batch=b)["tpot_s"]
             - predict("h100", "llama3-8b", engine=base, phase="decode", batch=b)["tpot_s"]
             for b in (8, 128)]
    assert added[0] == pytest.approx(8e-5, rel=0.02)
    assert added[1] == pytest.approx(128e-5, rel=0.02)


def test_an_overlapping_engine_exposes_only_the_excess():
    # SGLang's zero-overhead scheduler (lmsys.org blog, 2024-12-04) runs the host work of
    # step n+1 beside the GPU's step n: host time shorter than the step costs nothing.
    kw = dict(phase="decode", batch=64, context_len=1024)
    base = predict("h100", "llama3-8b", engine=dict(name="x", **_NO_HOST), **kw)
    hidden = dict(name="x", step_overhead_s=1e-3, seq_overhead_s=0.0, overlapped=True)
    exposed = dict(hidden, step_overhead_s=1.0)
    assert predict("h100", "llama3-8b", engine=hidden, **kw)["tpot_s"] == pytest.approx(
        base["tpot_s"])
    assert predict("h100", "llama3-8b", engine=exposed, **kw)["tpot_s"] == pytest.approx(1.0)


def test_host_time_appears_as_a_named_share():
    # A step the host dominates is host-bound, and explain lists the host time per pass.
    eng = dict(name="x", step_overhead_s=0.5, seq_overhead_s=0.0)
    out, rows = explain("h100", "llama3-8b", engine=eng, phase="decode", batch=1)
    assert out["bound"] == "host"
    host = [r for r in rows if r["kind"] == "host"]
    assert len(host) == 1 and host[0]["time_s"] == pytest.approx(0.5)


def test_dataflow_chips_pay_no_host_time():
    # A compiled dataflow schedule has no serving engine's step loop (dse.evaluator.engine).
    kw = dict(phase="decode", batch=1)
    slow = dict(name="x", step_overhead_s=0.5, seq_overhead_s=0.0)
    assert predict("cerebras-wse3", "llama3-8b", engine=slow, **kw)["tpot_s"] == pytest.approx(
        predict("cerebras-wse3", "llama3-8b", engine=dict(name="x", **_NO_HOST), **kw)["tpot_s"])


def test_encoders_and_cnns_pay_no_engine_host_time():
    slow = dict(name="x", step_overhead_s=0.5, seq_overhead_s=0.0)
    for work in ("resnet50", "bert-large"):
        a = predict("a100", work, engine=slow, batch=8)["latency_s"]
        b = predict("a100", work, engine=dict(name="x", **_NO_HOST), batch=8)["latency_s"]
        assert a == pytest.approx(b)


def test_trtllm_cap_admits_a_larger_batch_than_vllm():
    # TensorRT-LLM's max_batch_size defaults to 2,048 (tensorrt_llm/builder.py), vLLM's
    # max_num_seqs to 256: where memory holds more than 256 sequences, TRT-LLM runs more.
    kw = dict(phase="generate", batch="max", prompt_len=128, gen_len=128)
    vllm = predict("h100", "llama3-8b", engine="vllm", **kw)
    trt = predict("h100", "llama3-8b", engine="trtllm", **kw)
    assert vllm["batch"] == 256 and vllm["batch_limit"] == "max_num_seqs"
    assert trt["batch"] > 256 and trt["batch_limit"] == "kv_cache"


def test_a_given_max_num_seqs_wins_over_the_engine():
    out = predict("h100", "llama3-8b", engine="trtllm", max_num_seqs=100, phase="decode",
                  batch="max")
    assert out["batch"] == 100


def test_cli_takes_an_engine(capsys):
    main(["predict", "engine=trtllm", "scenario.phase=decode", "scenario.batch=max",
          "--json"])
    trt = json.loads(capsys.readouterr().out)
    main(["predict", "engine=trtllm", "system.max_num_seqs=256", "scenario.phase=decode",
          "scenario.batch=max", "--json"])
    capped = json.loads(capsys.readouterr().out)
    assert trt["batch"] > 256 and capped["batch"] == 256


def test_validation_maps_each_software_stack_to_its_engine():
    from dse.analysis.validate import engine_of, load_cases

    assert engine_of("TensorRT-LLM (FP16 engine, gemm/gpt_attention plugins)") == "trtllm"
    assert engine_of("vLLM (FP16, offline LLM.generate)") == "vllm"
    assert engine_of("llama.cpp llama-bench (Metal)") == "llamacpp"
    assert engine_of("DeepSpeed-MII pipeline") == "unmodelled"
    # TensorRT-LLM's max-throughput rows meet its own cap, 2,048 (tensorrt_llm/builder.py).
    cases = load_cases()[0]
    capped = {c.max_num_seqs for c in cases if c.engine == "trtllm"
              and dict(c.scenario).get("batch") == "max"}
    assert capped == {2048}


def test_static_shapes_attend_over_the_whole_allocated_cache():
    # optimum-habana's run_generation.py (--reuse_cache, no --bucket_size; examples/text-
    # generation/run_1x.sh) allocates the KV cache for prompt + new tokens and attends over
    # all of it every step, so a long static batch reads more KV than the mean context. The
    # published direction: LLM-Inference-Bench's Gaudi 2 rows (data/measured_public.csv ids
    # 1437-1516) ran 7-52 % below a model that read the mean context, more so at larger
    # batches, where the KV cache dominates a step.
    kw = dict(phase="generate", batch=64, batching="static", prompt_len=1024, gen_len=1024)
    static = predict("gaudi2", "llama2-7b", engine="optimum-habana", **kw)
    dynamic = predict("gaudi2", "llama2-7b",
                      engine=dict(name="dynamic", step_overhead_s=0.0, seq_overhead_s=0.0),
                      **kw)
    assert static["throughput_per_s"] < 0.95 * dynamic["throughput_per_s"]
    one = dict(kw, batch=1)
    assert predict("gaudi2", "llama2-7b", engine="optimum-habana", **one)[
        "throughput_per_s"] > 0.9 * predict("gaudi2", "llama2-7b", engine=dict(
            name="dynamic", step_overhead_s=0.0, seq_overhead_s=0.0), **one)["throughput_per_s"]
