"""Training of a decoder LLM: the forward and backward passes of one sequence, the bytes of
model state per parameter, and the activations kept for the backward pass.

One training step runs the forward pass (the prefill operators, with the LM head over every
position: each token is a target), then the backward pass: every weight matmul becomes two
of its shape (the input gradient dX = dY W^T and the weight gradient dW = X^T dY, each 2MKN
FLOP), so backward is 2x forward (Kaplan et al. 2020, section 2.1: "C ~ 6N" per token).
Tensor parallelism all-reduces as much in the backward as in the forward: the input
gradients of the column-parallel matmuls where the forward all-reduced the outputs of the
row-parallel ones (Shoeybi et al., Megatron-LM, arXiv 1909.08053, figure 4: "g" in forward,
"f" in backward).
"""

from __future__ import annotations

import dataclasses

from workloads import llm
from workloads.config import TransformerConfig
from workloads.ops import ATTENTION, MATMUL, OpTable, Pass

__all__ = ["OPTIMIZERS", "STATE_BYTES", "forward_pass", "backward_pass", "stored_activations"]

# Bytes per parameter of mixed-precision training (Rajbhandari et al., ZeRO, SC 2020,
# section 3.1): 16-bit weights and gradients (2 + 2) and, in fp32, the optimizer's copy of
# the weights and its state: Adam's momentum and variance (K = 12: 16 bytes per parameter in
# all), SGD with momentum (K = 8).
OPTIMIZERS = ("adam", "sgd")
STATE_BYTES = {"adam": 12.0, "sgd": 8.0}
# FlashAttention-2's backward runs 2.5x the forward's matmul FLOP: it recomputes the score
# matrix instead of storing it (Dao, arXiv 2307.08691, section 4.1: "backward pass ... 2.5
# times" the forward FLOPs).
_FLASH_BACKWARD = 2.5
_OUTSIDE_LAYERS = ("embed", "final_norm", "lm_head")


def forward_pass(cfg: TransformerConfig, seq_len: int) -> Pass:
    """The forward pass of one training sequence: the prefill's operators without the KV
    cache, the LM head over all ``seq_len`` positions."""
    ops = []
    for op in llm.prefill_pass(cfg, seq_len).ops.to_ops():
        if op.kind == ATTENTION:
            op = dataclasses.replace(op, kv_write_elems=0.0)
        if op.name == "lm_head":  # the prefill's head computes one position's logits
            op = dataclasses.replace(op, flop=op.flop * seq_len, m=seq_len,
                                     act_in_elems=op.act_in_elems * seq_len,
                                     act_out_elems=op.act_out_elems * seq_len)
        ops.append(op)
    return Pass("train_forward", OpTable.from_ops(ops), 1.0, 0.0, p2p_elems=seq_len * cfg.d_model)


def backward_pass(cfg: TransformerConfig, seq_len: int) -> Pass:
    """The backward pass of one sequence: two matmuls per weight matmul, attention at
    FlashAttention-2's backward cost, vector operators at twice their forward work."""
    ops = []
    for op in forward_pass(cfg, seq_len).ops.to_ops():
        if op.kind == MATMUL:
            # dX = dY W^T: reads the weights and dY, writes dX. Each all-reduce of the
            # forward has one of the same size in the backward (at the column-parallel
            # matmul opening the region; carried here by the row-parallel one closing it).
            ops.append(dataclasses.replace(op, name=f"{op.name}_dgrad", k=op.n, n=op.k,
                                           act_in_elems=op.act_out_elems,
                                           act_out_elems=op.act_in_elems))
            # dW = X^T dY: reads X and dY, writes the gradient (weight-sized).
            ops.append(dataclasses.replace(op, name=f"{op.name}_wgrad",
                                           act_in_elems=op.act_in_elems + op.act_out_elems,
                                           act_out_elems=0.0, comm_elems=0.0))
        elif op.kind == ATTENTION:
            ops.append(dataclasses.replace(op, name="attention_bwd",
                                           flop=_FLASH_BACKWARD * op.flop,
                                           act_in_elems=op.act_in_elems + 2 * op.act_out_elems,
                                           act_out_elems=op.act_in_elems))
        else:
            ops.append(dataclasses.replace(op, name=f"{op.name}_bwd", flop=2.0 * op.flop,
                                           act_in_elems=2.0 * op.act_in_elems))
    return Pass("train_backward", OpTable.from_ops(ops), 1.0, 0.0,
                p2p_elems=seq_len * cfg.d_model)


def stored_activations(cfg: TransformerConfig, seq_len: int) -> tuple[float, float]:
    """Activation elements one sequence keeps for its backward pass, all layers:
    (without recomputation, with full recomputation).

    Without: every operator's input, and the gated MLP's pre-activation (the activation
    function's backward needs it), as Korthikanti et al. count (arXiv 2205.05198, section
    4.1: 34 s b h bytes per layer at 16 bit for a GPT layer with dropout; flash attention
    stores no score matrix). With full recomputation: each layer's input (2 s b h bytes per
    layer, section 5) and one layer's activations, rebuilt while its backward runs."""
    forward = forward_pass(cfg, seq_len).ops.to_ops()
    kept = sum(op.act_in_elems * op.count for op in forward)
    kept += sum(op.act_out_elems * op.count for op in forward if op.name.endswith("mlp_up"))
    rest = sum(op.act_in_elems * op.count for op in forward if op.name in _OUTSIDE_LAYERS)
    per_layer = (kept - rest) / cfg.n_layers
    return kept, cfg.n_layers * seq_len * cfg.d_model + per_layer + rest
