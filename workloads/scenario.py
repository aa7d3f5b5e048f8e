"""Scenario (phase, lengths, batch, precision) validation and the Plan a scenario asks for."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union
from collections.abc import Mapping

from workloads import cnn, llm
from workloads.config import CNNConfig, TransformerConfig
from workloads.ops import Plan
from workloads.precision import SPARSITY_MODES, parse_dtype

__all__ = ["Scenario", "PHASES", "BATCHING_MODES", "make_scenario", "build_plan", "family_of"]

PHASES: dict[str, tuple[str, ...]] = {
    "llm": ("generate", "prefill", "decode"),
    "encoder": ("encode",),
    "cnn": ("infer",),
}
_MAX_LEN = 10_000_000
BATCHING_MODES = ("continuous", "static")


@dataclass(frozen=True)
class Scenario:
    """What is asked of the workload. ``batch`` is the system's concurrent requests, or
    ``"max"``: the largest batch that fits memory and the SLOs (chosen per candidate)."""

    phase: str
    batch: Union[int, str] = 1
    prompt_len: int = 512
    gen_len: int = 128
    context_len: int | None = None  # decode: tokens already in the KV cache
    weights: str = "bf16"
    activations: str = "bf16"
    kv_cache: str = "bf16"
    sparsity: str = "none"
    # generate at batch > 1: "continuous" (a server's steady state: continuous batching with
    # chunked prefill mixed into decode steps) or "static" (the whole batch's prompts first,
    # then its decode steps: offline benchmarks with a fixed batch).
    batching: str = "continuous"

    @property
    def decode_context(self) -> int:
        return self.context_len if self.context_len is not None else self.prompt_len


def family_of(cfg: TransformerConfig | CNNConfig) -> str:
    if isinstance(cfg, CNNConfig):
        return "cnn"
    return "encoder" if cfg.kind == "encoder" else "llm"


def _check_int(name: str, value, low: int, high: int) -> int:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value == int(value)):
        raise ValueError(
            f"scenario.{name} must be a whole number in [{low}, {high}], got {value!r}"
        )
    if not low <= value <= high:
        raise ValueError(f"scenario.{name} = {value} is out of range [{low}, {high}]")
    return int(value)


def make_scenario(family: str, values: Mapping) -> Scenario:
    """A validated Scenario from user values; ValueError names the field and allowed range."""
    allowed = set(Scenario.__dataclass_fields__)
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"unknown scenario key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    vals = {k: v for k, v in values.items() if v is not None or k == "context_len"}
    phase = vals.get("phase") or PHASES[family][0]
    if phase not in PHASES[family]:
        raise ValueError(
            f"scenario.phase = {phase!r} does not apply to a {family} workload; "
            f"allowed: {', '.join(PHASES[family])}"
        )
    vals["phase"] = phase
    batch = vals.get("batch", 1)
    if batch != "max":
        vals["batch"] = _check_int("batch", batch, 1, 10_000_000)
    for key in ("prompt_len", "gen_len"):
        if key in vals:
            vals[key] = _check_int(key, vals[key], 1, _MAX_LEN)
    if vals.get("context_len") is not None:
        vals["context_len"] = _check_int("context_len", vals["context_len"], 0, _MAX_LEN)
    for key in ("weights", "activations", "kv_cache"):
        if key in vals:
            vals[key] = str(vals[key]).lower()
            parse_dtype(vals[key], f"scenario.{key}")
    if vals.get("batching", "continuous") not in BATCHING_MODES:
        raise ValueError(f"scenario.batching = {vals['batching']!r}; allowed: "
                         f"{', '.join(BATCHING_MODES)}")
    if vals.get("sparsity", "none") not in SPARSITY_MODES:
        raise ValueError(
            f"scenario.sparsity = {vals['sparsity']!r}; allowed: {', '.join(SPARSITY_MODES)}"
        )
    return Scenario(**vals)


def build_plan(cfg: TransformerConfig | CNNConfig, sc: Scenario) -> Plan:
    """The passes, capacity needs and request size of ``sc`` on workload ``cfg``."""
    family = family_of(cfg)
    if family == "cnn":
        return Plan(cfg.name, family, sc.phase, (cnn.infer_pass(cfg),), 1.0,
                    cnn.param_count(cfg), 0.0, 0.0, 1, 1, 1)
    tokens = sc.prompt_len + (sc.gen_len if sc.phase == "generate" else 0)
    if sc.phase == "decode":
        tokens = sc.decode_context + 1
    if tokens > cfg.max_context:
        raise ValueError(f"scenario: {tokens} tokens of context exceed workload "
                         f"{cfg.name}'s max_context = {cfg.max_context}")
    kv = llm.kv_elems_per_token(cfg) if family == "llm" else 0.0
    common = dict(param_elems=llm.param_count(cfg)[0], kv_elems_per_token=kv,
                  n_layers=cfg.n_layers, n_heads=cfg.n_heads, n_kv_heads=llm.kv_heads(cfg),
                  moe_experts=cfg.n_experts, moe_top_k=cfg.top_k)
    if family == "encoder":
        return Plan(cfg.name, family, sc.phase, (llm.encode_pass(cfg, sc.prompt_len),), 1.0,
                    kv_tokens=0.0, **common)
    if sc.phase == "prefill":
        passes = (llm.prefill_pass(cfg, sc.prompt_len),)
        items = kv_tokens = sc.prompt_len
    elif sc.phase == "decode":
        ctx = sc.decode_context
        passes, items, kv_tokens = (llm.decode_pass(cfg, ctx),), 1.0, ctx + 1
    else:
        # Mean TPOT: the KV term is linear in context, so the step at the middle context is
        # the mean step.
        mid = sc.prompt_len + sc.gen_len / 2.0
        passes = (llm.prefill_pass(cfg, sc.prompt_len), llm.decode_pass(cfg, mid, sc.gen_len))
        if sc.batching == "continuous":
            passes += (llm.mixed_pass(cfg, sc.prompt_len, sc.gen_len),)
        items, kv_tokens = sc.gen_len, sc.prompt_len + sc.gen_len
    return Plan(cfg.name, family, sc.phase, passes, float(items), kv_tokens=float(kv_tokens),
                **common)
