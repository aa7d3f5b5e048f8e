"""Transformer operator tables: prefill, decode and encode passes (dense, GQA, MoE).

Shapes follow the Megatron layout: fused QKV projection, attention (flash-style, fused score,
softmax and value product), output projection, gated or plain MLP. One row per operator kind,
``count = n_layers``.
"""

from __future__ import annotations

import dataclasses

from workloads.config import TransformerConfig
from workloads.ops import ATTENTION, ELEMENTWISE, MATMUL, REDUCTION, Op, OpTable, Pass

__all__ = ["param_count", "head_dim", "kv_heads", "kv_elems_per_token", "cached_tokens",
           "prompt_keys", "prefill_pass",
           "decode_pass", "mixed_pass", "encode_pass"]

# FLOP per element of a norm (mean, variance, scale, shift) and of softmax (max, exp, sum,
# divide): small constants, counted so vector units are not free.
_NORM_FLOP_PER_ELEM = 5.0
_SOFTMAX_FLOP_PER_ELEM = 5.0


def head_dim(cfg: TransformerConfig) -> int:
    return cfg.head_dim or cfg.d_model // cfg.n_heads


def kv_heads(cfg: TransformerConfig) -> int:
    return cfg.n_kv_heads or cfg.n_heads


def _qkv_width(cfg: TransformerConfig) -> int:
    return (cfg.n_heads + 2 * kv_heads(cfg)) * head_dim(cfg)


def _mlp_matrices(cfg: TransformerConfig) -> int:
    return 3 if cfg.mlp == "gated" else 2


def _layer_params(cfg: TransformerConfig, experts: int) -> float:
    d, hd = cfg.d_model, head_dim(cfg)
    attn = d * _qkv_width(cfg) + cfg.n_heads * hd * d
    mlp = _mlp_matrices(cfg) * d * cfg.d_ff
    norm = cfg.norms_per_layer * d * (2 if cfg.norm == "layernorm" else 1)
    bias = (_qkv_width(cfg) + d + (_mlp_matrices(cfg) - 1) * cfg.d_ff + d) if cfg.bias else 0
    router = d * cfg.n_experts if cfg.n_experts else 0
    return attn + experts * mlp + norm + bias + router


def param_count(cfg: TransformerConfig) -> tuple[float, float]:
    """(total, active per token) parameters, embeddings and head included.

    Active counts ``top_k`` experts per MoE layer (Mixtral-8x7B: 46.7e9 total, 12.9e9 active).
    """
    d = cfg.d_model
    embed = (cfg.vocab + cfg.max_positions + cfg.type_vocab) * d
    final_norm = d * (2 if cfg.norm == "layernorm" else 1) if cfg.kind == "decoder" else 0
    head = 0 if cfg.tied_embeddings or cfg.kind == "encoder" else cfg.vocab * d
    head += cfg.vocab if cfg.lm_head_bias else 0
    pooler = d * d + d if cfg.pooler else 0
    # BERT's embedding LayerNorm stands where a decoder has its final norm.
    emb_norm = 2 * d if cfg.kind == "encoder" else 0
    fixed = embed + final_norm + head + pooler + emb_norm
    total_experts = cfg.n_experts or 1
    active_experts = cfg.top_k if cfg.n_experts else 1
    total = fixed + cfg.n_layers * _layer_params(cfg, total_experts)
    active = fixed + cfg.n_layers * _layer_params(cfg, active_experts)
    return float(total), float(active)


def kv_elems_per_token(cfg: TransformerConfig) -> float:
    """K and V elements of one token over all layers: 2 * n_layers * n_kv_heads * head_dim."""
    return 2.0 * cfg.n_layers * kv_heads(cfg) * head_dim(cfg)


def cached_tokens(cfg: TransformerConfig, tokens: float) -> float:
    """Tokens whose K and V a query reads and the cache holds: all of them, or the last
    sliding_window (a rolling buffer)."""
    return tokens if cfg.sliding_window is None else min(tokens, float(cfg.sliding_window))


def prompt_keys(cfg: TransformerConfig, prompt_len: float) -> float:
    """Mean keys per query of a causal prompt: token i attends to min(i, window) keys, so
    the mean is (s + 1) / 2 up to the window and (w (w + 1) / 2 + (s - w) w) / s past it."""
    s, w = prompt_len, cfg.sliding_window
    if w is None or s <= w:
        return (s + 1) / 2.0
    return (w * (w + 1) / 2.0 + (s - w) * w) / s


def _norm(name: str, cfg: TransformerConfig, tokens: float, count: float) -> Op:
    d = cfg.d_model
    return Op(name, REDUCTION, count=count, flop=_NORM_FLOP_PER_ELEM * tokens * d,
              act_in_elems=tokens * d, act_out_elems=tokens * d, reduce_len=d, tp_split=False)


def _matmul(name: str, tokens: float, k: float, n: float, count: float, *,
            comm: bool = False, moe_k: int = 0, weight_copies: int = 1, d: float = 0) -> Op:
    """A weight matmul of ``tokens`` rows; an MoE expert matmul reads ``weight_copies`` experts'
    weights and each token runs ``moe_k`` of them."""
    runs = moe_k or 1
    return Op(name, MATMUL, count=count, flop=2.0 * tokens * k * n * runs, m=tokens, k=k, n=n,
              weight_elems=k * n * weight_copies, act_in_elems=tokens * k * runs,
              act_out_elems=tokens * n * runs, comm_elems=tokens * d if comm else 0.0,
              moe=bool(moe_k), sparse=True)


def _attention(cfg: TransformerConfig, q_tokens: float, kv_len: float, kv_read: float,
               kv_write: float, count: float) -> Op:
    """Fused attention for ``q_tokens`` queries over ``kv_len`` keys (average, causal-aware)."""
    hd, h, kvh = head_dim(cfg), cfg.n_heads, kv_heads(cfg)
    return Op("attention", ATTENTION, count=count,
              flop=(4.0 * hd + _SOFTMAX_FLOP_PER_ELEM) * h * q_tokens * kv_len,
              m=q_tokens * h / kvh, k=hd, n=kv_len,
              act_in_elems=q_tokens * _qkv_width(cfg), act_out_elems=q_tokens * h * hd,
              kv_read_elems=kv_read, kv_write_elems=kv_write,
              score_elems=h * q_tokens * kv_len, reduce_len=kv_len)


def _layer_ops(cfg: TransformerConfig, tokens: float, attention: Op) -> list[Op]:
    d, L = cfg.d_model, cfg.n_layers
    experts, top_k = cfg.n_experts, cfg.top_k
    ff_n = cfg.d_ff * (_mlp_matrices(cfg) - 1)
    ops = [
        _norm("attn_norm", cfg, tokens, L),
        _matmul("qkv", tokens, d, _qkv_width(cfg), L),
        attention,
        _matmul("attn_out", tokens, cfg.n_heads * head_dim(cfg), d, L, comm=True, d=d),
    ]
    if cfg.norms_per_layer > 1:
        ops.append(_norm("mlp_norm", cfg, tokens, L))
    if experts:
        ops.append(Op("router", MATMUL, count=L, flop=2.0 * tokens * d * experts, m=tokens,
                      k=d, n=experts, weight_elems=d * experts, act_in_elems=tokens * d,
                      act_out_elems=tokens * experts))
    ops.append(_matmul("mlp_up", tokens, d, ff_n, L, moe_k=top_k, weight_copies=experts or 1))
    ops.append(_matmul("mlp_down", tokens, cfg.d_ff, d, L, comm=True, moe_k=top_k,
                       weight_copies=experts or 1, d=d))
    return ops


def _embed(cfg: TransformerConfig, tokens: float) -> Op:
    """Embedding gather: reads one table row per token (bytes counted as activations)."""
    d = cfg.d_model
    return Op("embed", ELEMENTWISE, act_in_elems=tokens * d, act_out_elems=tokens * d,
              tp_split=False)


def _head(cfg: TransformerConfig, tokens: float, logits: float = 1.0) -> list[Op]:
    """Final norm and LM head over ``logits`` positions: to generate, only the last one;
    to verify speculated tokens, each of them."""
    return [_norm("final_norm", cfg, tokens, 1),
            _matmul("lm_head", logits, cfg.d_model, cfg.vocab, 1)]


def _peak_act(ops: list[Op], tokens: float, d: float) -> float:
    """Live activations per item: the largest operator's inputs + outputs + the residual."""
    return max(op.act_in_elems + op.act_out_elems for op in ops) + tokens * d


def _pass(name: str, ops: list[Op], tokens: float, cfg: TransformerConfig, repeats: float) -> Pass:
    return Pass(name, OpTable.from_ops(ops), repeats, _peak_act(ops, tokens, cfg.d_model),
                p2p_elems=tokens * cfg.d_model)


def prefill_pass(cfg: TransformerConfig, prompt_len: int) -> Pass:
    """Process a prompt of ``prompt_len`` tokens causally and write its KV cache."""
    kv_tok = 2.0 * kv_heads(cfg) * head_dim(cfg)
    attn = _attention(cfg, prompt_len, prompt_keys(cfg, prompt_len), 0.0, prompt_len * kv_tok,
                      cfg.n_layers)
    ops = [_embed(cfg, prompt_len), *_layer_ops(cfg, prompt_len, attn), *_head(cfg, prompt_len)]
    return _pass("prefill", ops, prompt_len, cfg, 1.0)


def decode_pass(cfg: TransformerConfig, context_len: float, repeats: float = 1.0,
                tokens: int = 1, name: str = "decode") -> Pass:
    """One step at ``context_len`` tokens of context: a matrix-vector product per weight
    matrix (a thin matrix product for the ``tokens`` a speculative verification checks at
    once, each with its logits); K and V of the whole context are read once."""
    kv_tok = 2.0 * kv_heads(cfg) * head_dim(cfg)
    keys = cached_tokens(cfg, context_len)
    attn = _attention(cfg, tokens, keys, keys * kv_tok, tokens * kv_tok, cfg.n_layers)
    ops = [_embed(cfg, tokens), *_layer_ops(cfg, tokens, attn), *_head(cfg, tokens, tokens)]
    return _pass(name, ops, tokens, cfg, repeats)


def mixed_pass(cfg: TransformerConfig, prompt_len: int, gen_len: int) -> Pass:
    """One step of a continuously batched server with chunked prefill (vLLM V1, TensorRT-LLM
    in-flight batching; Agrawal et al., Sarathi-Serve, OSDI 2024): every sequence advances by
    one token and, in steady state, the step also carries prompt_len / gen_len prompt tokens
    per sequence (each request brings its prompt once per gen_len steps). The weights are read
    once for both, so the prompts' compute hides under the decode's weight stream.

    Prompt chunks attend to their own prompt's keys (mean (prompt_len + 1) / 2, as in
    prefill); the decode token attends to the mid-generation context."""
    kv_tok = 2.0 * kv_heads(cfg) * head_dim(cfg)
    chunk = prompt_len / gen_len
    tokens = 1.0 + chunk
    keys = cached_tokens(cfg, prompt_len + gen_len / 2.0)
    decode = _attention(cfg, 1.0, keys, keys * kv_tok, kv_tok, cfg.n_layers)
    prompt = _attention(cfg, chunk, prompt_keys(cfg, prompt_len), 0.0, chunk * kv_tok,
                        cfg.n_layers)
    layer = _layer_ops(cfg, tokens, decode)
    i = next(k for k, op in enumerate(layer) if op.kind == ATTENTION)
    prompt = dataclasses.replace(prompt, name="attention_prompt")
    ops = [_embed(cfg, tokens), *layer[:i + 1], prompt, *layer[i + 1:], *_head(cfg, 1.0)]
    return _pass("mixed", ops, tokens, cfg, gen_len)


def encode_pass(cfg: TransformerConfig, seq_len: int) -> Pass:
    """Bidirectional encoder over ``seq_len`` tokens (BERT): no KV cache, no LM head."""
    attn = _attention(cfg, seq_len, float(seq_len), 0.0, 0.0, cfg.n_layers)
    ops = [_embed(cfg, seq_len), *_layer_ops(cfg, seq_len, attn)]
    return _pass("encode", ops, seq_len, cfg, 1.0)
