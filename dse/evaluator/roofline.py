"""Per-operator roofline of one pass on one tensor x pipeline split: the evaluator's hot path.

Every array is (n_cand, n_ops) or (n_cand,). For each operator instance on one chip:
time = max(compute, off-chip memory, SRAM, link) + fixed overhead (DESIGN.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from dse.evaluator.efficiency import Efficiency
from hwspace.tables import LINK_PJ_PER_BIT
from workloads.ops import ATTENTION, MATMUL, REDUCTION, Pass

__all__ = ["ChipView", "PassCost", "pass_cost", "BOUNDS", "DETAIL"]

BOUNDS = ("compute", "memory", "sram", "link", "overhead")
# Partial sums are all-reduced in 16-bit even when activations are 8-bit (NCCL reduces
# fp16/bf16; an fp8 sum of 8 partials would lose the precision the quantisation kept).
_REDUCE_BYTES = 2.0


@dataclass(frozen=True)
class ChipView:
    """What the roofline reads of each candidate for one scenario's precision, (n_cand,)."""

    peak_flop_per_s: np.ndarray  # at the math dtype class
    inv_peak_flop_s: np.ndarray  # 1 / (peak * compute_max): what the kernel multiplies by
    inv_vector_ratio: np.ndarray  # matrix peak / vector-unit FLOP/s
    inv_sparse_speedup: np.ndarray  # FLOP multiplier of sparse-eligible ops (1: dense)
    weight_bytes: np.ndarray  # per weight of a sparse-eligible op (2:4 where supported)
    dense_weight_bytes: float  # per weight of other ops
    act_bytes: float
    kv_bytes: float
    mem_bw_bytes_per_s: np.ndarray
    inv_sram_bw: np.ndarray
    collective_bw_bytes_per_s: np.ndarray  # all links, one direction, times the kind's share
    link_latency_s: np.ndarray  # per hop
    call_latency_s: np.ndarray  # per collective call (0 on dataflow chips: a static schedule)
    op_overhead_s: np.ndarray  # per operator instance (0 on dataflow chips)
    dequant_flop_per_weight: float  # vector work to unpack weight-only formats (0: none)
    capacity_bytes: np.ndarray  # usable memory + SRAM
    sram_usable_bytes: np.ndarray
    has_memory: np.ndarray
    flop_pj: np.ndarray
    mem_pj_per_byte: np.ndarray
    sram_pj_per_byte: np.ndarray
    static_w: np.ndarray
    tdp_w: np.ndarray

    @property
    def n(self) -> int:
        return int(self.peak_flop_per_s.shape[0])

    def take(self, idx: np.ndarray) -> ChipView:
        return ChipView(**{
            k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()
        })


@dataclass(frozen=True)
class PassCost:
    """One step of a pass for one replica: time and per-chip totals, (n_cand,) each."""

    time_s: np.ndarray
    energy_j: np.ndarray  # per chip, dynamic only
    flop: np.ndarray  # executed per chip
    mem_bytes: np.ndarray  # off-chip per chip
    shares_s: np.ndarray  # (n_cand, len(BOUNDS)) time attributed to each bound
    detail: dict | None = None  # per-operator arrays (n_cand, n_ops) when asked


def pass_cost(chip: ChipView, p: Pass, b: np.ndarray, tp: int, pp: int, heads: tuple[int, int],
              moe: tuple[int, int], resident: np.ndarray, kv_on_chip: np.ndarray,
              sram_free: np.ndarray, eff: Efficiency, detail: bool = False) -> PassCost:
    """One step of pass ``p`` at replica batch ``b`` (n_cand,) on a tp x pp split.

    The replica's batch runs as min(pp, b) microbatches; each chip holds 1/pp of the layers
    and 1/tp of each layer, so a step is the sum over all operators at the microbatch size.
    ``heads`` = (n_heads, n_kv_heads) bound how attention splits across tensor-parallel chips;
    ``moe`` = (experts, top_k) of MoE layers.
    """
    ops = p.ops
    n = chip.n
    n_micro = np.minimum(pp, np.maximum(b, 1.0))
    mb = b / n_micro
    # Per-operator constants, hoisted out of the kernel: tensor-parallel splits and bytes.
    split = np.where(ops.tp_split, float(tp), 1.0)
    head_split = float(min(tp, heads[0]))
    fsplit = np.where(ops.kind == ATTENTION, head_split, split)
    kv_split = np.where(ops.tp_split, float(min(tp, heads[1])), 1.0)
    is_mm = ops.kind <= ATTENTION
    op = np.stack([
        ops.flop / fsplit,  # 0 FLOP per item per chip (dense)
        ops.m,  # 1 rows per item
        ops.weight_elems / split,  # 2 weights per chip
        (ops.act_in_elems + ops.act_out_elems) * chip.act_bytes / fsplit,  # 3 act bytes
        (ops.kv_read_elems + ops.kv_write_elems) * chip.kv_bytes / kv_split,  # 4 KV bytes
        np.where(ops.kind == MATMUL, 2.0 * (ops.n / split) * ops.k * chip.act_bytes, 0.0),  # 5 HK
        np.where(ops.kind == ATTENTION, 2.0 * ops.score_elems * chip.act_bytes / head_split,
                 0.0),  # 6 materialised scores
        np.where(ops.kind == ATTENTION, 4.0 * eff.flash_tile_rows * ops.k * chip.act_bytes,
                 np.inf),  # 7 flash tile bytes
        ops.comm_elems * max(chip.act_bytes, _REDUCE_BYTES),  # 8 all-reduce bytes
        eff.reduction_latency_s * (ops.kind == REDUCTION),  # 9 barrier latency
        ops.count,  # 10
        np.where(is_mm, 0.0, 1.0),  # 11 vector op
        ops.sparse.astype(float),  # 12
        ops.moe.astype(float),  # 13
        np.where(ops.kind == REDUCTION, ops.reduce_len * chip.act_bytes, 0.0),  # 14 (never < 0)
    ], axis=1)
    with np.errstate(divide="ignore"):
        inv_mem = np.where(chip.has_memory, 1.0 / (chip.mem_bw_bytes_per_s * eff.memory), 0.0)
        inv_kv_mem = inv_mem * (eff.memory / eff.kv_memory)
        inv_link = 1.0 / chip.collective_bw_bytes_per_s
    inv_sqrt_buf = np.sqrt(chip.act_bytes / np.maximum(sram_free, chip.act_bytes))
    scal = np.array([chip.dense_weight_bytes, float(tp), float(moe[0]), float(moe[1]),
                     eff.m_half, LINK_PJ_PER_BIT, chip.dequant_flop_per_weight])
    sums = np.zeros((n, 4 + len(BOUNDS)))
    per_op = np.zeros((n if detail else 0, ops.n_ops, len(DETAIL)))
    _kernel(mb, chip.inv_peak_flop_s, chip.inv_vector_ratio, chip.inv_sparse_speedup,
            chip.weight_bytes, inv_mem, inv_kv_mem,
            chip.inv_sram_bw, inv_link, chip.link_latency_s, chip.call_latency_s,
            chip.op_overhead_s, chip.has_memory, resident,
            kv_on_chip, sram_free, inv_sqrt_buf, chip.flop_pj, chip.mem_pj_per_byte,
            chip.sram_pj_per_byte, op, scal, sums, per_op)
    p2p = 0.0
    if pp > 1:
        # A stage boundary: one send per microbatch hop (a collective-library call on GPUs).
        p2p = (pp - 1) * (mb * p.p2p_elems * chip.act_bytes * inv_link + chip.link_latency_s
                          + chip.call_latency_s)
    # Each chip runs its 1/pp of the layers for every microbatch: n_micro / pp of the sums.
    duty = n_micro / pp
    return PassCost(
        time_s=sums[:, 0] + p2p,
        energy_j=duty * sums[:, 1] * 1e-12,
        flop=duty * sums[:, 2],
        mem_bytes=duty * sums[:, 3],
        shares_s=sums[:, 4:],
        detail={name: per_op[:, :, k] for k, name in enumerate(DETAIL)} if detail else None,
    )


DETAIL = ("flop", "mem_bytes", "sram_bytes", "link_bytes", "t_compute", "t_memory", "t_sram",
          "t_link", "time_s", "bound", "overhead_s")


@numba.njit(cache=True, error_model="numpy")
def _kernel(mb_c, inv_peak_c, inv_vec_c, inv_sparse_c, w_sparse_c, inv_mem_c, inv_kv_mem_c,
            inv_sram_c, inv_link_c, link_lat_c, call_lat_c, op_ovh_c, has_mem_c, resident_c,
            kv_on_chip_c, sram_free_c, inv_sqrt_buf_c, flop_pj_c, mem_pj_c, sram_pj_c, op, scal,
            sums, per_op):
    """Fused roofline over candidates x operators (see the module docstring).

    Candidate columns are (n_cand,); ``op`` (n_ops, 15) holds the operator columns stacked by
    ``pass_cost``; ``sums`` (n_cand, 9) receives time, energy (pJ), FLOP, off-chip bytes and
    the time per bound; ``per_op`` (n_cand or 0, n_ops, len(DETAIL)) the per-operator detail.
    """
    w_dense, tp, experts, top_k, m_half, link_pj, dequant = scal
    want = per_op.shape[0] > 0
    for i in range(mb_c.shape[0]):
        mb, inv_peak, inv_vec, inv_sparse = mb_c[i], inv_peak_c[i], inv_vec_c[i], inv_sparse_c[i]
        w_sparse, inv_mem, inv_kv_mem, inv_sram = (w_sparse_c[i], inv_mem_c[i],
                                                   inv_kv_mem_c[i], inv_sram_c[i])
        inv_link, link_lat, call_lat = inv_link_c[i], link_lat_c[i], call_lat_c[i]
        op_ovh = op_ovh_c[i]
        has_mem, resident, kv_on_chip = has_mem_c[i], resident_c[i], kv_on_chip_c[i]
        sram_free, inv_sqrt_buf = sram_free_c[i], inv_sqrt_buf_c[i]
        flop_pj, mem_pj, sram_pj = flop_pj_c[i], mem_pj_c[i], sram_pj_c[i]
        acc = np.zeros(9)
        for j in range(op.shape[0]):
            flop = mb * op[j, 0]
            if op[j, 12] > 0:
                flop *= inv_sparse
            rows = mb * op[j, 1]
            # Compute: matrix units lose efficiency on small-M products, down to the rate of
            # the vector units that can run a matrix-vector product; vector ops run there.
            if op[j, 11] > 0:
                t_c = flop * inv_peak * inv_vec
            else:
                t_c = flop * inv_peak * min(inv_vec, (rows + m_half) / rows) if flop > 0 else 0.0
            # Weights: an MoE layer reads only the experts its tokens touch, E(1-(1-k/E)^T).
            w_elems = op[j, 2]
            if op[j, 13] > 0:
                w_elems *= 1.0 - (1.0 - top_k / experts) ** rows
            w = w_elems * (w_sparse if op[j, 12] > 0 else w_dense)
            # Weight-only formats are unpacked on the vector units once per weight read.
            t_c += w_elems * dequant * inv_peak * inv_vec
            act = mb * op[j, 3]
            kv = mb * op[j, 4]
            # Off-chip: resident weights cost nothing per pass; spilled activations round
            # trip; a streamed matmul moves >= 2MNK/sqrt(S/b) elements (Hong-Kung); attention
            # without room for a flash tile materialises its score matrix.
            streamed = 0.0 if resident else w
            if has_mem and act > sram_free:
                streamed += act
            q = streamed
            if streamed > 0:
                q = max(q, rows * op[j, 5] * inv_sqrt_buf)
            if has_mem and sram_free < op[j, 7]:
                q += mb * op[j, 6]
            # A reduction is a barrier: when the vector it scans does not fit on chip, the
            # vector makes a round trip through memory.
            if has_mem and sram_free < op[j, 14]:
                q += act
            q_kv = 0.0 if kv_on_chip else kv
            t_m = q * inv_mem + q_kv * inv_kv_mem
            q += q_kv
            q_s = w + act + kv
            t_s = q_s * inv_sram
            comm = mb * op[j, 8]
            t_l = 0.0
            if tp > 1 and comm > 0:
                t_l = (call_lat + 2.0 * (tp - 1) / tp * comm * inv_link
                       + 2.0 * (tp - 1) * link_lat)
            t_max = max(max(t_c, t_m), max(t_s, t_l))
            c = op[j, 10]
            ovh = op_ovh + op[j, 9]
            acc[0] += c * (t_max + ovh)
            acc[1] += c * (flop * flop_pj + q * mem_pj + q_s * sram_pj
                           + 2.0 * (tp - 1) / tp * comm * 8.0 * link_pj)
            acc[2] += c * flop
            acc[3] += c * q
            bound = 0 if t_c >= t_max else (1 if t_m >= t_max else (2 if t_s >= t_max else 3))
            acc[4 + bound] += c * t_max
            acc[8] += c * ovh
            if want:
                d = per_op[i, j]
                d[0], d[1], d[2], d[3], d[4] = flop, q, q_s, comm if tp > 1 else 0.0, t_c
                d[5], d[6], d[7], d[8], d[9] = t_m, t_s, t_l, c * (t_max + ovh), bound
                d[10] = c * ovh
        sums[i] = acc
