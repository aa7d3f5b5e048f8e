"""The operator table: one row per operator kind, columns of per-item quantities.

An *item* is one sequence (LLM) or one image (CNN); the evaluator multiplies per-item columns
by the batch. ``count`` says how many identical instances run per pass (80 layers are one row
with count 80), so the evaluator never loops over layers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from operator import attrgetter

import numpy as np

__all__ = ["MATMUL", "ATTENTION", "REDUCTION", "ELEMENTWISE", "DISPATCH", "COMBINE",
           "KIND_NAMES", "Op", "OpTable", "Pass", "Plan"]

MATMUL, ATTENTION, REDUCTION, ELEMENTWISE = 0, 1, 2, 3
# The all-to-all pair of an expert-parallel MoE layer: tokens to the chips holding their
# experts (at the activations' dtype) and the experts' outputs back (16-bit, as partial sums
# are reduced). ``comm_elems`` is what one item sends each way before the (ep - 1) / ep share
# that leaves its chip; they cost nothing without expert parallelism.
DISPATCH, COMBINE = 4, 5
KIND_NAMES = ("matmul", "attention", "reduction", "elementwise", "dispatch", "combine")


@dataclass(frozen=True)
class Op:
    """One operator kind. Element counts are per item per instance unless noted."""

    name: str
    kind: int
    count: float = 1.0  # instances per pass
    flop: float = 0.0
    m: float = 0.0  # matmul rows per item (tokens, output pixels)
    k: float = 0.0  # reduction dimension
    n: float = 0.0  # output columns (all groups/heads)
    weight_elems: float = 0.0  # per instance, independent of the batch
    act_in_elems: float = 0.0
    act_out_elems: float = 0.0
    kv_read_elems: float = 0.0
    kv_write_elems: float = 0.0
    score_elems: float = 0.0  # attention score matrix, materialised without a flash tile
    comm_elems: float = 0.0  # all-reduced under tensor parallelism after this op (or sent
    # to the experts' chips: DISPATCH, COMBINE)
    reduce_len: float = 0.0  # length of the vector a reduction scans
    tp_split: bool = True  # FLOPs, weights and KV divide across tensor-parallel chips
    moe: bool = False  # weights are experts: only the touched ones are read
    sparse: bool = False  # a weight matmul that 2:4 sparsity applies to


# Op's columns and their dtypes in an OpTable (kind: int; flags: bool; the rest: float).
_COLUMNS = tuple((f.name, bool if f.type in ("bool", bool) else int if f.name == "kind" else float)
                 for f in fields(Op) if f.name != "name")
_op_values = attrgetter(*(name for name, _ in _COLUMNS))


@dataclass(frozen=True)
class OpTable:
    """Columns of ``Op`` as arrays (n_ops,); ``names`` and ``kind`` label the rows."""

    names: tuple[str, ...]
    kind: np.ndarray
    count: np.ndarray
    flop: np.ndarray
    m: np.ndarray
    k: np.ndarray
    n: np.ndarray
    weight_elems: np.ndarray
    act_in_elems: np.ndarray
    act_out_elems: np.ndarray
    kv_read_elems: np.ndarray
    kv_write_elems: np.ndarray
    score_elems: np.ndarray
    comm_elems: np.ndarray
    reduce_len: np.ndarray
    tp_split: np.ndarray
    moe: np.ndarray
    sparse: np.ndarray

    @classmethod
    def from_ops(cls, ops: list[Op]) -> OpTable:
        # NOTE: one float array of every row, then a column each: a list per column (and
        # dataclasses.fields per call) took a tenth of predict() on a scenario not seen yet.
        rows = np.array([_op_values(op) for op in ops], dtype=float)
        rows = rows.reshape(len(ops), len(_COLUMNS))  # no ops: (0, n_columns) too
        cols = {name: rows[:, j].astype(dtype) for j, (name, dtype) in enumerate(_COLUMNS)}
        return cls(names=tuple(op.name for op in ops), **cols)

    @classmethod
    def concat(cls, tables: list[OpTable]) -> OpTable:
        """The rows of ``tables``, one after another."""
        cols = {name: np.concatenate([getattr(t, name) for t in tables]) for name, _ in _COLUMNS}
        return cls(names=sum((t.names for t in tables), ()), **cols)

    def to_ops(self) -> list[Op]:
        """The rows back as ``Op``s (to derive one pass from another)."""
        return [Op(name, **{k: getattr(self, k)[i].item() for k, _ in _COLUMNS})
                for i, name in enumerate(self.names)]

    @property
    def n_ops(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Pass:
    """One forward pass of a scenario (prefill, one decode step, encode, infer)."""

    name: str
    ops: OpTable
    repeats: float  # times the pass runs per request (decode: generated tokens)
    act_peak_elems: float  # live activations per item (working set)
    p2p_elems: float  # activations per item crossing one pipeline-stage boundary


@dataclass(frozen=True)
class Plan:
    """What a workload asks in a scenario, independent of the chip."""

    workload: str
    family: str  # llm | encoder | cnn
    phase: str
    passes: tuple[Pass, ...]
    items_per_request: float  # outputs of one request: tokens (LLM) or 1 sample
    param_elems: float  # all parameters (capacity)
    kv_elems_per_token: float  # K and V of every layer for one token
    kv_tokens: float  # tokens held in the KV cache at the peak of the request
    n_layers: int
    n_heads: int
    n_kv_heads: int
    moe_experts: int = 0
    moe_top_k: int = 0
    # Training: activation elements per item kept for the backward pass, (without, with full)
    # recomputation (workloads.training.stored_activations).
    stored_act_elems: tuple[float, float] = (0.0, 0.0)
    # Mamba-2 layers: the state one sequence holds, whatever its length (bytes).
    state_bytes_per_seq: float = 0.0

    @cached_property
    def ops(self) -> OpTable:
        """The operators of every pass, in pass order (the rows of the evaluator's operator
        tables, dse.evaluator.roofline.op_tables); built once per plan."""
        return OpTable.concat([p.ops for p in self.passes])
