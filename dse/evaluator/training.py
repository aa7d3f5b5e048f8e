"""Training steps: every candidate x tensor x pipeline x data split x ZeRO stage x
recomputation x pipeline interleave, in one compiled call per scenario.

Per chip, memory holds the model state (16-bit weights and gradients and the optimizer's
fp32 state, workloads.training.STATE_BYTES; split over tp x pp, ZeRO stages shard them over
the dp replicas) and the activations the backward pass keeps (split over tp by sequence
parallelism; 1F1B keeps min(pp, microbatches) microbatches in flight on the first stage,
Narayanan et al., SC 2021, section 2.2.1). Microbatches are one sequence each.

Time: the forward and backward passes of one microbatch run on the roofline
(dse.evaluator.roofline, weights streamed from memory); a full recomputation runs the forward
twice. A step is (m + (p - 1) / v) / p microbatch times: the 1F1B bubble (ibid., 2.2.1),
cut v-fold by v interleaved chunks per chip (2.2.2), each chunk's send to the next stage
overlapping the next chunk; then the exposed data-parallel traffic and the optimizer's
update. Gradients are all-reduced (ZeRO 1-2: a reduce-scatter and an all-gather, the same
bytes) after the last backward, overlapping it; ZeRO-3 gathers the weights for every
forward and backward and reduce-scatters every microbatch's gradients, overlapping that
microbatch's compute (Rajbhandari et al., SC 2020, section 7: 1.5x the data-parallel
volume). Every stage combines with pipelines, as the best software does: Llama 3 shards
optimizer state and gradients under pipeline parallelism (arXiv 2407.21783, section 3.3.2),
though DeepSpeed asserts "ZeRO-2 and ZeRO-3 are incompatible with pipeline parallelism"
(deepspeed/runtime/pipe/engine.py). Traffic stays on the chips' links inside the scale-up
domain and goes over the cluster network past it (hwspace.tables.SCALE_OUT).

``utilization`` is MFU: the model's FLOP (3x the forward's) per second over peak (Chowdhery
et al., PaLM, appendix B); recomputation is work but not model FLOP.
"""

from __future__ import annotations

import numpy as np

from dse.evaluator.columns import (
    C_AREA_OK,
    C_CALL_LAT,
    C_CAPACITY,
    C_HAS_LINKS,
    C_INV_LINK,
    C_INV_MEM,
    C_LINK_LAT,
    C_MEM_PJ,
    C_SRAM_USABLE,
    C_STATIC_W,
    C_TDP_W,
    FITS,
    LIMIT_NONE,
    N_BOUNDS,
    N_CHIP,
    N_REC,
    P_START,
    P_STOP,
    R_BATCH,
    R_BATCH_LIMIT,
    R_BOUND,
    R_DP,
    R_ENERGY,
    R_EP,
    R_FLOP,
    R_LATENCY,
    R_MAX_BATCH,
    R_MEM,
    R_OVERFILL,
    R_PENDING,
    R_PP,
    R_REASON,
    R_REPLICA_BATCH,
    R_RESIDENT,
    R_SHARES,
    R_SPLIT,
    R_THROUGHPUT,
    R_TP,
    R_TPOT,
    R_TTFT,
    REASON_ACTIVATIONS,
    REASON_AREA,
    REASON_LINKS,
    REASON_POWER,
    REASON_WEIGHTS,
    S_LINK_PJ,
    S_W_DENSE,
    SPLIT_DP,
    SPLIT_PP,
    SPLIT_TP,
    SPLIT_TP_INDEX,
    compiled,
    inlined,
    pass_table,
    scenario_vector,
    split_table,
)
from dse.evaluator.efficiency import Efficiency
from dse.evaluator.execution import throttled
from dse.evaluator.fused import better
from dse.evaluator.roofline import (
    K_ENERGY,
    K_FLOP,
    K_MEM,
    K_SHARES,
    K_TIME,
    N_COST,
    op_tables,
    pass_cost,
)
from hwspace.tables import SCALE_OUT
from workloads.ops import Plan
from workloads.precision import parse_dtype
from workloads.scenario import RECOMPUTE_MODES, ZERO_STAGES, Scenario
from workloads.training import STATE_BYTES

__all__ = ["train_splits", "model_state_bytes", "STRATEGY"]

# The extra outputs: ZeRO stage, recomputation (0/1), virtual stages per pipeline stage.
STRATEGY = ("zero", "recompute", "interleave")
# Virtual pipeline stages tried (Narayanan et al., SC 2021, section 2.2.2: the interleaved
# schedule gives each chip v chunks of layers, cutting the bubble v-fold for v-fold sends).
_INTERLEAVE = (1, 2, 4, 8)
# Gradients are kept and reduced in 16 bit: the ZeRO paper's 2 + 2 + K bytes per parameter.
_GRAD_BYTES = 2.0
_LINK, _MEMORY = 3, 1  # indices into BOUNDS
_N_ZERO = len(ZERO_STAGES)

# Training scalars, (N_T,).
(T_PARAMS, T_STATE_BYTES, T_GRAD_BYTES, T_STORED, T_STORED_RECOMPUTE, T_TOKENS, T_BATCH,
 T_ZERO, T_RECOMPUTE, T_INV_NET, T_NET_LAT, T_DOMAIN, T_LAYERS, T_P2P_BYTES, N_T) = range(15)


def _train_vector(plan: Plan, sc: Scenario, sys) -> np.ndarray:
    act = parse_dtype(sc.activations, "activations").bits / 8.0
    v = np.empty(N_T)
    v[T_PARAMS] = plan.param_elems
    v[T_STATE_BYTES] = STATE_BYTES[sc.optimizer]
    v[T_GRAD_BYTES] = _GRAD_BYTES
    v[T_STORED], v[T_STORED_RECOMPUTE] = (x * act for x in plan.stored_act_elems)
    v[T_TOKENS] = plan.items_per_request
    v[T_BATCH] = float(sc.batch)
    v[T_ZERO] = -1 if sc.zero is None else sc.zero
    v[T_RECOMPUTE] = -1 if sc.recompute is None else RECOMPUTE_MODES.index(sc.recompute)
    v[T_INV_NET] = 1.0 / (sys.network_gb_s * 1e9 * SCALE_OUT.bw_efficiency)
    v[T_NET_LAT] = SCALE_OUT.call_latency_s
    v[T_DOMAIN] = sys.scale_up
    v[T_LAYERS] = plan.n_layers
    v[T_P2P_BYTES] = plan.passes[0].p2p_elems * act  # one sequence across a stage boundary
    return v


def train_splits(chips_cols: np.ndarray, plan: Plan, sc: Scenario, sys, eff: Efficiency,
                 n_sys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The record of each candidate's fastest training strategy, (N_REC, n_cand)
    (dse.evaluator.columns R_*), and that strategy, (len(STRATEGY), n_cand).

    Args:
        chips_cols: C_* columns, (N_CHIP, n_cand) (dse.evaluator.columns.chip_columns).
        plan, sc: a ``train`` scenario's passes (forward, backward) and the scenario.
        sys: the system (dse.evaluator.model.System): network, scale-up domain, pinned tp.
        eff: global efficiency factors.
        n_sys: chips per system of each candidate, (n_cand,).
    """
    # At most one replica per sequence of the global batch (DESIGN.md section 8).
    splits, group_start, group, tables = split_table(n_sys, plan, sys.tp, sys.pp,
                                                     max_dp=float(sc.batch), ep_pin=sys.ep)
    act = parse_dtype(sc.activations, "activations").bits / 8.0
    ops = op_tables(plan, [(tp, 1) for tp, _ in tables], act, 0.0, eff)
    n = chips_cols.shape[1]
    out, strategy = np.empty((N_REC, n)), np.empty((len(STRATEGY), n))
    # Pipelines try the interleave asked for, else each of _INTERLEAVE.
    interleaves = np.array(_INTERLEAVE if sc.interleave is None else (sc.interleave,),
                           dtype=np.float64)
    _train(chips_cols, ops, pass_table(plan), scenario_vector(plan, sc, sys, eff),
           _train_vector(plan, sc, sys), interleaves, splits, group_start, group, out, strategy,
           np.empty((2, N_REC)), np.empty((2, N_COST)), np.empty(N_CHIP))
    return out, strategy


@compiled
def _train(chips, ops, passes, sc, tv, interleaves, splits, group_start, group, out,
           strategy, recs, cost, chip):
    """Candidate i's fastest feasible strategy (or its nearest miss) into out[:, i] and
    strategy[:, i]. recs, cost, chip: scratch."""
    for i in range(chips.shape[1]):
        for k in range(N_CHIP):
            chip[k] = chips[k, i]
        g = group[i]
        have = False
        best_z = best_r = best_v = 0.0
        timed_tp = timed_pp = 0
        for s in range(group_start[g], group_start[g + 1]):
            tp, pp = splits[s, SPLIT_TP], splits[s, SPLIT_PP]
            if tp > tv[T_DOMAIN]:
                continue  # tensor parallelism stays inside the scale-up domain
            if tp != timed_tp or pp != timed_pp:  # rows run in (tp, pp) order: time once
                t = ops[splits[s, SPLIT_TP_INDEX]]
                _microbatch(chip, t, passes, sc, 0, tp, pp, cost[0])
                _microbatch(chip, t, passes, sc, 1, tp, pp, cost[1])
                timed_tp, timed_pp = tp, pp
            if have and recs[0, R_REASON] == FITS and _upper_bound(
                    tv, splits[s, SPLIT_DP], pp, cost) <= recs[0, R_THROUGHPUT]:
                continue  # no strategy of this split can beat the best feasible one
            for vi in range(interleaves.shape[0] if pp > 1 else 1):
                v = interleaves[vi] if pp > 1 else 1.0  # no pipeline, nothing to interleave
                if v > 1 and (pp * v > tv[T_LAYERS]
                              or np.ceil(tv[T_BATCH] / splits[s, SPLIT_DP]) < pp):
                    continue  # interleaving needs a layer per chunk and pp microbatches
                for z in range(_N_ZERO):
                    if tv[T_ZERO] >= 0 and z != tv[T_ZERO]:
                        continue
                    for r in range(2):
                        if tv[T_RECOMPUTE] >= 0 and r != tv[T_RECOMPUTE]:
                            continue
                        _step(chip, sc, tv, splits, s, z, r, v, cost, recs[1])
                        if not have or better(recs[1], recs[0]):
                            for k in range(N_REC):
                                recs[0, k] = recs[1, k]
                            best_z, best_r, best_v, have = z, r, v, True
        if not have:  # pins leave no split (tp past the domain, interleave past the layers)
            out[:, i] = np.nan
            out[R_REASON, i] = REASON_LINKS
            strategy[:, i] = np.nan
            continue
        recs[0, R_BOUND] = np.argmax(recs[0, R_SHARES:R_SHARES + N_BOUNDS])
        for k in range(N_REC):
            out[k, i] = recs[0, k]
        strategy[0, i], strategy[1, i], strategy[2, i] = best_z, best_r, best_v


@inlined
def _upper_bound(tv, dp, pp, cost):
    """Tokens/s no strategy of a split beats: a step takes at least its microbatches'
    forward and backward time over the stages (no bubble, sends, recomputation, traffic or
    throttling; ``_step``)."""
    n_micro = np.ceil(tv[T_BATCH] / dp)
    return tv[T_BATCH] * tv[T_TOKENS] * pp / (n_micro * (cost[0, K_TIME] + cost[1, K_TIME]))


@inlined
def _microbatch(chip, ops, passes, sc, p, tp, pp, cost):
    """Pass ``p`` (0 forward, 1 backward) of one one-sequence microbatch, weights streamed
    from memory, into ``cost``: K_TIME through all stages, the rest per chip. The stage
    boundaries' sends are the step's (``_step``), not the pass's."""
    pass_cost(chip, ops, int(passes[p, P_START]), int(passes[p, P_STOP]), sc, 1.0, 1.0, tp,
              pp, False, False, 0.0, chip[C_SRAM_USABLE], 0.0, cost, cost[:0])


@inlined
def model_state_bytes(params, w_bytes, grad_bytes, state_bytes, zero, dp):
    """Bytes of model state on one chip holding ``params`` parameters, at ZeRO stage
    ``zero`` over ``dp`` replicas: stage 1 shards the optimizer state, 2 the gradients too,
    3 the weights too (Rajbhandari et al., SC 2020, figure 1)."""
    return params * (w_bytes * (1.0 / dp if zero >= 3 else 1.0)
                     + grad_bytes * (1.0 / dp if zero >= 2 else 1.0)
                     + state_bytes * (1.0 / dp if zero >= 1 else 1.0))


@compiled
def _step(chip, sc, tv, splits, s, z, r, v, cost, rec):
    """One training step at split row ``s``, ZeRO stage ``z``, recomputation ``r`` (0/1),
    ``v`` virtual stages per chip, from the microbatch costs ``cost`` (forward, backward),
    into ``rec``."""
    tp, pp, dp = splits[s, SPLIT_TP], splits[s, SPLIT_PP], splits[s, SPLIT_DP]
    n_micro = np.ceil(tv[T_BATCH] / dp)
    shard = tv[T_PARAMS] / (tp * pp)
    w_bytes = sc[S_W_DENSE]
    state = model_state_bytes(shard, w_bytes, tv[T_GRAD_BYTES], tv[T_STATE_BYTES], z, dp)
    stored = tv[T_STORED_RECOMPUTE] if r > 0 else tv[T_STORED]
    acts = stored / tp * min(pp, n_micro) / pp
    if v > 1:  # the first stage runs ahead by (p - 1) / (p v) more (Korthikanti, 4.2.3)
        acts *= 1.0 + (pp - 1.0) / (pp * v)
    total = state + acts
    cap = chip[C_CAPACITY]
    rec[R_OVERFILL] = total / cap
    rec[R_REASON] = FITS
    if not chip[C_AREA_OK] > 0:
        rec[R_REASON] = REASON_AREA
    elif not chip[C_STATIC_W] < chip[C_TDP_W]:
        rec[R_REASON] = REASON_POWER
    elif tp * pp > 1 and not chip[C_HAS_LINKS] > 0:
        rec[R_REASON] = REASON_LINKS
    elif state > cap:
        rec[R_REASON] = REASON_WEIGHTS
    elif not total <= cap:
        rec[R_REASON] = REASON_ACTIVATIONS
    fwd, bwd = cost[0], cost[1]
    # A microbatch runs in p v chunks per pass, each followed by a send to the next stage;
    # a send overlaps the next chunk's compute (Megatron-LM overlaps p2p communication) and
    # each of the tp chips sends its 1/tp (Narayanan et al., section 4.1, scatter/gather).
    # Boundaries between nodes (a pipeline spans ceil(tp pp / domain)) use the network.
    part = tv[T_P2P_BYTES] / tp
    on_links = part * chip[C_INV_LINK] + chip[C_LINK_LAT] + chip[C_CALL_LAT]
    on_net = part * tv[T_INV_NET] + tv[T_NET_LAT]
    across = (np.ceil(tp * pp / tv[T_DOMAIN]) - 1.0) / max(pp - 1.0, 1.0)
    send = 0.0 if pp == 1 else (1.0 - across) * on_links + across * on_net
    chunks = pp * v
    t_micro = chunks * (max((1.0 + r) * fwd[K_TIME] / chunks, send)
                        + max(bwd[K_TIME] / chunks, send))
    bubble = (pp - 1.0) / v
    # Layers that do not divide into pp x v chunks leave the fullest chunk setting the pace
    # (Llama 3 405B: 126 layers on 16 stages).
    chunk = tv[T_LAYERS] / (pp * v)
    t_pipe = (n_micro + bubble) / pp * t_micro * np.ceil(chunk) / chunk
    # Data-parallel traffic per chip, on the links inside the domain, else the network.
    inside = tp * pp * dp <= tv[T_DOMAIN] and chip[C_HAS_LINKS] > 0
    inv_bw = chip[C_INV_LINK] if inside else tv[T_INV_NET]
    call = chip[C_CALL_LAT] if inside else tv[T_NET_LAT]
    ring = (dp - 1.0) / dp
    grads = shard * tv[T_GRAD_BYTES]
    if dp == 1:
        dp_bytes = exposed = 0.0
    elif z >= 3:
        per_micro = ring * (2.0 * shard * w_bytes + grads)
        dp_bytes = n_micro * per_micro
        exposed = n_micro * max(0.0, call + per_micro * inv_bw - t_micro / pp)
    else:
        dp_bytes = 2.0 * ring * grads
        exposed = max(0.0, call + dp_bytes * inv_bw - bwd[K_TIME] / pp)
    # The optimizer reads and writes its shard of the state once per step.
    update_bytes = 2.0 * shard * (w_bytes + tv[T_GRAD_BYTES] + tv[T_STATE_BYTES]) / (
        dp if z >= 1 else 1.0)
    t_update = update_bytes * chip[C_INV_MEM]
    t = t_pipe + exposed + t_update
    energy = (n_micro * ((1.0 + r) * fwd[K_ENERGY] + bwd[K_ENERGY])
              + dp_bytes * 8.0 * sc[S_LINK_PJ] * 1e-12 + update_bytes * chip[C_MEM_PJ] * 1e-12)
    t_full = t
    t, energy = throttled(t_full, energy, chip[C_STATIC_W], chip[C_TDP_W])
    throttle = t / t_full
    rec[R_LATENCY], rec[R_TTFT], rec[R_TPOT] = t, np.nan, np.nan
    rec[R_ENERGY] = energy + chip[C_STATIC_W] * t
    rec[R_FLOP] = 3.0 * fwd[K_FLOP] * tv[T_BATCH] / dp  # model FLOP per chip
    rec[R_MEM] = n_micro * ((1.0 + r) * fwd[K_MEM] + bwd[K_MEM]) + update_bytes
    rec[R_RESIDENT] = 0.0
    rec[R_BATCH], rec[R_REPLICA_BATCH], rec[R_MAX_BATCH] = tv[T_BATCH], n_micro, np.nan
    rec[R_BATCH_LIMIT] = LIMIT_NONE
    rec[R_TP], rec[R_PP], rec[R_DP], rec[R_SPLIT] = tp, pp, dp, s
    rec[R_EP] = 1.0  # training runs without expert parallelism
    rec[R_PENDING] = 0.0
    rec[R_THROUGHPUT] = tv[T_BATCH] * tv[T_TOKENS] / t
    scale = throttle * (n_micro + bubble) / pp * np.ceil(chunk) / chunk
    for q in range(N_BOUNDS):
        rec[R_SHARES + q] = scale * ((1.0 + r) * fwd[K_SHARES + q] + bwd[K_SHARES + q])
    rec[R_SHARES + _LINK] += throttle * exposed
    rec[R_SHARES + _MEMORY] += throttle * t_update
