"""Per-operator roofline of one pass on one candidate and one tensor x pipeline split: the
evaluator's hot path, compiled.

For each operator instance on one chip: time = max(compute, off-chip memory, SRAM, link)
+ fixed overhead (DESIGN.md section 4). Operators are rows of a table of per-item constants
(``OP_*`` columns, built once per scenario for every tensor x expert-parallel degree by
``op_tables``); chips are ``C_*`` columns (dse.evaluator.columns). The kernel is the numba
loop this module always had, now called once per candidate, split and pass from the fused
evaluator (dse.evaluator.fused).
"""

from __future__ import annotations

import numpy as np

from dse.evaluator.columns import (
    BOUNDS,
    C_CALL_LAT,
    C_DATAFLOW,
    C_DIRECT_PEERS,
    C_FLOP_PJ,
    C_HAS_MEM,
    C_INV_KV_MEM,
    C_INV_LINK,
    C_INV_MEM,
    C_INV_PEAK,
    C_INV_SPARSE,
    C_INV_SRAM,
    C_INV_VECTOR,
    C_LINK_LAT,
    C_MEM_PJ,
    C_OP_OVERHEAD,
    C_SRAM_PJ,
    C_UNITS,
    C_WEIGHT_BYTES,
    S_ACT_BYTES,
    S_COMM_OVERLAP,
    S_DEQUANT,
    S_EXPERTS,
    S_INV_HOST,
    S_LINK_PJ,
    S_TOP_K,
    S_W_DENSE,
    compiled,
    inlined,
)
from dse.evaluator.efficiency import Efficiency
from workloads.ops import ATTENTION, DISPATCH, MATMUL, REDUCTION, OpTable, Plan

__all__ = ["BOUNDS", "DETAIL", "N_DETAIL", "op_tables", "pass_cost", "column_tiles",
           "tile_efficiency", "N_COST", "K_TIME", "K_ENERGY", "K_FLOP", "K_MEM", "K_SHARES"]

# Partial sums are all-reduced in 16-bit even when activations are 8-bit (NCCL reduces
# fp16/bf16; an fp8 sum of 8 partials would lose the precision the quantisation kept).
_REDUCE_BYTES = 2.0

# Operator columns, (n_ops, N_OP): per item and per chip after the tensor-parallel split.
(OP_FLOP,  # dense FLOP
 OP_ROWS,  # matmul rows (tokens, output pixels)
 OP_WEIGHTS,  # weight elements
 OP_ACT_BYTES,  # activations in and out
 OP_KV_BYTES,  # KV cache read and written
 OP_HK_BYTES,  # 2 N K bytes: the Hong-Kung traffic of a streamed matmul is rows * this
 OP_SCORE_BYTES,  # attention scores, materialised without room for a flash tile
 OP_FLASH_TILE_BYTES,  # SRAM a flash-attention tile needs (inf: not attention)
 OP_COMM_BYTES,  # all-reduced after the op under tensor parallelism; sent by an all-to-all
 OP_BARRIER_S,  # extra latency of a reduction
 OP_COUNT,  # instances per pass
 OP_VECTOR,  # runs on the vector units (not a matrix product)
 OP_SPARSE,  # 2:4 sparsity applies
 OP_MOE,  # experts: tokens routed over the chip's experts per item row (0: not experts)
 OP_REDUCE_BYTES,  # the vector a reduction scans (0: not a reduction)
 OP_N_USEFUL,  # a matrix product's columns per chip / their padded tiles (0: not tiled)
 OP_SLICES,  # its column tiles x reduction slices: the work items one row tile offers
 OP_EXPERTS,  # routed experts on the chip (their products run side by side); 1: dense
 N_OP) = range(19)

# One step of a pass, (N_COST,): time, dynamic energy, FLOP and off-chip bytes per chip, and
# the time attributed to each bound.
K_TIME, K_ENERGY, K_FLOP, K_MEM, K_SHARES = range(5)
N_COST = K_SHARES + len(BOUNDS)
_OVERHEAD = BOUNDS.index("overhead")
_LINK = BOUNDS.index("link")

# Tiles of a matrix product on a chip of compute units (NVIDIA "Matrix Multiplication
# Background User's Guide", DU-09799-001, sections 2.3 and 3): one unit computes one output
# tile at a time. 128 x 128 is the CTA tile of the cuBLAS/CUTLASS kernels that run large GEMMs
# (section 2.3, "Typical Tile Dimensions In cuBLAS"); libraries pick a shorter tile for few
# rows or columns, down to the 16 rows of one tensor-core MMA (PTX ISA mma.m16n8k16), and split
# the reduction over idle units (split-K; flash-decoding) in slices of at least 256 (CUTLASS
# split-K slices are multiples of its 32-deep K tile; shorter slices cost more in partial sums
# than they save). dse/analysis/kernel_fit.py fits and cross-validates a tile model on
# public per-operator timings (data/operators/).
TILE_M, TILE_N, MIN_TILE_M, MIN_K_SLICE = 128.0, 128.0, 16.0, 256.0

DETAIL = ("flop", "mem_bytes", "sram_bytes", "link_bytes", "t_compute", "t_memory", "t_sram",
          "t_link", "time_s", "bound", "overhead_s")
N_DETAIL = len(DETAIL)


def op_tables(plan: Plan, pairs: list[tuple[int, int]], act_bytes: float, kv_bytes: float,
              eff: Efficiency, skew: float = 1.0) -> np.ndarray:
    """The OP_* rows of every operator of every pass (in pass order) at each (tensor-parallel
    degree tp, expert-parallel degree ep) of ``pairs``, (len(pairs), n_ops of all passes,
    N_OP). Attention splits by heads, KV by KV heads; routed experts by ep
    (``expert_parallel``), whose busiest chip gets ``skew`` times the mean of their tokens."""
    # NOTE: one broadcast over all pairs and passes, not a table per pair and pass: each
    # column is a few numpy calls on tiny arrays, whose per-call cost dominated predict().
    degrees = np.array(pairs, dtype=float)
    tp, ep = degrees[:, :1], degrees[:, 1:]  # (n_tables, 1): broadcast over the operators
    table = _split_ops(plan.ops, tp, (plan.n_heads, plan.n_kv_heads), act_bytes, kv_bytes, eff)
    table[..., OP_EXPERTS] = np.where(table[..., OP_MOE] > 0, plan.moe_experts / ep, 1.0)
    return expert_parallel(table, ep, skew, plan.moe_experts / max(plan.moe_top_k, 1))


def expert_parallel(table: np.ndarray, ep: np.ndarray, skew: float,
                    experts_per_k: float) -> np.ndarray:
    """``table`` (OP_* rows at ep = 1, (n_tables, n_ops, N_OP)) with the routed experts of
    table k split over ep[k, 0] chips.

    The layout of DeepSeek-V3's serving (arXiv 2412.19437 section 3.4; vLLM and SGLang's
    data-parallel attention with EP): each of the ep chip groups runs attention, the dense
    and the shared-expert layers for its own sequences (so the evaluator treats a group as a
    replica), and holds n_experts / ep of the routed experts (tp-sliced inside the group, as
    Megatron's expert tensor parallelism). Per MoE layer the dispatch and combine all-to-all
    move each token's top_k hidden vectors, of which (ep - 1) / ep leave the chip (dispatch
    at the activations' dtype, combine in 16 bit: DeepEP README, "FP8 dispatching and BF16
    combining"). The step waits for the busiest chip, which receives ``skew`` times the mean
    tokens; a chip cannot get more than all of them, nor more than min(top_k, its experts)
    per token: skew <= min(ep, n_experts / top_k). Its experts are touched by the tokens of
    all ep groups: E / ep (1 - (1 - k / E)^(ep skew T)) of them for T tokens per group.
    ep = 1: experts unchanged, the all-to-all rows cost nothing (count 0).
    """
    a2a = (table[0, :, OP_VECTOR] > 0) & (table[0, :, OP_COMM_BYTES] > 0)
    moe = table[0, :, OP_MOE] > 0
    if not (a2a.any() or moe.any()):
        return table  # a dense model: nothing to split (and a dozen numpy calls saved)
    split = ep > 1
    s = np.where(split, np.minimum(np.minimum(skew, ep), experts_per_k), 1.0)
    table[:, moe, OP_WEIGHTS] /= ep
    table[:, moe, OP_FLOP] *= s
    table[:, moe, OP_ACT_BYTES] *= s
    table[:, moe, OP_MOE] = np.where(split, ep * s, table[:, moe, OP_MOE])
    table[:, a2a, OP_COMM_BYTES] *= np.where(split, (ep - 1) / ep * s, 0.0)
    table[:, a2a, OP_COUNT] = np.where(split, table[:, a2a, OP_COUNT], 0.0)
    return table


def _split_ops(ops: OpTable, tp: np.ndarray, heads: tuple[int, int], act_bytes: float,
               kv_bytes: float, eff: Efficiency) -> np.ndarray:
    """The OP_* rows of ``ops`` at each tensor-parallel degree tp[k, 0], experts unsplit,
    (len(tp), n_ops, N_OP); OP_EXPERTS is left for ``op_tables`` to fill."""
    split = np.where(ops.tp_split, tp, 1.0)
    head_split = np.minimum(tp, float(heads[0]))
    fsplit = np.where(ops.kind == ATTENTION, head_split, split)
    kv_split = np.where(ops.tp_split, np.minimum(tp, float(heads[1])), 1.0)
    attention = ops.kind == ATTENTION
    table = np.empty((tp.shape[0], ops.n_ops, N_OP))
    table[..., OP_FLOP] = ops.flop / fsplit
    table[..., OP_ROWS] = ops.m
    table[..., OP_WEIGHTS] = ops.weight_elems / split
    table[..., OP_ACT_BYTES] = (ops.act_in_elems + ops.act_out_elems) * act_bytes / fsplit
    table[..., OP_KV_BYTES] = (ops.kv_read_elems + ops.kv_write_elems) * kv_bytes / kv_split
    table[..., OP_HK_BYTES] = np.where(ops.kind == MATMUL,
                                       2.0 * (ops.n / split) * ops.k * act_bytes, 0.0)
    table[..., OP_SCORE_BYTES] = np.where(attention,
                                          2.0 * ops.score_elems * act_bytes / head_split, 0.0)
    table[..., OP_FLASH_TILE_BYTES] = np.where(
        attention, 4.0 * eff.flash_tile_rows * ops.k * act_bytes, np.inf)
    # All-to-all bytes each way as ep grows (DeepEP README: "FP8 dispatching and BF16
    # combining"): tokens at the activations' dtype, expert outputs in 16 bit as partial sums.
    table[..., OP_COMM_BYTES] = ops.comm_elems * np.where(ops.kind == DISPATCH, act_bytes,
                                                          max(act_bytes, _REDUCE_BYTES))
    table[..., OP_BARRIER_S] = eff.reduction_latency_s * (ops.kind == REDUCTION)
    table[..., OP_COUNT] = ops.count
    table[..., OP_VECTOR] = ops.kind > ATTENTION
    table[..., OP_SPARSE] = ops.sparse
    table[..., OP_MOE] = ops.moe
    table[..., OP_REDUCE_BYTES] = np.where(ops.kind == REDUCTION, ops.reduce_len * act_bytes,
                                           0.0)
    # Weight products tile over tokens x output columns; attention (flash kernels tile queries
    # of all heads together) and shape-less products are left untiled.
    tiled = (ops.kind == MATMUL) & (ops.n > 0) & (ops.k > 0)
    useful, slices = column_tiles(ops.n / split, ops.k)
    table[..., OP_N_USEFUL] = np.where(tiled, useful, 0.0)
    table[..., OP_SLICES] = np.where(tiled, slices, 0.0)
    return table


@compiled
def pass_cost(chip, ops, start, stop, sc, mb, n_micro, tp, pp, resident, kv_on_chip,
              kv_host, sram_free, p2p_elems, cost, detail):
    """One step of a pass for one replica: ``mb`` items per microbatch, ``n_micro``
    microbatches, each chip holding 1/pp of the layers and 1/tp of each layer.

    Args:
        chip: the candidate's C_* column, (N_CHIP,).
        ops: operators at this tp, (n_ops, N_OP); the pass is rows [start, stop).
        sc: scenario scalars, (N_SC,).
        resident, kv_on_chip: weights (and KV cache) stay in SRAM; sram_free: bytes left.
        kv_host: the share of the KV cache read from host memory (S_INV_HOST).
        p2p_elems: activations per item crossing a pipeline-stage boundary.
        cost: receives the step's K_* figures, (N_COST,).
        detail: receives the DETAIL columns of operator row j at [j * N_DETAIL,
            (j + 1) * N_DETAIL); empty: none.
    """
    hw = _hardware(chip, sc, sram_free)
    time = energy = flop = mem = 0.0
    cost[K_SHARES:] = 0.0
    for j in range(start, stop):
        c = ops[j, OP_COUNT]
        if c == 0.0:
            continue  # an all-to-all at ep = 1: no instance, no cost, no detail
        f, q, q_s, comm, wire, t_c, t_m, t_s, t_l = _op_cost(hw, ops, j, sc, mb, tp, resident,
                                                             kv_on_chip, kv_host, sram_free)
        # A launched collective starts when the op's output is complete (an NCCL call after
        # the GEMM): its time adds. A dataflow compiler schedules the transfers inside the
        # op's own (Abts et al., ISCA 2022: the chip-to-chip network is scheduled statically),
        # and training frameworks overlap them with the products (S_COMM_OVERLAP).
        t_max = max(max(t_c, t_m), t_s)
        t_wait = t_l
        if hw[_DATAFLOW] > 0 or sc[S_COMM_OVERLAP] > 0:
            t_max, t_wait = max(t_max, t_l), 0.0
        ovh = hw[_OP_OVERHEAD] + ops[j, OP_BARRIER_S]
        time += c * (t_max + t_wait + ovh)
        energy += c * (f * hw[_FLOP_PJ] + q * hw[_MEM_PJ] + q_s * hw[_SRAM_PJ]
                       + wire * 8.0 * sc[S_LINK_PJ])
        flop += c * f
        mem += c * q
        bound = 3 if t_wait > t_max or t_l >= t_max else (
            0 if t_c >= t_max else (1 if t_m >= t_max else 2))
        cost[K_SHARES + bound] += c * t_max
        cost[K_SHARES + _LINK] += c * t_wait
        cost[K_SHARES + _OVERHEAD] += c * ovh
        if detail.shape[0] > 0:
            _write_detail(detail, j, (f, q, q_s, comm if wire > 0 else 0.0, t_c, t_m, t_s, t_l,
                                      c * (t_max + t_wait + ovh), float(bound), c * ovh))
    if pp > 1:
        # A stage boundary: one send per microbatch hop (a collective-library call on GPUs).
        time += (pp - 1) * (mb * p2p_elems * sc[S_ACT_BYTES] * hw[_INV_LINK] + hw[_LINK_LAT]
                            + hw[_CALL_LAT])
    # Each chip runs its 1/pp of the layers for every microbatch: n_micro / pp of the sums.
    duty = n_micro / pp
    cost[K_TIME], cost[K_ENERGY] = time, duty * energy * 1e-12
    cost[K_FLOP], cost[K_MEM] = duty * flop, duty * mem


# What the operator loop reads of the candidate, copied once per pass into a tuple of
# scalars: reading the chip column inside the loop would reload it after every store.
(_INV_PEAK, _INV_VECTOR, _INV_SPARSE, _WEIGHT_BYTES, _INV_MEM, _INV_KV_MEM, _INV_SRAM,
 _INV_LINK, _LINK_LAT, _CALL_LAT, _OP_OVERHEAD, _HAS_MEM, _FLOP_PJ, _MEM_PJ, _SRAM_PJ,
 _INV_SQRT_BUF, _UNITS, _DATAFLOW, _DIRECT_PEERS) = range(19)


@inlined
def _hardware(chip, sc, sram_free):
    act_bytes = sc[S_ACT_BYTES]
    return (chip[C_INV_PEAK], chip[C_INV_VECTOR], chip[C_INV_SPARSE], chip[C_WEIGHT_BYTES],
            chip[C_INV_MEM], chip[C_INV_KV_MEM], chip[C_INV_SRAM], chip[C_INV_LINK],
            chip[C_LINK_LAT], chip[C_CALL_LAT], chip[C_OP_OVERHEAD], chip[C_HAS_MEM],
            chip[C_FLOP_PJ], chip[C_MEM_PJ], chip[C_SRAM_PJ],
            # Hong-Kung: a buffer of S bytes moves operands sqrt(S / bytes per element) times
            # less than a matmul of the whole.
            np.sqrt(act_bytes / max(sram_free, act_bytes)), chip[C_UNITS], chip[C_DATAFLOW],
            chip[C_DIRECT_PEERS])


@compiled
def _write_detail(detail, j, values):
    for k in range(N_DETAIL):
        detail[j * N_DETAIL + k] = values[k]


def column_tiles(n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(useful share, work items per row tile) of products with ``n`` output columns per chip
    over depth ``k``: columns pad to tiles of TILE_N, or the power of two covering fewer (at
    least MIN_TILE_M), and each column tile splits its reduction into slices of at least
    MIN_K_SLICE (split-K, flash-decoding) to fill idle units. Fixed by the model and the split,
    so computed once per operator table."""
    n, k = np.maximum(n, 1.0), np.maximum(k, 1.0)
    tile_n = np.where(n < TILE_N, np.maximum(MIN_TILE_M, np.exp2(np.ceil(np.log2(n)))), TILE_N)
    n_tiles = np.ceil(n / tile_n)
    return n / (n_tiles * tile_n), n_tiles * np.maximum(k / MIN_K_SLICE, 1.0)


@inlined
def _tile_efficiency(rows, useful_n, slices, units, products):
    """Share of the matrix units' rate left to ``products`` side-by-side products of ``rows``
    rows (``column_tiles``: their columns' useful share and work items per row tile) on
    ``units`` compute units. 1: enough whole tiles.

    Rows pad to one MMA's MIN_TILE_M at least; beyond, a library's tile choice and stream-K's
    balanced tail (Osama et al., "Stream-K", PPoPP 2023; cuBLAS since 11.8) leave no further
    padding or wave quantisation worth a term, which keeps throughput monotone in the batch.
    Units the work items cannot fill stay idle.
    """
    work = slices * max(rows / TILE_M, 1.0) * products
    return (rows / max(rows, MIN_TILE_M)) * useful_n * min(1.0, work / units)


def tile_efficiency(rows: float, n: float, k: float, units: float,
                    products: float = 1.0) -> float:
    """``_tile_efficiency`` of one product shape (rows x n outputs over depth k)."""
    useful, slices = column_tiles(np.array([n]), np.array([k]))
    return float(_tile_efficiency(rows, useful[0], slices[0], units, products))


@inlined
def _op_cost(hw, ops, j, sc, mb, tp, resident, kv_on_chip, kv_host, sram_free):
    """(FLOP, off-chip bytes, SRAM bytes, collective bytes, bytes the links carry, compute,
    memory, SRAM and link time) of one instance of operator row ``j``, per chip."""
    inv_peak, inv_vec = hw[_INV_PEAK], hw[_INV_VECTOR]
    has_mem = hw[_HAS_MEM] > 0
    sparse = ops[j, OP_SPARSE] > 0
    flop = mb * ops[j, OP_FLOP]
    if sparse:
        flop *= hw[_INV_SPARSE]
    rows = mb * ops[j, OP_ROWS]
    # Weights: an MoE layer reads only the experts its tokens touch, E(1-(1-k/E)^T), T the
    # tokens routed over the chip's experts (all groups' under expert parallelism).
    w_elems = ops[j, OP_WEIGHTS]
    touched = 1.0
    if ops[j, OP_MOE] > 0:
        touched = 1.0 - (1.0 - sc[S_TOP_K] / sc[S_EXPERTS]) ** (rows * ops[j, OP_MOE])
        w_elems *= touched
    # Compute: a matrix product runs on the matrix units at the share its tiles leave (a
    # dataflow compiler sizes each layer's array region to its shape: untiled), never slower
    # than the vector units, which can run a matrix-vector product; vector ops run there.
    # Each touched expert gets its share of the routed rows.
    if ops[j, OP_VECTOR] > 0:
        t_c = flop * inv_peak * inv_vec
    elif flop > 0 and ops[j, OP_SLICES] > 0 and hw[_DATAFLOW] == 0:
        experts = ops[j, OP_EXPERTS] * touched
        m = rows * max(ops[j, OP_MOE], 1.0) * sc[S_TOP_K] / sc[S_EXPERTS] / touched \
            if ops[j, OP_MOE] > 0 else rows
        shape = _tile_efficiency(m, ops[j, OP_N_USEFUL], ops[j, OP_SLICES], hw[_UNITS],
                                 experts)
        t_c = flop * inv_peak * min(inv_vec, 1.0 / shape)
    else:
        t_c = flop * inv_peak
    w = w_elems * (hw[_WEIGHT_BYTES] if sparse else sc[S_W_DENSE])
    # Weight-only formats are unpacked on the vector units once per weight read.
    t_c += w_elems * sc[S_DEQUANT] * inv_peak * inv_vec
    act = mb * ops[j, OP_ACT_BYTES]
    kv = mb * ops[j, OP_KV_BYTES]
    # Off-chip: resident weights cost nothing per pass; activations round trip only for the
    # share past the free SRAM: the tile of a layer's output that fits stays on chip for the
    # next layer (a buffer larger than the cache persists in "hit segments" of the cache's
    # size and streams the rest: cudaAccessPolicyWindow.hitRatio, docs.nvidia.com/cuda/
    # cuda-programming-guide/04-special-topics/l2-cache-control.html); a streamed matmul
    # moves >= 2MNK/sqrt(S/b) elements (Hong-Kung); attention without room for a flash tile
    # materialises its score matrix.
    streamed = 0.0 if resident else w
    if has_mem:
        streamed += max(act - sram_free, 0.0)
    q = streamed
    if streamed > 0:
        q = max(q, rows * ops[j, OP_HK_BYTES] * hw[_INV_SQRT_BUF])
    if has_mem and sram_free < ops[j, OP_FLASH_TILE_BYTES]:
        q += mb * ops[j, OP_SCORE_BYTES]
    # A reduction is a barrier: when the vector it scans does not fit on chip, the vector
    # makes a round trip through memory.
    if has_mem and sram_free < ops[j, OP_REDUCE_BYTES]:
        q += act
    q_kv = 0.0 if kv_on_chip else kv
    t_m = q * hw[_INV_MEM] + q_kv * hw[_INV_KV_MEM]
    if kv_host > 0:  # the device and the host link stream their shares of the KV cache
        t_m = q * hw[_INV_MEM] + q_kv * max((1.0 - kv_host) * hw[_INV_KV_MEM],
                                            kv_host * sc[S_INV_HOST])
    q_s = w + act + kv
    comm = mb * ops[j, OP_COMM_BYTES]
    t_l = wire = 0.0
    if comm > 0:
        if ops[j, OP_VECTOR] > 0:
            # Expert-parallel all-to-all (the one vector op that sends): every chip sends to
            # and hears from all others at once, one call and one hop (DeepEP's kernels).
            wire = comm
            t_l = hw[_CALL_LAT] + hw[_LINK_LAT] + wire * hw[_INV_LINK]
        elif tp > 1:
            # Ring all-reduce: 2(t-1)/t of the bytes over the links, 2(t-1) hop latencies. A
            # compiled schedule whose chips link to all t-1 peers sends the same bytes as a
            # direct reduce-scatter and all-gather: 2 hops (dse.evaluator.dataflow).
            wire = 2.0 * (tp - 1) / tp * comm
            hops = 2.0 if tp - 1 <= hw[_DIRECT_PEERS] else 2.0 * (tp - 1)
            t_l = hw[_CALL_LAT] + wire * hw[_INV_LINK] + hops * hw[_LINK_LAT]
    return flop, q + q_kv, q_s, comm, wire, t_c, t_m, q_s * hw[_INV_SRAM], t_l
