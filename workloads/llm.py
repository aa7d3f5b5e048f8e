"""Transformer operator tables: prefill, decode and encode passes (dense, GQA, MLA, MoE).

Shapes follow the Megatron layout: fused QKV projection, attention (flash-style, fused score,
softmax and value product), output projection, gated or plain MLP. One row per operator kind,
``count = n_layers`` (or the layers that have it: DeepSeek's leading dense layers).
Multi-head Latent Attention (DeepSeek-V2, arXiv 2405.04434) replaces the QKV projection by a
query projection and a shared latent; see ``_mla_block``. A hybrid (``layer_pattern``) has one
mixer per layer, attention, MLP or Mamba-2 (Dao & Gu 2024, arXiv 2405.21060): a fixed state
per sequence instead of a KV cache; see ``_mamba_ops``.
"""

from __future__ import annotations

import dataclasses

from workloads.config import STATE_DTYPES, TransformerConfig
from workloads.ops import (ATTENTION, COMBINE, DISPATCH, ELEMENTWISE, MATMUL, REDUCTION, Op,
                           OpTable, Pass)

__all__ = ["param_count", "head_dim", "kv_heads", "kv_elems_per_token", "cached_tokens",
           "prompt_keys", "prefill_pass",
           "decode_pass", "mixed_pass", "encode_pass", "layer_counts", "state_elems_per_seq",
           "state_bytes_per_seq"]

# FLOP per element of a norm (mean, variance, scale, shift) and of softmax (max, exp, sum,
# divide): small constants, counted so vector units are not free.
_NORM_FLOP_PER_ELEM = 5.0
_SOFTMAX_FLOP_PER_ELEM = 5.0
# FLOP per state element of one recurrent Mamba-2 step, h' = exp(dt A) h + dt x B^T and
# y = C h' (Dao & Gu 2024, eq. 1; mamba_ssm selective_state_update): the decay multiply, the
# outer product's multiply-add, the read-out's multiply-add.
_STATE_STEP_FLOP_PER_ELEM = 5.0


def head_dim(cfg: TransformerConfig) -> int:
    return cfg.head_dim or cfg.d_model // cfg.n_heads


def kv_heads(cfg: TransformerConfig) -> int:
    """KV heads that tensor parallelism can split the cache by. MLA's latent is shared by all
    heads: one KV head, replicated on every chip (as MQA's)."""
    if _is_mla(cfg):
        return 1
    return cfg.n_kv_heads or cfg.n_heads


def _is_mla(cfg: TransformerConfig) -> bool:
    return cfg.kv_lora_rank is not None


def _qkv_width(cfg: TransformerConfig) -> int:
    return (cfg.n_heads + 2 * kv_heads(cfg)) * head_dim(cfg)


def _mlp_matrices(cfg: TransformerConfig) -> int:
    return 3 if cfg.mlp == "gated" else 2


def _attn_params(cfg: TransformerConfig) -> int:
    """Attention projections of one layer (MLA: its norms of the latents too)."""
    d, h = cfg.d_model, cfg.n_heads
    if not _is_mla(cfg):
        return d * _qkv_width(cfg) + h * head_dim(cfg) * d
    # q: d x h (nope + rope), or q_a: d x d_c', its norm d_c', q_b: d_c' x h (nope + rope);
    # kv_a: d x (d_c + d_h^R), its norm d_c, kv_b: d_c x h (nope + v); o: h v x d
    # (huggingface.co/deepseek-ai/DeepSeek-V2-Lite modeling_deepseek.py DeepseekV2Attention).
    q_out = h * (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim)
    q = d * q_out if cfg.q_lora_rank is None else (d + 1 + q_out) * cfg.q_lora_rank
    kv = d * (cfg.kv_lora_rank + cfg.qk_rope_head_dim) + cfg.kv_lora_rank * (
        1 + h * (cfg.qk_nope_head_dim + cfg.v_head_dim))
    return q + kv + h * cfg.v_head_dim * d


def _expert_ff(cfg: TransformerConfig) -> int:
    return cfg.moe_d_ff or cfg.d_ff


def layer_counts(cfg: TransformerConfig) -> tuple[int, int, int]:
    """(attention, MLP, Mamba-2) layers: every layer has attention and an MLP, or a hybrid's
    layer_pattern gives each layer one of them."""
    pattern = cfg.layer_pattern
    if pattern is None:
        return cfg.n_layers, cfg.n_layers, 0
    return pattern.count("*"), pattern.count("-"), pattern.count("M")


def _moe_layers(cfg: TransformerConfig) -> int:
    """Layers with an MoE MLP: all but the leading first_dense_layers of an MoE model."""
    return max(0, cfg.n_layers - cfg.first_dense_layers) if cfg.n_experts else 0


def _layer_params(cfg: TransformerConfig, experts: int) -> int:
    """One layer with ``experts`` routed experts (0: a dense MLP of d_ff)."""
    d = cfg.d_model
    norm = cfg.norms_per_layer * d * (2 if cfg.norm == "layernorm" else 1)
    bias = (_qkv_width(cfg) + d + (_mlp_matrices(cfg) - 1) * cfg.d_ff + d) if cfg.bias else 0
    if not experts:
        return _attn_params(cfg) + _mlp_matrices(cfg) * d * cfg.d_ff + norm + bias
    mlp = _mlp_matrices(cfg) * d * _expert_ff(cfg)
    router = d * cfg.n_experts
    return _attn_params(cfg) + (experts + cfg.n_shared_experts) * mlp + norm + bias + router


def param_count(cfg: TransformerConfig) -> tuple[float, float]:
    """(total, active per token) parameters, embeddings and head included.

    Active counts ``top_k`` routed (and all shared) experts per MoE layer (Mixtral-8x7B:
    46.7e9 total, 12.9e9 active).
    """
    d = cfg.d_model
    embed = (cfg.vocab + cfg.max_positions + cfg.type_vocab) * d
    final_norm = d * (2 if cfg.norm == "layernorm" else 1) if cfg.kind == "decoder" else 0
    head = 0 if cfg.tied_embeddings or cfg.kind == "encoder" else cfg.vocab * d
    head += cfg.vocab if cfg.lm_head_bias else 0
    pooler = d * d + d if cfg.pooler else 0
    # BERT's embedding LayerNorm stands where a decoder has its final norm.
    emb_norm = 2 * d if cfg.kind == "encoder" else 0
    moe = _moe_layers(cfg)
    layers = (_pattern_params(cfg) if cfg.layer_pattern is not None
              else (cfg.n_layers - moe) * _layer_params(cfg, 0))
    fixed = embed + final_norm + head + pooler + emb_norm + layers
    total = fixed + moe * _layer_params(cfg, cfg.n_experts)
    active = fixed + moe * _layer_params(cfg, cfg.top_k)
    return float(total), float(active)


def _pattern_params(cfg: TransformerConfig) -> int:
    """The layers of a hybrid: each its pre-norm and its one mixer."""
    attn, mlp, mamba = layer_counts(cfg)
    d = cfg.d_model
    norm = d * (2 if cfg.norm == "layernorm" else 1)
    return (attn * (_attn_params(cfg) + norm) + mlp * (_mlp_matrices(cfg) * d * cfg.d_ff + norm)
            + mamba * (_mamba_params(cfg) + norm))


def kv_elems_per_token(cfg: TransformerConfig) -> float:
    """K and V elements of one token over all layers: 2 * n_layers * n_kv_heads * head_dim;
    MLA caches the latent and the RoPE key, n_layers * (d_c + d_h^R) (DeepSeek-V2 Table 1).
    A hybrid's attention layers only: Mamba-2 layers keep a state instead."""
    return layer_counts(cfg)[0] * _kv_tok(cfg)


def _kv_tok(cfg: TransformerConfig) -> float:
    """Cached elements of one token in one layer."""
    if _is_mla(cfg):
        return float(cfg.kv_lora_rank + cfg.qk_rope_head_dim)
    return 2.0 * kv_heads(cfg) * head_dim(cfg)


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


def _norm(name: str, cfg: TransformerConfig, tokens: float, count: float,
          width: float = 0) -> Op:
    """A norm over vectors of ``width`` (0: d_model)."""
    d = width or cfg.d_model
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


def _attn_shape(cfg: TransformerConfig, absorbed: bool) -> tuple[int, int, int, int]:
    """(query-key dim, value dim, KV heads, query + key + value elements per token).

    MLA (DeepSeek-V2 section 2.1.3): decompressed (prefill), it is MHA over nope + rope
    query-key dims and v_head_dim values; absorbed (decode), W_UK and W_UV move to the query
    and output sides and every head scores the d_c + d_h^R latent and averages the d_c latent:
    2 h (d_c + d_h^R) + 2 h d_c FLOP per query per key, one KV head shared by all (as MQA).
    """
    if not _is_mla(cfg):
        hd = head_dim(cfg)
        return hd, hd, kv_heads(cfg), _qkv_width(cfg)
    h, c, rope = cfg.n_heads, cfg.kv_lora_rank, cfg.qk_rope_head_dim
    if absorbed:
        return c + rope, c, 1, h * (c + rope)
    qk = cfg.qk_nope_head_dim + rope
    return qk, cfg.v_head_dim, h, h * (2 * qk + cfg.v_head_dim)


def _attention(cfg: TransformerConfig, q_tokens: float, kv_len: float, kv_read: float,
               kv_write: float, count: float, absorbed: bool = False) -> Op:
    """Fused attention for ``q_tokens`` queries over ``kv_len`` keys (average, causal-aware);
    ``absorbed``: MLA's weight-absorbed form (see _attn_shape)."""
    h = cfg.n_heads
    qk, v, kvh, qkv = _attn_shape(cfg, absorbed)
    return Op("attention", ATTENTION, count=count,
              flop=(2.0 * qk + 2.0 * v + _SOFTMAX_FLOP_PER_ELEM) * h * q_tokens * kv_len,
              m=q_tokens * h / kvh, k=qk, n=kv_len,
              act_in_elems=q_tokens * qkv, act_out_elems=q_tokens * h * v,
              kv_read_elems=kv_read, kv_write_elems=kv_write,
              score_elems=h * q_tokens * kv_len, reduce_len=kv_len)


def _layer_ops(cfg: TransformerConfig, tokens: float, attention: Op,
               absorbed: bool = False, scan: tuple[Op, ...] = ()) -> list[Op]:
    """The layers' operators around ``attention``; a hybrid's Mamba-2 layers around
    ``scan`` (its conv and SSD operators: _mamba_ops)."""
    d = cfg.d_model
    L, mlp, _ = layer_counts(cfg)
    attn = _mla_block(cfg, tokens, attention, absorbed) if _is_mla(cfg) else [
        _matmul("qkv", tokens, d, _qkv_width(cfg), L),
        attention,
        _matmul("attn_out", tokens, cfg.n_heads * head_dim(cfg), d, L, comm=True, d=d),
    ]
    ops = [_norm("attn_norm", cfg, tokens, L), *attn] if L else []
    # A hybrid's MLP layers have their own pre-norm; a transformer layer's MLP one where
    # the layer has two norms.
    mlp_norms = mlp if cfg.layer_pattern is not None else L * (cfg.norms_per_layer > 1)
    if mlp_norms:
        ops.append(_norm("mlp_norm", cfg, tokens, mlp_norms))
    return ops + _mlp_ops(cfg, tokens) + _mamba_ops(cfg, tokens, scan)


def _mla_block(cfg: TransformerConfig, tokens: float, attention: Op,
               absorbed: bool) -> list[Op]:
    """MLA's projections around ``attention`` (DeepSeek-V2 eqs. 9-19): the queries (through
    their latent with q_lora_rank), the shared latent and RoPE key (kv_a and its norm), then
    the up-projection of every key and value (kv_up, decompressed) or, absorbed, per head the
    query into the latent space (q_absorb, W_UK) and the attended latent out of it (v_up,
    W_UV); the output projection."""
    d, h, L = cfg.d_model, cfg.n_heads, layer_counts(cfg)[0]
    c, nope, v = cfg.kv_lora_rank, cfg.qk_nope_head_dim, cfg.v_head_dim
    q_out = h * (nope + cfg.qk_rope_head_dim)
    if cfg.q_lora_rank is None:
        ops = [_matmul("q", tokens, d, q_out, L)]
    else:
        r = cfg.q_lora_rank
        ops = [_whole(_matmul("q_a", tokens, d, r, L)), _norm("q_norm", cfg, tokens, L, r),
               _matmul("q_b", tokens, r, q_out, L)]
    ops += [_whole(_matmul("kv_a", tokens, d, c + cfg.qk_rope_head_dim, L)),
            _norm("kv_norm", cfg, tokens, L, c)]
    if absorbed:
        ops += [_head_matmul("q_absorb", tokens, h, nope, c, L), attention,
                _head_matmul("v_up", tokens, h, c, v, L)]
    else:
        ops += [_matmul("kv_up", tokens, c, h * (nope + v), L), attention]
    return ops + [_matmul("attn_out", tokens, h * v, d, L, comm=True, d=d)]


def _whole(op: Op) -> Op:
    """A projection to a latent every head reads: each tensor-parallel chip computes it all."""
    return dataclasses.replace(op, tp_split=False)


def _head_matmul(name: str, tokens: float, h: int, k: int, n: int, count: float) -> Op:
    """``h`` independent products of a k x n weight each (a batched per-head matmul)."""
    return dataclasses.replace(_matmul(name, tokens, k, h * n, count),
                               act_in_elems=tokens * h * k)


def _mlp_ops(cfg: TransformerConfig, tokens: float) -> list[Op]:
    """The dense MLP of dense layers; router, shared experts (always run, summed into the
    routed experts' all-reduce) and ``top_k`` routed experts of MoE layers, between the
    all-to-all pair that moves tokens to the experts' chips and back."""
    d, moe = cfg.d_model, _moe_layers(cfg)
    dense = layer_counts(cfg)[1] - moe
    ops = []
    if dense:
        ops += _ffn("dense_mlp" if moe else "mlp", cfg, tokens, cfg.d_ff, dense)
    if not moe:
        return ops
    experts, width = cfg.n_experts, _expert_ff(cfg)
    ops.append(Op("router", MATMUL, count=moe, flop=2.0 * tokens * d * experts, m=tokens,
                  k=d, n=experts, weight_elems=d * experts, act_in_elems=tokens * d,
                  act_out_elems=tokens * experts))
    if cfg.n_shared_experts:
        ops += _ffn("shared_mlp", cfg, tokens, cfg.n_shared_experts * width, moe, comm=False)
    return ops + [_all_to_all(DISPATCH, cfg, tokens, moe),
                  *_ffn("mlp", cfg, tokens, width, moe, moe_k=cfg.top_k, copies=experts),
                  _all_to_all(COMBINE, cfg, tokens, moe)]


def _all_to_all(kind: int, cfg: TransformerConfig, tokens: float, count: float) -> Op:
    """Expert parallelism's dispatch (each token's hidden vector to its top_k experts'
    chips) or combine (each expert's output back): tokens x top_k x d_model elements each
    way, of which the evaluator sends the (ep - 1) / ep share not held locally."""
    name = "moe_dispatch" if kind == DISPATCH else "moe_combine"
    return Op(name, kind, count=count, comm_elems=tokens * cfg.top_k * cfg.d_model,
              tp_split=False)


def _ffn(name: str, cfg: TransformerConfig, tokens: float, width: int, count: float, *,
         comm: bool = True, moe_k: int = 0, copies: int = 1) -> list[Op]:
    """Up (gate and up when gated) and down projections of an MLP ``width`` wide."""
    d = cfg.d_model
    return [_matmul(f"{name}_up", tokens, d, width * (_mlp_matrices(cfg) - 1), count,
                    moe_k=moe_k, weight_copies=copies),
            _matmul(f"{name}_down", tokens, width, d, count, comm=comm, moe_k=moe_k,
                    weight_copies=copies, d=d)]


def _ssm_inner(cfg: TransformerConfig) -> int:
    """d_inner: the channels of x, z and y (heads x head_dim)."""
    return cfg.ssm_heads * cfg.ssm_head_dim


def _conv_channels(cfg: TransformerConfig) -> int:
    """Channels the causal conv runs over: x, B and C (d_inner + 2 n_groups N)."""
    return _ssm_inner(cfg) + 2 * cfg.ssm_groups * cfg.ssm_state


def _in_proj_width(cfg: TransformerConfig) -> int:
    """in_proj's outputs: z, x, B, C and one dt per head (2 d_inner + 2 n_groups N + heads)."""
    return _ssm_inner(cfg) + _conv_channels(cfg) + cfg.ssm_heads


def _mamba_params(cfg: TransformerConfig) -> int:
    """One Mamba-2 mixer: in_proj, the conv's taps and bias, dt_bias, A_log and D per head,
    the gated norm's scale, out_proj (mamba_ssm Mamba2: bias=False, conv_bias=True)."""
    inner, heads = _ssm_inner(cfg), cfg.ssm_heads
    return (cfg.d_model * _in_proj_width(cfg) + _conv_channels(cfg) * (cfg.ssm_conv + 1)
            + 3 * heads + inner + inner * cfg.d_model)


def _ssm_state_elems(cfg: TransformerConfig) -> float:
    """SSM state of one sequence in one layer: heads x head_dim x N."""
    return float(_ssm_inner(cfg) * cfg.ssm_state)


def _conv_state_elems(cfg: TransformerConfig) -> float:
    """Conv state of one sequence in one layer: the last d_conv - 1 inputs of each channel."""
    return float((cfg.ssm_conv - 1) * _conv_channels(cfg))


def state_elems_per_seq(cfg: TransformerConfig) -> float:
    """The fixed state one sequence holds over all Mamba-2 layers, whatever its length: SSM
    and conv states (mamba_ssm Mamba2.allocate_inference_cache)."""
    return layer_counts(cfg)[2] * (_ssm_state_elems(cfg) + _conv_state_elems(cfg))


def state_bytes_per_seq(cfg: TransformerConfig) -> float:
    """``state_elems_per_seq`` in bytes at ssm_state_dtype."""
    return state_elems_per_seq(cfg) * STATE_DTYPES[cfg.ssm_state_dtype] / 8.0


def _conv(cfg: TransformerConfig, tokens: float, reads: float, writes: float,
          count: float) -> Op:
    """Depthwise causal conv of d_conv taps over x, B and C; ``reads`` and ``writes`` of its
    state per sequence (decode reads the last inputs and shifts in the new one)."""
    ch, taps = _conv_channels(cfg), cfg.ssm_conv
    state = _conv_state_elems(cfg)
    return Op("conv1d", ELEMENTWISE, count=count, flop=2.0 * taps * ch * tokens,
              weight_elems=ch * (taps + 1), act_in_elems=tokens * ch, act_out_elems=tokens * ch,
              kv_read_elems=reads * state, kv_write_elems=writes * state)


def _ssd_chunked(cfg: TransformerConfig, tokens: float, prompt_len: float, writes: float,
                 count: float) -> Op:
    """The SSD scan over ``tokens`` of prompts ``prompt_len`` long, in chunks of Q =
    min(ssm_chunk, prompt_len) (Dao & Gu 2024, section 6): per token and head, 2 Q P FLOP
    for the diagonal blocks' masked (C B^T) X, 2 N P for the chunk states B^T X and 2 N P
    for the outputs C h of the states passed in; per token and group, 2 Q N for C B^T.
    Matrix products on the matrix units; ``writes`` final states per sequence."""
    q = min(float(cfg.ssm_chunk), prompt_len)
    p, n, heads = cfg.ssm_head_dim, cfg.ssm_state, cfg.ssm_heads
    flop = tokens * (heads * (2.0 * q * p + 4.0 * n * p) + cfg.ssm_groups * 2.0 * q * n)
    return Op("ssd_scan", MATMUL, count=count, flop=flop, m=tokens,
              act_in_elems=tokens * (_conv_channels(cfg) + heads),
              act_out_elems=tokens * _ssm_inner(cfg),
              kv_write_elems=writes * _ssm_state_elems(cfg))


def _ssd_step(cfg: TransformerConfig, tokens: float, count: float) -> Op:
    """The recurrent form for ``tokens`` new tokens of one sequence: the state is read and
    written once per step, whatever the context (_STATE_STEP_FLOP_PER_ELEM per element and
    token, on the vector units)."""
    state = _ssm_state_elems(cfg)
    return Op("ssd_step", ELEMENTWISE, count=count,
              flop=_STATE_STEP_FLOP_PER_ELEM * state * tokens,
              act_in_elems=tokens * (_conv_channels(cfg) + cfg.ssm_heads),
              act_out_elems=tokens * _ssm_inner(cfg), kv_read_elems=state, kv_write_elems=state)


def _mamba_ops(cfg: TransformerConfig, tokens: float, scan: tuple[Op, ...]) -> list[Op]:
    """Each Mamba-2 layer (Dao & Gu 2024, section 7.1, figure 6): pre-norm, in_proj to z, x,
    B, C and dt, ``scan`` (the conv and the SSD operators of the pass), the gated RMSNorm of
    y * silu(z) (per group, so split with the heads under tensor parallelism), out_proj
    (row-parallel: all-reduced). No layer: nothing."""
    count = layer_counts(cfg)[2]
    if not count:
        return []
    d, inner = cfg.d_model, _ssm_inner(cfg)
    gate_norm = dataclasses.replace(_norm("gate_norm", cfg, tokens, count, inner),
                                    tp_split=True)
    return [_norm("mamba_norm", cfg, tokens, count),
            _matmul("in_proj", tokens, d, _in_proj_width(cfg), count), *scan, gate_norm,
            _matmul("out_proj", tokens, inner, d, count, comm=True, d=d)]


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
    kv_tok = _kv_tok(cfg)
    attn_layers, _, mamba = layer_counts(cfg)
    attn = _attention(cfg, prompt_len, prompt_keys(cfg, prompt_len), 0.0, prompt_len * kv_tok,
                      attn_layers)
    scan = (_conv(cfg, prompt_len, 0.0, 1.0, mamba),
            _ssd_chunked(cfg, prompt_len, prompt_len, 1.0, mamba))
    ops = [_embed(cfg, prompt_len), *_layer_ops(cfg, prompt_len, attn, scan=scan),
           *_head(cfg, prompt_len)]
    return _pass("prefill", ops, prompt_len, cfg, 1.0)


def decode_pass(cfg: TransformerConfig, context_len: float, repeats: float = 1.0,
                tokens: int = 1, name: str = "decode") -> Pass:
    """One step at ``context_len`` tokens of context: a matrix-vector product per weight
    matrix (a thin matrix product for the ``tokens`` a speculative verification checks at
    once, each with its logits); K and V of the whole context are read once (MLA: the latent,
    attended in the absorbed form); a Mamba-2 layer reads and writes its state once."""
    kv_tok = _kv_tok(cfg)
    keys = cached_tokens(cfg, context_len)
    attn_layers, _, mamba = layer_counts(cfg)
    attn = _attention(cfg, tokens, keys, keys * kv_tok, tokens * kv_tok, attn_layers, True)
    scan = (_conv(cfg, tokens, 1.0, 1.0, mamba), _ssd_step(cfg, tokens, mamba))
    ops = [_embed(cfg, tokens), *_layer_ops(cfg, tokens, attn, True, scan),
           *_head(cfg, tokens, tokens)]
    return _pass(name, ops, tokens, cfg, repeats)


def mixed_pass(cfg: TransformerConfig, prompt_len: int, gen_len: int) -> Pass:
    """One step of a continuously batched server with chunked prefill (vLLM V1, TensorRT-LLM
    in-flight batching; Agrawal et al., Sarathi-Serve, OSDI 2024): every sequence advances by
    one token and, in steady state, the step also carries prompt_len / gen_len prompt tokens
    per sequence (each request brings its prompt once per gen_len steps). The weights are read
    once for both, so the prompts' compute hides under the decode's weight stream.

    Prompt chunks attend to their own prompt's keys (mean (prompt_len + 1) / 2, as in
    prefill); the decode token attends to the mid-generation context.

    NOTE: MLA chunks attend in the absorbed form too, against the latent their prefix left
    in the cache; the decompressed form of prefill would up-project that prefix per chunk.

    A Mamba-2 layer steps the decode token's state and scans the prompt chunk; a prompt
    writes its final state once, 1 / gen_len of it per step."""
    kv_tok = _kv_tok(cfg)
    chunk = prompt_len / gen_len
    tokens = 1.0 + chunk
    keys = cached_tokens(cfg, prompt_len + gen_len / 2.0)
    attn_layers, _, mamba = layer_counts(cfg)
    decode = _attention(cfg, 1.0, keys, keys * kv_tok, kv_tok, attn_layers, True)
    prompt = _attention(cfg, chunk, prompt_keys(cfg, prompt_len), 0.0, chunk * kv_tok,
                        attn_layers, True)
    scan = (_conv(cfg, tokens, 1.0, 1.0, mamba), _ssd_step(cfg, 1.0, mamba),
            dataclasses.replace(_ssd_chunked(cfg, chunk, prompt_len, 1.0 / gen_len, mamba),
                                name="ssd_scan_prompt"))
    layer = _layer_ops(cfg, tokens, decode, True, scan)
    if attn_layers:
        i = next(k for k, op in enumerate(layer) if op.kind == ATTENTION)
        prompt = dataclasses.replace(prompt, name="attention_prompt")
        layer = [*layer[:i + 1], prompt, *layer[i + 1:]]
    ops = [_embed(cfg, tokens), *layer, *_head(cfg, 1.0)]
    return _pass("mixed", ops, tokens, cfg, gen_len)


def encode_pass(cfg: TransformerConfig, seq_len: int) -> Pass:
    """Bidirectional encoder over ``seq_len`` tokens (BERT): no KV cache, no LM head."""
    attn = _attention(cfg, seq_len, float(seq_len), 0.0, 0.0, cfg.n_layers)
    ops = [_embed(cfg, seq_len), *_layer_ops(cfg, seq_len, attn)]
    return _pass("encode", ops, seq_len, cfg, 1.0)
