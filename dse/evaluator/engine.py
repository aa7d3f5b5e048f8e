"""The serving engine a model runs under (conf/engine): its scheduler caps and its host time
per step, a named term of the step time (dse.evaluator.execution), never folded into the
compute efficiency or the per-operator overhead.

Every forward step of an LLM engine (a decode, mixed, verify or draft step, or one prefill)
waits for host work besides the chip's: gathering the last step's tokens, scheduling,
preparing the next inputs, sampling bookkeeping and detokenising. Part is fixed per step
(``step_overhead_s``), part grows with the sequences in the step (``seq_overhead_s``).
An engine that overlaps it with the chip's work (SGLang's zero-overhead scheduler) exposes
only what exceeds the chip's step time.

Dataflow chips (hwspace.tables.EXECUTION_MODELS) run a compiled schedule whose host runtime
is not any of these engines: like their per-operator overhead (dse.evaluator.columns
C_OP_OVERHEAD) they are assumed to pay no host time per step; their vendors' runtimes
(Groq, Cerebras, SambaNova) publish none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["EngineConfig", "engine_rules", "DEFAULT_ENGINE"]

# vLLM's default cap on sequences per engine (V0; V1 on A100 and GPUs under 70 GiB):
# max_num_seqs = 256 (vllm/engine/arg_utils.py @ 99d7eb5d), with 2,048 batched tokens per step
# for the OpenAI server (EngineArgs.get_batch_defaults; workloads.scenario).
_VLLM_MAX_NUM_SEQS = 256
_VLLM_MAX_NUM_BATCHED_TOKENS = 2048
# vLLM's host time per step. Its v0.5.x OpenAI server left "about 4ms of GPU bubble" per
# decode step, 5-13 ms in all (vllm-project/vllm issue #6854, Multi-Step Scheduling RFC, Llama
# 3 8B on one H100), a third of it the API server sharing the engine's process (v0.6.0 blog,
# "vLLM v0.6.0: 2.7x Throughput Improvement", 2024-09-05: API server 33 %, scheduling 29 %,
# GPU 38 %). Offline (LLM.generate, no server), the same engine ran Llama-3-8B at batch 1 on
# an H100 at 333 tokens/s in and out, 6.0 ms per generated token (LLM-Inference-Bench,
# data/measured_public.csv row 1773), of which streaming its 16 GB of bf16 weights at 3.35 TB/s
# takes 4.8 ms at least: at most ~1.2 ms of host time per step is left. 1 ms, the offline
# engine's, is taken; a server's is up to 4x that (set engine.step_overhead_s).
_VLLM_STEP_S = 1e-3
# Per sequence: the post-step loop over the running requests took 0.287 ms at 256 and 0.142 ms
# at 128 (vllm-project/vllm PR #46112, Scheduler.update_from_output micro-benchmark): 1.1 us
# each, a lower bound of the per-sequence host work.
_VLLM_SEQ_S = 1.1e-6


@dataclass
class EngineConfig:
    """Schema of conf/engine: a serving engine's caps and host time per step."""

    name: str = "vllm"
    # cap on sequences per replica for batch="max" (system.max_num_seqs, where given, wins)
    max_num_seqs: int = field(default=_VLLM_MAX_NUM_SEQS, metadata=dict(
        low=1, high=10_000_000, unit="sequences"))
    # token budget per step of phase serve (scenario.max_num_batched_tokens, where given, wins)
    max_num_batched_tokens: int = field(default=_VLLM_MAX_NUM_BATCHED_TOKENS, metadata=dict(
        low=1, high=1_000_000, unit="tokens per step"))
    # host time of every forward step: scheduling, input preparation, output processing
    step_overhead_s: float = field(default=_VLLM_STEP_S, metadata=dict(
        low=0.0, high=1.0, unit="s per step"))
    # host time per sequence in a step: sampling bookkeeping, detokenising, stop checks
    seq_overhead_s: float = field(default=_VLLM_SEQ_S, metadata=dict(
        low=0.0, high=0.01, unit="s per sequence per step"))
    # the host work runs beside the chip's step (only its excess is exposed)
    overlapped: bool = False
    # static shapes: the KV cache is allocated for prompt + generated tokens up front and each
    # decode step's attention spans all of it, not the tokens so far (optimum-habana's
    # run_generation.py with --reuse_cache and no --bucket_size: Gaudi's graph compiler wants
    # fixed tensor shapes, GaudiGenerationConfig.static_shapes)
    static_kv: bool = False


def engine_rules(cfg: EngineConfig, where: str = "engine") -> None:
    """Every running sequence decodes each step: the budget holds max_num_seqs tokens (vLLM
    refuses max_num_batched_tokens < max_num_seqs, vllm/config.py SchedulerConfig)."""
    if cfg.max_num_batched_tokens < cfg.max_num_seqs:
        raise ValueError(f"{where}.max_num_batched_tokens = {cfg.max_num_batched_tokens}: "
                         f"allowed: >= {where}.max_num_seqs ({cfg.max_num_seqs})")


DEFAULT_ENGINE = EngineConfig()
