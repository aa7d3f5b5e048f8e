"""Scenario (phase, lengths, batch, precision) validation and the Plan a scenario asks for."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Optional, Union
from collections.abc import Mapping

import numpy as np
from omegaconf import MISSING

from workloads import cnn, llm, training
from workloads.config import MAX_TOKENS, STATE_DTYPES, CNNConfig, TransformerConfig
from workloads.ops import ATTENTION, Pass, Plan
from workloads.precision import DTYPES, SPARSITY_MODES, parse_dtype

__all__ = ["Scenario", "ScenarioConfig", "LengthDistConfig", "PHASES", "BATCHING_MODES",
           "ROUTINGS", "MAX_NUM_BATCHED_TOKENS", "SERVE_KEYS", "make_scenario", "serve_settings",
           "mean_tokens", "length_rules", "build_plan", "family_of", "expected_tokens",
           "draft_config"]

PHASES: dict[str, tuple[str, ...]] = {
    # serve: requests at a rate through a serving engine (dse.serving), decoder LLMs only
    "llm": ("generate", "prefill", "decode", "train", "serve"),
    "encoder": ("encode",),
    "cnn": ("infer",),
}
BATCHING_MODES = ("continuous", "static")
RECOMPUTE_MODES = ("none", "full")
ZERO_STAGES = (0, 1, 2, 3)
# Phase serve: how requests reach the data-parallel replicas (dse.evaluator.scheduler), and
# the engine's token budget per step: vLLM's with chunked prefill, for the OpenAI server
# beside max_num_seqs = 256: 2,048 on GPUs under 70 GiB and A100 (V1), and V0's server
# default (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults). V1 on H100-class GPUs
# pairs 8,192 tokens with 1,024 sequences.
ROUTINGS = ("round_robin", "shortest_queue")
MAX_NUM_BATCHED_TOKENS = 2048
LENGTH_DISTS = ("uniform", "lognormal")


@dataclass(frozen=True)
class Scenario:
    """What is asked of the workload. ``batch`` is the system's concurrent requests, or
    ``"max"``: the largest batch that fits memory and the SLOs (chosen per candidate).
    ``train``: ``batch`` is the global batch in sequences of ``prompt_len`` tokens."""

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
    # Speculative decoding (Leviathan et al., ICML 2023; Chen et al., arXiv 2302.01318): a
    # draft model proposes ``spec_tokens`` tokens per step, the target verifies them in one
    # pass, and each proposed token is accepted with probability ``acceptance``. ``draft``: a
    # workload preset name, or a draft-to-target size ratio in (0, 1); None: off.
    draft: Union[str, float, None] = None
    spec_tokens: int = 4
    acceptance: float = 0.7
    # Training: the optimizer (its state bytes per parameter: workloads.training), the ZeRO
    # stage sharding model state over data-parallel replicas (Rajbhandari et al., SC 2020:
    # 1 optimizer state, 2 + gradients, 3 + weights, as FSDP's full sharding), and activation
    # recomputation. None: the fastest that fits, per candidate.
    optimizer: str = "adam"
    zero: Union[int, None] = None
    recompute: Union[str, None] = None
    interleave: Union[int, None] = None  # virtual pipeline stages per chip (1: plain 1F1B)
    # MoE under expert parallelism: the busiest chip's routed tokens over the mean; the step
    # waits for it. Default: DeepSeek-V3 prefill on 32 H100s at EP32, SGLang's default expert
    # placement against a perfectly balanced one: 59,337 / 50,302 tokens/s per node = 1.18
    # (LMSYS blog 2025-05-05 "large-scale EP", Overall Throughput table). A lower bound of the
    # MoE layers' own skew (the step also holds attention, which EP does not skew).
    expert_skew: float = 1.18
    # The serving engine's static shapes (dse.evaluator.engine.EngineConfig.static_kv): a
    # static batch's decode attends to the whole preallocated cache, prompt + gen_len.
    static_kv: bool = False

    def inputs(self) -> dict:
        """The settings as dse.api.predict takes them (static_kv comes from the engine)."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__ if f != "static_kv"}

    @property
    def decode_context(self) -> int:
        return self.context_len if self.context_len is not None else self.prompt_len


_TOKENS = dict(low=1, high=MAX_TOKENS, unit="tokens")


@dataclass
class LengthDistConfig:
    """Schema of a drawn length (phase serve): {dist: uniform, low, high} or {dist:
    lognormal, mean, sigma} (mean tokens, sigma of their log); length_rules: which go
    together."""

    dist: str = field(default=MISSING, metadata=dict(choices=LENGTH_DISTS))
    low: Optional[int] = field(default=None, metadata=_TOKENS)
    high: Optional[int] = field(default=None, metadata=_TOKENS)
    mean: Optional[float] = field(default=None, metadata=_TOKENS)
    sigma: Optional[float] = field(default=None, metadata=dict(low=0.0, high=10.0))


_LENGTH_PARAMS = {"uniform": ("low", "high"), "lognormal": ("mean", "sigma")}


def length_rules(cfg: LengthDistConfig, where: str) -> None:
    """A uniform length takes low <= high, a lognormal one mean and sigma, nothing else."""
    needed = _LENGTH_PARAMS[cfg.dist]
    for key in ("low", "high", "mean", "sigma"):
        value = getattr(cfg, key)
        if value is None and key in needed:
            raise ValueError(f"{where}.{key}: required by dist {cfg.dist} (it takes "
                             f"{' and '.join(needed)})")
        if value is not None and key not in needed:
            raise ValueError(f"{where}.{key} = {value!r}: dist {cfg.dist} takes "
                             f"{' and '.join(needed)} only")
    if cfg.dist == "uniform" and cfg.low > cfg.high:
        raise ValueError(f"{where}.low = {cfg.low}: allowed: <= high ({cfg.high})")


# A length: a whole number of tokens, or (phase serve) a distribution.
_LENGTH = dict(_TOKENS, whole=True, schema=LengthDistConfig)
_REQUESTS = dict(low=1, high=10_000_000, unit="requests")


@dataclass
class ScenarioConfig:
    """Schema of a scenario (``scenario.*``, each scenario of a niche): ranges, choices and
    units beside the defaults of Scenario; make_scenario applies the cross-field rules."""

    phase: Optional[str] = field(default=None, metadata=dict(
        choices=tuple(dict.fromkeys(p for ps in PHASES.values() for p in ps))))
    batch: Any = field(default=Scenario.batch, metadata=dict(
        low=1, high=10_000_000, whole=True, words=("max",), unit="requests"))
    prompt_len: Any = field(default=Scenario.prompt_len, metadata=_LENGTH)
    gen_len: Any = field(default=Scenario.gen_len, metadata=_LENGTH)
    context_len: Optional[int] = field(default=None, metadata=dict(_TOKENS, low=0))
    weights: str = field(default=Scenario.weights, metadata=dict(choices=tuple(DTYPES)))
    activations: str = field(default=Scenario.activations, metadata=dict(choices=tuple(DTYPES)))
    kv_cache: str = field(default=Scenario.kv_cache, metadata=dict(choices=tuple(DTYPES)))
    sparsity: str = field(default=Scenario.sparsity, metadata=dict(choices=SPARSITY_MODES))
    batching: str = field(default=Scenario.batching, metadata=dict(choices=BATCHING_MODES))
    draft: Any = None  # a workload preset name or a size ratio in (0, 1): make_scenario
    spec_tokens: int = field(default=Scenario.spec_tokens, metadata=dict(low=1, high=16))
    acceptance: float = field(default=Scenario.acceptance, metadata=dict(low=0.0, below=1.0))
    optimizer: str = field(default=Scenario.optimizer,
                           metadata=dict(choices=training.OPTIMIZERS))
    zero: Optional[int] = field(default=None, metadata=dict(low=ZERO_STAGES[0],
                                                            high=ZERO_STAGES[-1]))
    recompute: Optional[str] = field(default=None, metadata=dict(choices=RECOMPUTE_MODES))
    interleave: Optional[int] = field(default=None, metadata=dict(low=1, high=64))
    # busiest expert-parallel chip's tokens / mean (1: balanced); dense models ignore it
    expert_skew: float = field(default=Scenario.expert_skew, metadata=dict(
        low=1.0, high=1e6, unit="busiest / mean"))
    # Phase serve (dse.serving): requests/s offered to the whole system (Poisson arrivals);
    # with a trace, null keeps the trace's own rate and a number rescales its arrivals.
    request_rate: Optional[float] = field(default=None, metadata=dict(
        above=0.0, high=1e9, unit="requests/s"))
    trace: Optional[str] = None  # a CSV file with the header arrival_s,prompt_len,gen_len
    # Requests simulated per data-parallel replica: 2,000 keep `dse predict` on one chip
    # under a second with the max-rate search, and its P99s rest on their 20 largest.
    n_requests: int = field(default=2000, metadata=_REQUESTS)
    seed: int = field(default=0, metadata=dict(low=0, high=10_000_000))
    routing: str = field(default=ROUTINGS[0], metadata=dict(choices=ROUTINGS))
    max_num_batched_tokens: int = field(default=MAX_NUM_BATCHED_TOKENS, metadata=dict(
        low=1, high=1_000_000, unit="tokens per step"))


SERVE_KEYS = ("request_rate", "trace", "n_requests", "seed", "routing",
              "max_num_batched_tokens")
_META = {f.name: f.metadata for f in dataclasses.fields(ScenarioConfig)}


def family_of(cfg: TransformerConfig | CNNConfig) -> str:
    if isinstance(cfg, CNNConfig):
        return "cnn"
    return "encoder" if cfg.kind == "encoder" else "llm"


def _check_int(name: str, value) -> int:
    """``value`` as a whole number in the range ScenarioConfig gives field ``name``."""
    low, high = _META[name]["low"], _META[name]["high"]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value == int(value)):
        raise ValueError(
            f"scenario.{name} must be a whole number in [{low}, {high}], got {value!r}"
        )
    if not low <= value <= high:
        raise ValueError(f"scenario.{name} = {value} is out of range [{low}, {high}]")
    return int(value)


def make_scenario(family: str, values: Mapping) -> Scenario:
    """A validated Scenario from user values; ValueError names the field and allowed range.
    Phase serve gives the steady state its requests are judged by first (_check_serve)."""
    allowed = set(Scenario.__dataclass_fields__) | set(SERVE_KEYS)
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
    _check_serve(vals)
    batch = vals.get("batch", 1)
    if batch != "max":
        vals["batch"] = _check_int("batch", batch)
    for key in ("prompt_len", "gen_len"):
        if key in vals:
            vals[key] = _check_int(key, vals[key])
    if vals.get("context_len") is not None:
        vals["context_len"] = _check_int("context_len", vals["context_len"])
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
    _check_speculation(family, vals)
    _check_training(vals)
    _check_skew(vals)
    return Scenario(**vals)


def _check_skew(vals: dict) -> None:
    skew, meta = vals.get("expert_skew", Scenario.expert_skew), _META["expert_skew"]
    number = isinstance(skew, (int, float)) and not isinstance(skew, bool)
    if not (number and meta["low"] <= skew <= meta["high"]):
        raise ValueError(f"scenario.expert_skew = {skew!r}: allowed: a number in "
                         f"[{meta['low']:g}, {meta['high']:g}] (busiest chip's tokens / mean)")
    vals["expert_skew"] = float(skew)
def _is_dist(length: Any) -> bool:
    return isinstance(length, Mapping) or dataclasses.is_dataclass(length)


def _plain_length(length: Any) -> Any:
    """A length as a whole number or a distribution's plain dict (its unset keys left out)."""
    if not _is_dist(length):
        return length
    given = dataclasses.asdict(length) if dataclasses.is_dataclass(length) else length
    return {k: v for k, v in given.items() if v is not None}


def mean_tokens(length: Any) -> int:
    """The mean of a length (a whole number, or a uniform or lognormal distribution), tokens."""
    spec = _plain_length(length)
    if not _is_dist(spec):
        return int(spec)
    if spec["dist"] == "uniform":
        return round((spec["low"] + spec["high"]) / 2)
    return max(1, round(spec["mean"]))


# Scenario keys phase serve refuses, with the one value it takes: the engine admits requests
# (system.max_num_seqs, scenario.max_num_batched_tokens) one token per step each.
_NOT_SERVED = (("batch", 1), ("context_len", None), ("draft", None),
               ("batching", "continuous"))


def _check_serve(vals: dict) -> None:
    """Serve keys apply to phase serve only and are taken out of ``vals`` (serve_settings
    reads them). Phase serve becomes the analytical steady state: continuous generation at
    the largest batch the SLOs allow, at the mean lengths."""
    serving = {k: vals.pop(k) for k in SERVE_KEYS if k in vals}
    if vals["phase"] != "serve":
        for key in ("request_rate", "trace"):
            if serving.get(key) is not None:
                raise ValueError(f"scenario.{key} = {serving[key]!r} applies to phase serve "
                                 f"only; phase is {vals['phase']}")
        for key in ("prompt_len", "gen_len"):
            if _is_dist(vals.get(key)):
                raise ValueError(f"scenario.{key}: a distribution applies to phase serve only; "
                                 f"allowed: a whole number of tokens")
        return
    if serving.get("request_rate") is None and serving.get("trace") is None:
        raise ValueError("scenario.request_rate = null: phase serve needs a rate (requests/s "
                         "for the system, > 0) or a trace")
    for key in ("prompt_len", "gen_len"):
        if serving.get("trace") is not None and _is_dist(vals.get(key)):
            raise ValueError(f"scenario.{key}: the trace holds the lengths; allowed with a "
                             f"trace: no distribution")
    for key, only in _NOT_SERVED:
        if vals.get(key, only) != only:
            raise ValueError(f"scenario.{key} = {vals[key]!r}: phase serve admits requests as "
                             f"the engine allows; allowed with serve: "
                             f"{'null' if only is None else only}")
    vals.update(phase="generate", batch="max")
    for key in ("prompt_len", "gen_len"):
        if key in vals:
            vals[key] = mean_tokens(vals[key])


def serve_settings(values: Mapping) -> dict[str, Any]:
    """The keyword arguments of dse.serving.serve from a checked serve scenario (every
    ScenarioConfig field): the serve keys, and each length as a whole number or a plain dict."""
    return {**{k: values[k] for k in SERVE_KEYS},
            **{k: _plain_length(values[k]) for k in ("prompt_len", "gen_len")}}


def _check_training(vals: dict) -> None:
    train = vals["phase"] == "train"
    if not train:
        for key in ("zero", "recompute", "interleave"):
            if vals.get(key) is not None:
                raise ValueError(f"scenario.{key} applies to phase train only")
        return
    if vals.get("batch", 1) == "max":
        raise ValueError("scenario.batch: training needs the global batch in sequences, "
                         "not 'max'")
    if vals.get("sparsity", "none") != "none":
        raise ValueError("scenario.sparsity: training runs dense (2:4 sparsity is an "
                         "inference format); allowed for train: none")
    if vals.get("optimizer", "adam") not in training.OPTIMIZERS:
        raise ValueError(f"scenario.optimizer = {vals['optimizer']!r}; allowed: "
                         f"{', '.join(training.OPTIMIZERS)}")
    # null: the fastest that fits
    if vals.get("zero") is not None:
        vals["zero"] = _check_int("zero", vals["zero"])
    if vals.get("interleave") is not None:
        vals["interleave"] = _check_int("interleave", vals["interleave"])
    if vals.get("recompute") is not None and vals["recompute"] not in RECOMPUTE_MODES:
        raise ValueError(f"scenario.recompute = {vals['recompute']!r}; allowed: "
                         f"{', '.join(RECOMPUTE_MODES)} or null (the fastest that fits)")


def _check_speculation(family: str, vals: dict) -> None:
    draft = vals.get("draft")
    if draft is None:
        return
    if family != "llm" or vals["phase"] not in ("generate", "decode"):
        raise ValueError("scenario.draft: speculative decoding applies to the generate and "
                         f"decode phases of a decoder LLM, not {family} {vals['phase']}")
    if not isinstance(draft, str):
        ratio = draft if isinstance(draft, (int, float)) and not isinstance(draft, bool) else -1
        if not 0 < ratio < 1:
            raise ValueError("scenario.draft must be a workload name or a draft-to-target "
                             f"size ratio in (0, 1), got {draft!r}")
        vals["draft"] = float(ratio)
    vals["spec_tokens"] = _check_int("spec_tokens", vals.get("spec_tokens", 4))
    a = vals.get("acceptance", 0.7)
    if not (isinstance(a, (int, float)) and not isinstance(a, bool) and 0 <= a < 1):
        raise ValueError(f"scenario.acceptance must be a probability in [0, 1), got {a!r}")
    vals["acceptance"] = float(a)


def expected_tokens(acceptance: float, spec_tokens: int) -> float:
    """Tokens one verification step yields on average: (1 - a^(k+1)) / (1 - a) (Leviathan et
    al., ICML 2023, equation 1): the accepted prefix of the k proposals plus the target's own
    next token."""
    return (1.0 - acceptance ** (spec_tokens + 1)) / (1.0 - acceptance)


def draft_config(cfg: TransformerConfig, ratio: float) -> TransformerConfig:
    """A draft of ``ratio`` times the target's layers at the target's width and vocabulary:
    a same-family draft reduced in depth, as layer-skipping self-speculation (Zhang et al.,
    "Draft & Verify", ACL 2024) drafts with a subset of the target's layers."""
    layers = max(1, round(cfg.n_layers * ratio))
    pattern = cfg.layer_pattern and cfg.layer_pattern[:layers]  # a hybrid's first layers
    return dataclasses.replace(cfg, name=f"{cfg.name}-draft{ratio:g}", n_layers=layers,
                               layer_pattern=pattern)


def _speculative(cfg: TransformerConfig, draft: TransformerConfig, sc: Scenario,
                 ctx: float, generated: float) -> tuple:
    """The passes that generate ``generated`` tokens by speculative decoding: per step the
    draft runs ``spec_tokens`` decode passes and the target verifies spec_tokens + 1 tokens
    in one pass; a step yields expected_tokens."""
    k = sc.spec_tokens
    steps = generated / expected_tokens(sc.acceptance, k)
    return (llm.decode_pass(cfg, ctx, steps, tokens=k + 1, name="verify"),
            llm.decode_pass(draft, ctx, k * steps, name="draft"))


def build_plan(cfg: TransformerConfig | CNNConfig, sc: Scenario,
               draft: TransformerConfig | None = None) -> Plan:
    """The passes, capacity needs and request size of ``sc`` on workload ``cfg``; ``draft``:
    the draft workload where ``sc.draft`` names one (a size ratio builds its own)."""
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
    if isinstance(sc.draft, float):
        draft = draft_config(cfg, sc.draft)
    elif sc.draft is not None and draft is None:
        raise ValueError(f"scenario.draft = {sc.draft!r}: the draft workload was not loaded")
    speculate = sc.draft is not None and family == "llm"
    models = (cfg, draft) if speculate else (cfg,)
    kv = sum(llm.kv_elems_per_token(m) for m in models) if family == "llm" else 0.0
    common = dict(param_elems=sum(llm.param_count(m)[0] for m in models),
                  kv_elems_per_token=kv, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                  n_kv_heads=llm.kv_heads(cfg), moe_experts=cfg.n_experts, moe_top_k=cfg.top_k,
                  state_bytes_per_seq=sum(llm.state_bytes_per_seq(m) for m in models))
    if family == "encoder":
        return Plan(cfg.name, family, sc.phase, (llm.encode_pass(cfg, sc.prompt_len),), 1.0,
                    kv_tokens=0.0, **common)
    # Speculation holds up to spec_tokens unverified tokens in the KV cache.
    extra = sc.spec_tokens if speculate else 0
    if sc.phase == "train":
        passes = (training.forward_pass(cfg, sc.prompt_len),
                  training.backward_pass(cfg, sc.prompt_len))
        return Plan(cfg.name, family, sc.phase, passes, float(sc.prompt_len), kv_tokens=0.0,
                    stored_act_elems=training.stored_activations(cfg, sc.prompt_len),
                    **{**common, "kv_elems_per_token": 0.0, "state_bytes_per_seq": 0.0})
    if sc.phase == "prefill":
        passes = (llm.prefill_pass(cfg, sc.prompt_len),)
        items = kv_tokens = sc.prompt_len
    elif sc.phase == "decode":
        ctx = sc.decode_context
        passes, items, kv_tokens = (llm.decode_pass(cfg, ctx),), 1.0, ctx + 1 + extra
        if speculate:  # one token's share of the steps that yield it
            passes = _speculative(cfg, draft, sc, ctx, 1.0)
    else:
        # Mean TPOT: the KV term is linear in context, so the step at the middle context is
        # the mean step; under static shapes every step spans the whole allocated cache.
        mid = sc.prompt_len + (sc.gen_len if sc.static_kv else sc.gen_len / 2.0)
        prefill = llm.prefill_pass(cfg, sc.prompt_len)
        if speculate:
            # The draft prefills the prompt too. Verification steps carry no prompt chunks,
            # so a speculating server runs as a static batch (no mixed pass).
            draft_prefill = dataclasses.replace(llm.prefill_pass(draft, sc.prompt_len),
                                                name="draft_prefill")
            passes = (prefill, draft_prefill, *_speculative(cfg, draft, sc, mid, sc.gen_len))
        else:
            passes = (prefill, llm.decode_pass(cfg, mid, sc.gen_len))
            if sc.batching == "continuous":
                passes += (llm.mixed_pass(cfg, sc.prompt_len, sc.gen_len),)
        items, kv_tokens = sc.gen_len, sc.prompt_len + sc.gen_len + extra
    return Plan(cfg.name, family, sc.phase, _state_at_kv_dtype(passes, cfg, sc),
                float(items), kv_tokens=llm.cached_tokens(cfg, float(kv_tokens)), **common)


def _state_at_kv_dtype(passes: tuple[Pass, ...], cfg: TransformerConfig,
                       sc: Scenario) -> tuple[Pass, ...]:
    """The passes with their Mamba-2 state traffic in kv_cache-sized elements: the evaluator
    prices all cache traffic at the kv_cache dtype, and a state at ssm_state_dtype moves
    state bits / kv bits as many (a draft's state too, at the target's dtype). Cache
    traffic outside attention operators is state."""
    if not llm.layer_counts(cfg)[2]:
        return passes
    scale = STATE_DTYPES[cfg.ssm_state_dtype] / parse_dtype(sc.kv_cache, "kv_cache").bits
    return tuple(dataclasses.replace(p, ops=_scaled_state(p.ops, scale)) for p in passes)


def _scaled_state(ops, scale: float):
    """``ops`` (an OpTable) with the cache traffic of non-attention operators times scale."""
    state = ops.kind != ATTENTION
    return dataclasses.replace(
        ops, kv_read_elems=np.where(state, ops.kv_read_elems * scale, ops.kv_read_elems),
        kv_write_elems=np.where(state, ops.kv_write_elems * scale, ops.kv_write_elems))
