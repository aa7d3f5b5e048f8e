"""Schemas of conf/workload: transformer LLMs/encoders and CNNs from layer lists. Each
field's range and choices sit in its metadata (read by dse.inputs); ``transformer_rules``
holds the cross-field rules (CNN layer lists: workloads.cnn)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

__all__ = ["TransformerConfig", "CNNConfig", "transformer_rules", "MAX_TOKENS", "LAYER_KINDS",
           "STATE_DTYPES"]

MAX_TOKENS = 10_000_000  # context, prompt and generation lengths: 10M tokens
# One character per layer of a hybrid, as Nemotron-H's hybrid_override_pattern (HF
# nvidia/Nemotron-H-8B-Base-8K config.json): a Mamba-2 mixer, self-attention, or an MLP.
LAYER_KINDS = {"M": "mamba2", "*": "attention", "-": "mlp"}
# Bits per element of the Mamba-2 state a server keeps per sequence.
STATE_DTYPES = {"fp32": 32.0, "bf16": 16.0, "fp16": 16.0}


def _whole(low: int, high: float, unit: str = "") -> dict:
    return dict(low=low, high=high, **({"unit": unit} if unit else {}))


@dataclass
class TransformerConfig:
    """A decoder LLM or a bidirectional encoder (BERT). Dense or mixture-of-experts."""

    name: str = MISSING
    family: str = field(default="transformer", metadata=dict(choices=("transformer",)))
    # decoder (causal, KV cache) | encoder (bidirectional)
    kind: str = field(default="decoder", metadata=dict(choices=("decoder", "encoder")))
    n_layers: int = field(default=MISSING, metadata=_whole(1, 10_000, "layers"))
    d_model: int = field(default=MISSING, metadata=_whole(1, 1_000_000))
    n_heads: int = field(default=MISSING, metadata=_whole(1, 100_000, "heads"))
    # grouped-query attention; null = n_heads
    n_kv_heads: Optional[int] = field(default=None, metadata=_whole(1, 100_000, "heads"))
    head_dim: Optional[int] = field(default=None, metadata=_whole(1, 100_000))  # null: d/heads
    d_ff: int = field(default=MISSING, metadata=_whole(0, 10_000_000))  # 0: no MLP layer
    # gated (SwiGLU, 3 matrices) | plain (GELU, 2 matrices)
    mlp: str = field(default="gated", metadata=dict(choices=("gated", "plain")))
    # rmsnorm (scale only) | layernorm (scale and shift)
    norm: str = field(default="rmsnorm", metadata=dict(choices=("rmsnorm", "layernorm")))
    norms_per_layer: int = field(default=2, metadata=_whole(0, 8))  # GPT-J's parallel block: 1
    vocab: int = field(default=MISSING, metadata=_whole(1, 100_000_000, "tokens"))
    # learned position embeddings (GPT-2, BERT); 0 = rotary
    max_positions: int = field(default=0, metadata=_whole(0, MAX_TOKENS, "tokens"))
    type_vocab: int = field(default=0, metadata=_whole(0, 1_000_000))  # BERT token types
    tied_embeddings: bool = False
    bias: bool = False  # biases on projections (GPT-2, BERT, GPT-J's lm_head only: see below)
    lm_head_bias: bool = False
    pooler: bool = False  # BERT pooler (d x d + d)
    n_experts: int = field(default=0, metadata=_whole(0, 100_000, "experts"))  # 0 = dense MLP
    top_k: int = field(default=0, metadata=_whole(0, 100_000, "experts"))
    max_context: int = field(default=4096, metadata=_whole(1, MAX_TOKENS, "tokens"))
    # Sliding-window attention (Mistral 7B): each query attends to the last sliding_window
    # tokens and the KV cache is a rolling buffer of that many; null = full attention.
    sliding_window: Optional[int] = field(default=None, metadata=_whole(1, MAX_TOKENS, "tokens"))
    # Multi-head Latent Attention (DeepSeek-V2, arXiv 2405.04434 section 2.1): keys and values
    # are up-projected from one latent of kv_lora_rank (d_c) elements per token, shared by all
    # heads, beside a RoPE key of qk_rope_head_dim (d_h^R); the KV cache holds only those two.
    # null = standard attention (n_kv_heads, head_dim).
    kv_lora_rank: Optional[int] = field(default=None, metadata=_whole(1, 1_000_000))
    # queries through a latent (DeepSeek-V2: 1536); null: not
    q_lora_rank: Optional[int] = field(default=None, metadata=_whole(1, 1_000_000))
    # per-head query/key dims that carry RoPE and that do not (DeepSeek-V2: 64 and 128)
    qk_rope_head_dim: int = field(default=0, metadata=_whole(0, 100_000))
    qk_nope_head_dim: int = field(default=0, metadata=_whole(0, 100_000))
    v_head_dim: int = field(default=0, metadata=_whole(0, 100_000))  # DeepSeek-V2: 128
    # DeepSeekMoE (arXiv 2401.06066; 2405.04434 section 2.2): n_shared_experts always run beside
    # the top_k routed ones, experts are moe_d_ff wide (fine-grained; null = d_ff), and the
    # first first_dense_layers layers keep a dense MLP of d_ff (config.json first_k_dense_replace).
    n_shared_experts: int = field(default=0, metadata=_whole(0, 100_000, "experts"))
    moe_d_ff: Optional[int] = field(default=None, metadata=_whole(1, 10_000_000))
    first_dense_layers: int = field(default=0, metadata=_whole(0, 10_000, "layers"))
    # Hybrid state-space models (Mamba-2: Dao & Gu 2024, arXiv 2405.21060): one character of
    # LAYER_KINDS per layer, each layer one pre-norm and one mixer (attention, MLP or Mamba-2),
    # as Nemotron-H's hybrid_override_pattern. null: every layer is attention + MLP.
    layer_pattern: Optional[str] = None
    # The Mamba-2 mixer (mamba_ssm Mamba2; HF Nemotron-H config mamba_num_heads,
    # mamba_head_dim, ssm_state_size, n_groups, conv_kernel, chunk_size): ssm_heads heads of
    # ssm_head_dim channels (d_inner = heads x head_dim), a state of ssm_state (N) per
    # channel, B and C shared by ssm_groups groups, a causal conv of ssm_conv taps, the SSD
    # scan in chunks of ssm_chunk tokens. Defaults: mamba_ssm Mamba2's.
    ssm_heads: int = field(default=0, metadata=_whole(0, 100_000, "heads"))
    ssm_head_dim: int = field(default=64, metadata=_whole(1, 100_000))
    ssm_state: int = field(default=128, metadata=_whole(1, 100_000))
    ssm_groups: int = field(default=1, metadata=_whole(1, 100_000))
    ssm_conv: int = field(default=4, metadata=_whole(1, 64))
    ssm_chunk: int = field(default=256, metadata=_whole(1, 100_000, "tokens"))
    # The state's dtype: mamba_ssm keeps it at the weights' dtype (Mamba2.
    # allocate_inference_cache); vLLM serves it at the model dtype unless
    # mamba_ssm_cache_dtype = float32 (vllm model_executor/layers/mamba/mamba_utils.py).
    ssm_state_dtype: str = field(default="bf16", metadata=dict(choices=tuple(STATE_DTYPES)))
    source: str = ""


@dataclass
class CNNConfig:
    """A CNN generated from its layer list; ``layers`` is arch-specific (workloads/cnn.py
    LAYER_SCHEMAS)."""

    name: str = MISSING
    family: str = field(default="cnn", metadata=dict(choices=("cnn",)))
    arch: str = field(default=MISSING, metadata=dict(choices=("resnet", "mobilenetv2", "vgg")))
    input_size: int = field(default=224, metadata=_whole(1, 16_384, "pixels"))
    in_channels: int = field(default=3, metadata=_whole(1, 100_000, "channels"))
    num_classes: int = field(default=1000, metadata=_whole(1, 1_000_000, "classes"))
    layers: Any = MISSING
    # Batch norm, activation and residual add run as the convolution's epilogue (TensorRT
    # "Layer Fusion", XLA); false: each is a kernel of its own with its own memory round trip
    # (an eager framework).
    fuse_epilogues: bool = True
    source: str = ""


# Fields that mean something only beside another: MLA's beside kv_lora_rank, DeepSeekMoE's
# beside n_experts.
_NEEDS = {"kv_lora_rank": ("q_lora_rank", "qk_nope_head_dim", "v_head_dim", "qk_rope_head_dim"),
          "n_experts": ("n_shared_experts", "moe_d_ff", "first_dense_layers"),
          "layer_pattern": ("ssm_heads",)}


def transformer_rules(cfg: TransformerConfig, where: str = "workload") -> None:
    """Cross-field rules of a transformer (ranges are in the field metadata)."""
    _attention_rules(cfg, where)
    if cfg.n_experts and not 1 <= cfg.top_k <= cfg.n_experts:
        raise ValueError(f"{where}.top_k = {cfg.top_k}: allowed: a whole number in "
                         f"[1, {cfg.n_experts}] (n_experts)")
    if not cfg.n_experts and cfg.top_k:
        raise ValueError(f"{where}.top_k = {cfg.top_k}: a dense model (n_experts = 0) routes "
                         f"to no experts; allowed: 0")
    window = cfg.sliding_window
    if window is not None and not (cfg.kind == "decoder" and window <= cfg.max_context):
        raise ValueError(f"{where}.sliding_window = {window}: allowed: a whole number in "
                         f"[1, {cfg.max_context}] (max_context) on a decoder, or null")
    for name in ("qk_nope_head_dim", "v_head_dim"):
        if cfg.kv_lora_rank is not None and getattr(cfg, name) < 1:
            raise ValueError(f"{where}.{name} = {getattr(cfg, name)}: allowed with "
                             f"kv_lora_rank (MLA): a whole number >= 1")
    for base, names in _NEEDS.items():
        for name in names:
            if getattr(cfg, name) and not getattr(cfg, base):
                raise ValueError(f"{where}.{name} applies only where {where}.{base} is set; "
                                 f"got {getattr(cfg, name)} with {base} = {getattr(cfg, base)}")
    if cfg.first_dense_layers >= cfg.n_layers:
        raise ValueError(f"{where}.first_dense_layers = {cfg.first_dense_layers}: allowed: "
                         f"[0, {cfg.n_layers - 1}] (n_layers - 1)")
    if cfg.layer_pattern is not None:
        _pattern_rules(cfg, where)
    elif cfg.d_ff < 1:
        raise ValueError(f"{where}.d_ff = {cfg.d_ff}: every layer has an MLP; allowed: a "
                         f"whole number >= 1 (0 only with a layer_pattern without MLP layers)")


def _pattern_rules(cfg: TransformerConfig, where: str) -> None:
    """A hybrid's pattern: one known layer kind per layer, decoder only, dense; a Mamba-2
    layer needs its heads, which split into the B and C groups; the MLP layers need d_ff;
    without attention layers n_heads names the Mamba-2 heads (what tensor parallelism
    splits); one norm per layer."""
    pattern = cfg.layer_pattern
    bad = sorted(set(pattern) - set(LAYER_KINDS))
    if bad or len(pattern) != cfg.n_layers:
        raise ValueError(f"{where}.layer_pattern = {pattern!r}: allowed: {cfg.n_layers} "
                         f"(n_layers) characters of {''.join(LAYER_KINDS)} (Mamba-2, "
                         f"attention, MLP)")
    checks = (
        ("kind", cfg.kind, cfg.kind == "decoder", "decoder"),
        ("n_experts", cfg.n_experts, cfg.n_experts == 0, "0 (MoE layers are not in "
         "layer_pattern)"),
        ("norms_per_layer", cfg.norms_per_layer, cfg.norms_per_layer == 1,
         "1 (each pattern layer has one pre-norm)"),
        ("ssm_heads", cfg.ssm_heads, ("M" in pattern) == (cfg.ssm_heads > 0)
         and cfg.ssm_heads % cfg.ssm_groups == 0,
         f"a multiple of ssm_groups ({cfg.ssm_groups}), >= 1 exactly where the pattern has "
         f"M layers"),
        ("d_ff", cfg.d_ff, ("-" in pattern) == (cfg.d_ff > 0),
         ">= 1 exactly where the pattern has MLP (-) layers, else 0"),
        ("n_heads", cfg.n_heads, "*" in pattern or cfg.n_heads == cfg.ssm_heads,
         f"ssm_heads ({cfg.ssm_heads}) where the pattern has no attention (*) layer"),
    )
    for name, value, ok, allowed in checks:
        if not ok:
            raise ValueError(f"{where}.{name} = {value!r} with a layer_pattern; allowed: "
                             f"{allowed}")


def _attention_rules(cfg: TransformerConfig, where: str) -> None:
    """Heads: kv heads divide the heads (each group shares one); d_model splits into heads."""
    if cfg.n_kv_heads is not None and cfg.n_heads % cfg.n_kv_heads:
        raise ValueError(f"{where}.n_kv_heads = {cfg.n_kv_heads}: allowed: a divisor of "
                         f"n_heads ({cfg.n_heads})")
    if cfg.head_dim is None and cfg.kv_lora_rank is None and cfg.d_model % cfg.n_heads:
        raise ValueError(f"{where}.n_heads = {cfg.n_heads}: d_model ({cfg.d_model}) must split "
                         f"into n_heads equal heads, or give head_dim")
