"""Schemas of conf/workload: transformer LLMs/encoders and CNNs from layer lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING

__all__ = ["TransformerConfig", "CNNConfig"]


@dataclass
class TransformerConfig:
    """A decoder LLM or a bidirectional encoder (BERT). Dense or mixture-of-experts."""

    name: str = MISSING
    family: str = "transformer"
    kind: str = "decoder"  # decoder (causal, KV cache) | encoder (bidirectional)
    n_layers: int = MISSING
    d_model: int = MISSING
    n_heads: int = MISSING
    n_kv_heads: Optional[int] = None  # grouped-query attention; null = n_heads
    head_dim: Optional[int] = None  # null = d_model / n_heads
    d_ff: int = MISSING
    mlp: str = "gated"  # gated (SwiGLU, 3 matrices) | plain (GELU, 2 matrices)
    norm: str = "rmsnorm"  # rmsnorm (scale only) | layernorm (scale and shift)
    norms_per_layer: int = 2  # GPT-J's parallel block has 1
    vocab: int = MISSING
    max_positions: int = 0  # learned position embeddings (GPT-2, BERT); 0 = rotary
    type_vocab: int = 0  # BERT token-type embeddings
    tied_embeddings: bool = False
    bias: bool = False  # biases on projections (GPT-2, BERT, GPT-J's lm_head only: see below)
    lm_head_bias: bool = False
    pooler: bool = False  # BERT pooler (d x d + d)
    n_experts: int = 0  # 0 = dense MLP
    top_k: int = 0
    max_context: int = 4096
    # Sliding-window attention (Mistral 7B): each query attends to the last sliding_window
    # tokens and the KV cache is a rolling buffer of that many; null = full attention.
    sliding_window: Optional[int] = None
    # Multi-head Latent Attention (DeepSeek-V2, arXiv 2405.04434 section 2.1): keys and values
    # are up-projected from one latent of kv_lora_rank (d_c) elements per token, shared by all
    # heads, beside a RoPE key of qk_rope_head_dim (d_h^R); the KV cache holds only those two.
    # null = standard attention (n_kv_heads, head_dim).
    kv_lora_rank: Optional[int] = None
    q_lora_rank: Optional[int] = None  # queries through a latent (DeepSeek-V2: 1536); null: not
    qk_rope_head_dim: int = 0  # per-head query/key dims that carry RoPE ...
    qk_nope_head_dim: int = 0  # ... and that do not (DeepSeek-V2: 64 and 128)
    v_head_dim: int = 0  # per-head value dim (DeepSeek-V2: 128)
    # DeepSeekMoE (arXiv 2401.06066; 2405.04434 section 2.2): n_shared_experts always run beside
    # the top_k routed ones, experts are moe_d_ff wide (fine-grained; null = d_ff), and the
    # first first_dense_layers layers keep a dense MLP of d_ff (config.json first_k_dense_replace).
    n_shared_experts: int = 0
    moe_d_ff: Optional[int] = None
    first_dense_layers: int = 0
    source: str = ""


@dataclass
class CNNConfig:
    """A CNN generated from its layer list; ``layers`` is arch-specific (workloads/cnn.py)."""

    name: str = MISSING
    family: str = "cnn"
    arch: str = MISSING  # resnet | mobilenetv2 | vgg
    input_size: int = 224
    in_channels: int = 3
    num_classes: int = 1000
    layers: Any = MISSING
    source: str = ""
