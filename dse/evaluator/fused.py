"""The fused evaluator: every candidate x every expert x tensor x pipeline x data split of its
system, in one compiled call per scenario.

For each candidate, each split: capacity decides the replica batch (or the SLO batch search
does), then feasibility; the passes are timed only where the split can run at all, since a
split that cannot (area, links, weights, KV cache) is ranked by how near it comes to fitting,
never by its speed. The best split wins (DESIGN.md section 4: "the evaluator picks the best
feasible split"); a winner that cannot run is timed last, for its ``bound``. Under expert
parallelism a replica's ep groups of tp x pp chips each serve their own sequences
(dse.evaluator.roofline.expert_parallel): the batch is shared over dp x ep groups.
"""

from __future__ import annotations

import numpy as np

from dse.evaluator.columns import (
    C_AREA_OK,
    C_CAPACITY,
    C_HAS_LINKS,
    C_STATIC_W,
    C_TDP_W,
    FITS,
    LIMIT_KV_CACHE,
    LIMIT_MAX_NUM_SEQS,
    LIMIT_NONE,
    LIMIT_SRAM,
    LIMIT_STATIC,
    MAX_BATCH,
    N_BOUNDS,
    N_CHIP,
    N_REC,
    R_BATCH,
    R_BATCH_LIMIT,
    R_BOUND,
    R_DP,
    R_EP,
    R_LATENCY,
    R_MAX_BATCH,
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
    REASON_AREA,
    REASON_KV_CACHE,
    REASON_LINKS,
    REASON_POWER,
    REASON_TPOT_SLO,
    REASON_TTFT_SLO,
    REASON_WEIGHTS,
    S_BATCH,
    S_HAS_MIXED,
    S_HOST_BYTES,
    S_ITEMS,
    S_MAX_SEQS,
    S_SLO_LIMIT,
    S_SLO_PASS,
    S_TPOT_SLO,
    S_TTFT_SLO,
    SPLIT_DP,
    SPLIT_EP,
    SPLIT_PP,
    SPLIT_TP,
    SPLIT_TP_INDEX,
    chip_columns,
    compiled,
    inlined,
    pass_table,
    scenario_vector,
    split_table,
)
from dse.evaluator.efficiency import Efficiency
from dse.evaluator.execution import (
    batch_within_slo,
    capacity_batch,
    fits_sram,
    host_time,
    microbatches,
    need,
    resident_batch,
    run,
    run_detail,
    spill_free_batch,
)
from dse.evaluator.roofline import DETAIL, N_COST, op_tables
from hwspace.derived import ChipDerived
from hwspace.spec import ChipArrays
from workloads.ops import Plan
from workloads.precision import parse_dtype
from workloads.scenario import Scenario

__all__ = ["best_splits", "pass_detail", "better"]


def _op_tables(plan: Plan, sc: Scenario, tables: list[tuple[int, int]],
               eff: Efficiency) -> np.ndarray:
    """The operator table of each (tensor, expert)-parallel pair, (len(tables), n_ops, N_OP)."""
    act, kv = (parse_dtype(x, f).bits / 8.0 for x, f in ((sc.activations, "activations"),
                                                        (sc.kv_cache, "kv_cache")))
    return op_tables(plan, tables, act, kv, eff, sc.expert_skew)


def best_splits(chips: ChipArrays, der: ChipDerived, plan: Plan, sc: Scenario, sys,
                eff: Efficiency, n_sys: np.ndarray) -> np.ndarray:
    """The record of each candidate's best split, (N_REC, n_cand) (dse.evaluator.columns R_*).

    Args:
        chips, der: n_cand candidates and their derived figures.
        plan, sc: the scenario's passes and the scenario.
        sys: the system (dse.evaluator.model.System): SLOs, scheduler cap, pinned split.
        eff: global efficiency factors.
        n_sys: chips per system of each candidate, (n_cand,).
    """
    splits, group_start, group, tables = split_table(n_sys, plan, sys.tp, sys.pp,
                                                     ep_pin=sys.ep)
    out = np.empty((N_REC, chips.n))
    # Scratch for the compiled code, which allocates nothing: two records that swap roles
    # (best so far, trial), one for the resident-batch alternative, a step's cost, a chip.
    scratch = (np.empty((3, N_REC)), np.empty(N_COST), np.empty(N_CHIP))
    _evaluate(chip_columns(chips, der, sc, eff), _op_tables(plan, sc, tables, eff),
              pass_table(plan), scenario_vector(plan, sc, sys, eff), splits, group_start,
              group, out, *scratch)
    return out


def pass_detail(chips: ChipArrays, der: ChipDerived, plan: Plan, sc: Scenario, sys,
                eff: Efficiency, split: tuple[int, int, int], b: float) -> dict[str, dict]:
    """Per-operator DETAIL arrays of one candidate at split (tp, pp, ep) and batch ``b`` per
    group of tp x pp chips: {pass name: {DETAIL column: (n_ops,)}}, and per pass
    ``host_s``: the serving engine's host time of one step (dse.evaluator.engine)."""
    tp, pp, ep = split
    chip = chip_columns(chips, der, sc, eff)[:, 0]
    vec = scenario_vector(plan, sc, sys, eff)
    ops = _op_tables(plan, sc, [(tp, ep)], eff)[0]
    detail = np.zeros((ops.shape[0], len(DETAIL)))
    run_detail(chip, ops, pass_table(plan), vec, need(chip, vec, tp, pp, ep), float(b), tp,
               pp, detail.reshape(-1), np.empty(N_COST))
    out, start = {}, 0
    for p in plan.passes:
        rows = detail[start:start + p.ops.n_ops]
        out[p.name] = {k: rows[:, q] for q, k in enumerate(DETAIL)}
        # An overlapping engine hides what the chip's step covers (its operators' time).
        out[p.name]["host_s"] = float(host_time(chip, vec, float(b),
                                                float(rows[:, DETAIL.index("time_s")].sum())))
        start += p.ops.n_ops
    return out


@compiled
def _evaluate(chips, ops, passes, sc, splits, group_start, group, out, recs, cost, chip):
    """Candidate i's best split among rows [group_start[g], group_start[g + 1]) of
    ``splits``, g = group[i], into out[:, i].

    Args:
        chips: C_* columns, (N_CHIP, n_cand). ops: operator tables, (n_tp, n_ops, N_OP).
        passes: P_* rows. sc: S_* scalars. splits: SPLIT_* rows (dse.evaluator.columns).
        out: receives the records, (N_REC, n_cand). recs, cost, chip: scratch.
    """
    alt = recs[2]
    for i in range(chips.shape[1]):
        _copy(chips[:, i], chip)  # contiguous: the hot loops read it once per operator
        g = group[i]
        best, trial = 0, 1  # rows of ``recs``: swapped, never copied, when a split wins
        _split_record(chip, ops, passes, sc, splits, group_start[g], recs[best], alt, cost)
        for s in range(group_start[g] + 1, group_start[g + 1]):
            _split_record(chip, ops, passes, sc, splits, s, recs[trial], alt, cost)
            if better(recs[trial], recs[best]):
                best, trial = trial, best
        if recs[best, R_PENDING] > 0:
            s = int(recs[best, R_SPLIT])
            nd = need(chip, sc, splits[s, SPLIT_TP], splits[s, SPLIT_PP], splits[s, SPLIT_EP])
            _time_passes(chip, ops, passes, sc, splits, nd, recs[best], cost)
        recs[best, R_BOUND] = _argmax(recs[best, R_SHARES:R_SHARES + N_BOUNDS])
        _copy(recs[best], out[:, i])


@inlined
def _copy(src, dst):
    for k in range(src.shape[0]):
        dst[k] = src[k]


@inlined
def _argmax(x):
    """np.argmax: the first largest element, or the first NaN."""
    k = 0
    for q in range(1, x.shape[0]):
        if x[k] == x[k] and not x[q] <= x[k]:
            k = q
    return k


@inlined
def better(new, best):
    """Feasible beats infeasible; then higher throughput; infeasible ones by how close they
    come to fitting (so the reported reason is the nearest miss)."""
    new_fits, best_fits = new[R_REASON] == FITS, best[R_REASON] == FITS
    if new_fits and best_fits:
        return new[R_THROUGHPUT] > best[R_THROUGHPUT]
    if new_fits or best_fits:
        return new_fits
    return new[R_OVERFILL] < best[R_OVERFILL]


@compiled
def _split_record(chip, ops, passes, sc, splits, s, rec, alt, cost):
    """The record of split row ``s`` into ``rec`` (``alt``: scratch). ``dp`` here counts the
    groups of tp x pp chips that serve their own sequences: dp x ep."""
    tp, pp, ep = splits[s, SPLIT_TP], splits[s, SPLIT_PP], splits[s, SPLIT_EP]
    dp = splits[s, SPLIT_DP] * ep
    nd = need(chip, sc, tp, pp, ep)
    weights, kv_per_seq, act_per_item = nd
    b_mem = capacity_batch(chip, weights, kv_per_seq, act_per_item, pp, sc[S_HOST_BYTES])
    b_cap = min(b_mem, sc[S_MAX_SEQS])
    cap_limit = (LIMIT_NONE if b_cap >= MAX_BATCH
                 else LIMIT_MAX_NUM_SEQS if sc[S_MAX_SEQS] < b_mem else LIMIT_KV_CACHE)
    asked_batch = sc[S_BATCH]
    if asked_batch > 0:
        # A fixed batch beyond what memory (or the scheduler) admits runs in waves of what
        # fits, as vLLM and TensorRT-LLM queue requests when KV blocks run out; a design with
        # no room for one sequence cannot serve it (reason kv_cache).
        asked = np.ceil(asked_batch / dp)
        if 1.0 <= b_cap < asked:
            _at_batch(chip, ops, passes, sc, splits, s, nd, b_cap, b_cap * dp, b_cap, rec, cost,
                      cap_limit)
        else:
            _at_batch(chip, ops, passes, sc, splits, s, nd, asked, asked_batch, b_cap, rec,
                      cost, LIMIT_NONE)
        b = min(asked, b_cap)
    else:
        b = batch_within_slo(chip, ops[splits[s, SPLIT_TP_INDEX]], passes, sc, nd, b_cap, tp,
                             pp, cost)
        _at_batch(chip, ops, passes, sc, splits, s, nd, b, b * dp, b_cap, rec, cost,
                  sc[S_SLO_LIMIT] if b < max(b_cap, 1.0) else cap_limit)
    # Throughput is monotone in the batch past what the device holds (each sequence more
    # adds the same host-link time), so the best batch with a host tier is the largest or
    # the largest that stays on the device (waves of it, for a fixed batch).
    b_dev = capacity_batch(chip, weights, kv_per_seq, act_per_item, pp, 0.0)
    if sc[S_HOST_BYTES] > 0 and 1.0 <= b_dev < b:
        _at_batch(chip, ops, passes, sc, splits, s, nd, b_dev, b_dev * dp, b_cap, alt, cost,
                  LIMIT_KV_CACHE)
        if better(alt, rec):
            _copy(alt, rec)
    if asked_batch > 0:
        return
    # The largest batch is not the fastest where a smaller one keeps weights and activations
    # on chip (CNNs on SRAM-rich chips: data streams through resident weights).
    b_res = resident_batch(chip, weights, act_per_item, pp)
    if 1.0 <= b_res < b:
        _at_batch(chip, ops, passes, sc, splits, s, nd, b_res, b_res * dp, b_cap, alt, cost,
                  LIMIT_SRAM)
        if better(alt, rec):
            _copy(alt, rec)
    # Nor, under an SLO, past the batch where activations start to spill: the search takes
    # the largest batch within the SLO, which more resources then made slower.
    if sc[S_SLO_PASS] >= 0:
        b_ns = spill_free_batch(chip, ops[splits[s, SPLIT_TP_INDEX]], passes, sc, pp)
        if 1.0 <= b_ns < b and b_ns != b_res:
            _at_batch(chip, ops, passes, sc, splits, s, nd, b_ns, b_ns * dp, b_cap, alt, cost,
                      LIMIT_SRAM)
            if better(alt, rec):
                _copy(alt, rec)
    # Nor where one sequence per replica, served as a static batch, beats the mixed steps
    # (each carrying prompt work) continuous batching runs at two or more: the largest
    # batch was then chosen by more resources and ran slower (tests/dse/test_properties.py).
    if sc[S_HAS_MIXED] > 0 and b > 1.0:
        _at_batch(chip, ops, passes, sc, splits, s, nd, 1.0, dp, b_cap, alt, cost,
                  LIMIT_STATIC)
        if better(alt, rec):
            _copy(alt, rec)


@inlined
def _at_batch(chip, ops, passes, sc, splits, s, nd, b, batch, b_cap, rec, cost, limit):
    """Split row ``s`` at replica batch ``b`` (system batch ``batch``, set by ``limit``, a
    BATCH_LIMITS code) into ``rec``; ``b`` is per group of tp x pp chips."""
    tp, pp, ep = splits[s, SPLIT_TP], splits[s, SPLIT_PP], splits[s, SPLIT_EP]
    weights, kv_per_seq, act_per_item = nd
    mb = microbatches(b, pp)[1]
    # On the device: what the host tier cannot take of the KV cache.
    total = weights + b * kv_per_seq + mb * act_per_item - min(b * kv_per_seq,
                                                                sc[S_HOST_BYTES])
    dp = splits[s, SPLIT_DP]
    rec[R_BATCH], rec[R_REPLICA_BATCH], rec[R_MAX_BATCH] = batch, b, b_cap * dp * ep
    rec[R_BATCH_LIMIT] = limit
    rec[R_TP], rec[R_PP], rec[R_DP], rec[R_EP], rec[R_SPLIT] = tp, pp, dp, ep, s
    rec[R_OVERFILL] = total / chip[C_CAPACITY]
    rec[R_RESIDENT] = fits_sram(chip, weights, kv_per_seq, act_per_item, b, mb)[0]
    rec[R_REASON] = _cannot_run(chip, weights, total, ep * tp * pp)
    rec[R_PENDING] = rec[R_REASON] != FITS
    rec[R_THROUGHPUT] = np.nan
    if rec[R_PENDING] > 0:
        return
    _time_passes(chip, ops, passes, sc, splits, nd, rec, cost)
    if rec[R_TPOT] > sc[S_TPOT_SLO]:
        rec[R_REASON] = REASON_TPOT_SLO
    elif rec[R_TTFT] > sc[S_TTFT_SLO]:
        rec[R_REASON] = REASON_TTFT_SLO


@inlined
def _cannot_run(chip, weights, total, chips_per_replica):
    """The checks of a design that cannot run: the first that fails (FITS: none)."""
    if not chip[C_AREA_OK] > 0:
        return REASON_AREA
    if not chip[C_STATIC_W] < chip[C_TDP_W]:
        return REASON_POWER
    if chips_per_replica > 1 and not chip[C_HAS_LINKS] > 0:
        return REASON_LINKS
    if weights > chip[C_CAPACITY]:
        return REASON_WEIGHTS
    if not total <= chip[C_CAPACITY]:
        return REASON_KV_CACHE
    return FITS


@compiled
def _time_passes(chip, ops, passes, sc, splits, nd, rec, cost):
    """Times the passes of ``rec``'s split and batch (capacity needs ``nd``): latency, TTFT,
    TPOT, energy, FLOP, bytes, bound shares and throughput."""
    s = int(rec[R_SPLIT])
    run(chip, ops[splits[s, SPLIT_TP_INDEX]], passes, sc, nd, rec[R_REPLICA_BATCH],
        splits[s, SPLIT_TP], splits[s, SPLIT_PP], rec, cost)
    rec[R_PENDING] = 0.0
    rec[R_THROUGHPUT] = rec[R_BATCH] * sc[S_ITEMS] / rec[R_LATENCY]
