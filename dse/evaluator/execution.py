"""One replica of one candidate at one tensor x pipeline split, compiled: capacity,
residency, the passes of a request, power capping, and the largest batch that meets the SLOs.

Chips are C_* columns and scenarios S_* vectors (dse.evaluator.columns); a pass is a P_* row whose
operators are rows of the split's operator table (dse.evaluator.roofline).
"""

from __future__ import annotations

import numpy as np

from dse.evaluator.columns import (
    BOUNDS,
    C_CAPACITY,
    C_HOST,
    C_SRAM_USABLE,
    C_STATIC_W,
    C_TDP_W,
    C_WEIGHT_BYTES,
    MAX_BATCH,
    N_BOUNDS,
    P_P2P_ELEMS,
    P_REPEATS,
    P_ROLE,
    P_START,
    P_STOP,
    R_ENERGY,
    R_FLOP,
    R_LATENCY,
    R_MEM,
    R_SHARES,
    R_TPOT,
    R_TTFT,
    ROLE_DECODE,
    ROLE_DRAFT,
    ROLE_MIXED,
    ROLE_PREFILL,
    S_ACT_PEAK_BYTES,
    S_DRAFT_PASS,
    S_DRAFT_WEIGHT,
    S_EXPERT_ELEMS,
    S_GENERATE,
    S_HAS_MIXED,
    S_HOST_BYTES,
    S_HOST_OVERLAP,
    S_HOST_SEQ_S,
    S_HOST_STEP_S,
    S_ITEMS,
    S_KV_SEQ_BYTES,
    S_N_KV_HEADS,
    S_PARAM_ELEMS,
    S_PREFILL_PASS,
    S_SLO,
    S_SLO_PASS,
    S_SLO_WEIGHT,
    S_STATE_SEQ_BYTES,
    compiled,
    inlined,
)
from dse.evaluator.roofline import (
    K_ENERGY,
    K_FLOP,
    K_MEM,
    K_SHARES,
    K_TIME,
    OP_ACT_BYTES,
    pass_cost,
)

__all__ = ["need", "host_time", "capacity_batch", "resident_batch", "spill_free_batch",
           "microbatches", "fits_sram",
           "throttled", "run", "run_detail", "batch_within_slo"]

_SEARCH_STEPS = 10  # regula falsi steps of the SLO batch search
_HOST = BOUNDS.index("host")  # the engine's host time per step


@inlined
def host_time(chip, sc, b, t_chip):
    """The serving engine's host time one step of ``b`` sequences exposes after the chip's
    ``t_chip`` (dse.evaluator.engine): fixed plus per sequence; an overlapping engine
    exposes only what exceeds the chip's step."""
    host = chip[C_HOST] * (sc[S_HOST_STEP_S] + sc[S_HOST_SEQ_S] * max(b, 1.0))
    if sc[S_HOST_OVERLAP] > 0:
        return max(host - t_chip, 0.0)
    return host


@inlined
def need(chip, sc, tp, pp, ep=1):
    """Capacity needs per chip, bytes: (weights split over tp x pp chips, the routed experts
    over ep x tp x pp, KV cache of one sequence with its heads split over at most n_kv_heads
    chips plus its Mamba-2 state split with the Mamba heads over the tp chips, live
    activations per item of the widest operator split over the tp chips that share it).
    Under expert parallelism each group of tp x pp chips keeps its own sequences' KV cache
    and its own copy of the other weights (dse.evaluator.roofline.expert_parallel)."""
    held = sc[S_PARAM_ELEMS]
    if ep > 1:
        held -= sc[S_EXPERT_ELEMS] * (1.0 - 1.0 / ep)
    weights = held * chip[C_WEIGHT_BYTES] / (tp * pp)
    kv_per_seq = (sc[S_KV_SEQ_BYTES] / (min(tp, sc[S_N_KV_HEADS]) * pp)
                  + sc[S_STATE_SEQ_BYTES] / (tp * pp))
    return weights, kv_per_seq, sc[S_ACT_PEAK_BYTES] / tp


@inlined
def capacity_batch(chip, weights, kv_per_seq, act_per_item, pp, host):
    """Largest replica batch whose KV cache and activations fit beside the weights; the KV
    cache may spill to ``host`` bytes of host memory, activations may not."""
    free = chip[C_CAPACITY] - weights
    per_item = kv_per_seq + act_per_item / pp
    b = np.floor((free + host) / per_item) if per_item > 0 else MAX_BATCH
    if act_per_item > 0:
        b = min(b, np.floor(free / (act_per_item / pp)))
    return min(max(b if free >= 0 else 0.0, 0.0), MAX_BATCH)


@inlined
def host_share(chip, sc, weights, kv_per_seq, act_per_item, b, mb):
    """The share of the replica's KV cache that lives in host memory: what does not fit on
    the device beside the weights and a microbatch's activations."""
    kv = b * kv_per_seq
    if sc[S_HOST_BYTES] <= 0 or kv <= 0:
        return 0.0
    room = max(chip[C_CAPACITY] - weights - mb * act_per_item, 0.0)
    return min(max(kv - room, 0.0), sc[S_HOST_BYTES]) / kv


@inlined
def resident_batch(chip, weights, act_per_item, pp):
    """Largest replica batch whose microbatch activations fit in SRAM beside the weights
    (0 where the weights alone do not fit): the batch of the weights-resident regime."""
    free = chip[C_SRAM_USABLE] - weights
    per_micro = np.floor(free / act_per_item) if act_per_item > 0 else MAX_BATCH
    return min(max(per_micro * pp if free > 0 else 0.0, 0.0), MAX_BATCH)


@inlined
def spill_free_batch(chip, ops, passes, sc, pp):
    """Largest replica batch at which every operator of the SLO-bound pass keeps its
    activations in SRAM while the weights stream: past the free SRAM an operator's
    activations start to round-trip memory (dse.evaluator.roofline), so step time grows
    faster there and a larger batch within the SLO can serve less."""
    p = int(sc[S_SLO_PASS])
    widest = 0.0
    for j in range(int(passes[p, P_START]), int(passes[p, P_STOP])):
        widest = max(widest, ops[j, OP_ACT_BYTES])
    if widest <= 0.0:
        return MAX_BATCH
    return min(np.floor(chip[C_SRAM_USABLE] / widest) * pp, MAX_BATCH)


@inlined
def microbatches(b, pp):
    """(microbatches in flight, items per microbatch) of a replica batch on pp stages."""
    n_micro = min(pp, max(b, 1.0))
    return n_micro, b / n_micro


@inlined
def fits_sram(chip, weights, kv_per_seq, act_per_item, b, mb):
    """(weights and a microbatch's activations fit in SRAM, and so does the KV cache)."""
    sram = chip[C_SRAM_USABLE]
    return (weights + mb * act_per_item <= sram,
            weights + b * kv_per_seq + mb * act_per_item <= sram)


@inlined
def throttled(t, dynamic_j, static_w, tdp_w):
    """(time, dynamic energy) of work that takes ``t`` at full clock and ``dynamic_j`` joules,
    capped at TDP by DVFS.

    Dynamic power is C V^2 f and, across a DVFS range, the voltage follows the clock, so power
    falls with the cube of the clock and energy with its square (Kaxiras and Martonosi,
    "Computer Architecture Techniques for Power-Efficiency", 2008, ch. 2). A chip whose work
    would draw R times its headroom over static power slows its clock by R^(1/3): t' = t s,
    E' = E / s^2, E' / t' + static = TDP. Where static power alone reaches TDP nothing fits
    (reason power, checked before any timing); the work is left as it is.
    """
    headroom_w = tdp_w - static_w
    if headroom_w <= 0.0 or dynamic_j <= headroom_w * t:
        return t, dynamic_j
    s = (dynamic_j / (headroom_w * t)) ** (1.0 / 3.0)
    return t * s, dynamic_j / (s * s)


@inlined
def _step(chip, ops, start, stop, sc, p2p_elems, nd, b, tp, pp, cost, detail):
    """(time, energy incl. static) of one step of the pass whose operators are rows
    [start, stop) at replica batch ``b``; ``cost`` receives its K_* figures.

    Capacity decides the regime: weights are resident when they fit in SRAM beside the
    microbatch's activations; the KV cache too when everything fits; KV blocks past the
    device's memory are read from the host tier. Above TDP the chip throttles
    (``throttled``)."""
    weights, kv_per_seq, act_per_item = nd
    n_micro, mb = microbatches(b, pp)
    resident, kv_on_chip = fits_sram(chip, weights, kv_per_seq, act_per_item, b, mb)
    sram_free = max(chip[C_SRAM_USABLE] - resident * weights - kv_on_chip * b * kv_per_seq,
                    0.0)
    kv_host = host_share(chip, sc, weights, kv_per_seq, act_per_item, b, mb)
    pass_cost(chip, ops, start, stop, sc, mb, n_micro, tp, pp, resident, kv_on_chip, kv_host,
              sram_free, p2p_elems, cost, detail)
    # The engine's host time per step, its own share: the chip idles through it (static
    # power only), which leaves the step's dynamic energy more time before TDP caps it.
    host = host_time(chip, sc, b, cost[K_TIME])
    cost[K_TIME] += host
    cost[K_SHARES + _HOST] += host
    static_w = chip[C_STATIC_W]
    t, dynamic_j = throttled(cost[K_TIME], cost[K_ENERGY], static_w, chip[C_TDP_W])
    return t, dynamic_j + static_w * t


@inlined
def _pass_step(chip, ops, passes, sc, p, nd, b, tp, pp, cost):
    return _step(chip, ops, int(passes[p, P_START]), int(passes[p, P_STOP]), sc,
                 passes[p, P_P2P_ELEMS], nd, b, tp, pp, cost, cost[:0])


@inlined
def _repeats(passes, p, sc, b):
    """Times pass ``p`` runs per request batch. A continuously batched ``generate`` runs
    gen_len mixed steps where the replica serves more than one sequence; one sequence has
    nothing to mix with, so it runs its prefill and then its decode steps, as a static batch
    does."""
    if sc[S_HAS_MIXED] > 0 and (b > 1.0) != (passes[p, P_ROLE] == ROLE_MIXED):
        return 0.0
    return passes[p, P_REPEATS]


@compiled
def run(chip, ops, passes, sc, nd, b, tp, pp, rec, cost):
    """All passes of a request batch at replica batch ``b``, into ``rec``'s R_LATENCY,
    R_TTFT, R_TPOT, R_ENERGY, R_FLOP, R_MEM and R_SHARES. ``generate``: latency = prefill of
    the batch + gen_len decode steps (static), or gen_len mixed steps (continuous); TTFT =
    prefill of one prompt; TPOT = the decode-like steps' time per generated token (the mean
    step; speculating: verification and draft steps over the tokens they yield)."""
    latency = energy = flop = mem = steps = 0.0
    ttft = np.nan
    decodes = False
    rec[R_SHARES:R_SHARES + N_BOUNDS] = 0.0
    for p in range(passes.shape[0]):
        k = _repeats(passes, p, sc, b)
        if k == 0.0:
            continue  # a pass this batch does not run
        t, e = _pass_step(chip, ops, passes, sc, p, nd, b, tp, pp, cost)
        latency += k * t
        energy += k * e
        flop += k * cost[K_FLOP]
        mem += k * cost[K_MEM]
        scale = k * t / cost[K_TIME]
        for q in range(N_BOUNDS):
            rec[R_SHARES + q] += scale * cost[K_SHARES + q]
        role = passes[p, P_ROLE]
        if role == ROLE_PREFILL:
            ttft = t
        elif role == ROLE_DECODE or role == ROLE_MIXED or role == ROLE_DRAFT:
            steps += k * t
            decodes = True
    if sc[S_GENERATE] > 0 and b > 1.0:
        # TTFT of one request of a server: the prefill of its own prompt.
        ttft = _pass_step(chip, ops, passes, sc, int(sc[S_PREFILL_PASS]), nd, 1.0, tp, pp,
                          cost)[0]
    rec[R_LATENCY], rec[R_TTFT] = latency, ttft
    rec[R_TPOT] = steps / sc[S_ITEMS] if decodes else np.nan
    rec[R_ENERGY], rec[R_FLOP], rec[R_MEM] = energy, flop, mem


@compiled
def run_detail(chip, ops, passes, sc, nd, b, tp, pp, detail, cost):
    """The DETAIL columns of every operator of every pass at replica batch ``b``, into
    ``detail`` (n_ops of all passes * N_DETAIL,): what ``explain`` shows."""
    for p in range(passes.shape[0]):
        _step(chip, ops, int(passes[p, P_START]), int(passes[p, P_STOP]), sc,
              passes[p, P_P2P_ELEMS], nd, b, tp, pp, cost, detail)


@inlined
def _slo_time(chip, ops, passes, sc, nd, b, tp, pp, cost):
    """The time held to the SLO at replica batch ``b``: the SLO pass's step, or a
    speculating TPOT (verification and draft steps per generated token)."""
    t = _pass_step(chip, ops, passes, sc, int(sc[S_SLO_PASS]), nd, b, tp, pp, cost)[0]
    t *= sc[S_SLO_WEIGHT]
    if sc[S_DRAFT_PASS] >= 0:
        t += sc[S_DRAFT_WEIGHT] * _pass_step(chip, ops, passes, sc, int(sc[S_DRAFT_PASS]), nd,
                                             b, tp, pp, cost)[0]
    return t


@compiled
def batch_within_slo(chip, ops, passes, sc, nd, b_cap, tp, pp, cost):
    """Largest replica batch <= ``b_cap`` whose SLO-bound time (``_slo_time``) meets its SLO.

    Step time grows with the batch almost linearly, so regula falsi between a feasible and an
    infeasible batch converges in a few steps; each step keeps the bracket, so the answer is
    always feasible. A batch of 1 is kept where even it misses, so the miss is reported.
    """
    p, slo = int(sc[S_SLO_PASS]), sc[S_SLO]
    hi = max(b_cap, 1.0)
    if p < 0 or hi <= 1.0:
        return hi
    t_hi = _slo_time(chip, ops, passes, sc, nd, hi, tp, pp, cost)
    lo = 1.0
    t_lo = _slo_time(chip, ops, passes, sc, nd, lo, tp, pp, cost)
    if t_hi <= slo:
        return hi
    if not (t_hi > slo and t_lo <= slo):
        return lo
    for step in range(_SEARCH_STEPS):
        if hi - lo <= 1:
            break
        guess = lo + (slo - t_lo) * (hi - lo) / (t_hi - t_lo)
        if step % 3 == 2:  # a bisection step now and then guarantees progress
            guess = (lo + hi) / 2.0
        guess = min(max(np.floor(guess), lo + 1), hi - 1)
        t = _slo_time(chip, ops, passes, sc, nd, guess, tp, pp, cost)
        if t <= slo:
            lo, t_lo = guess, t
        else:
            hi, t_hi = guess, t
    return lo
