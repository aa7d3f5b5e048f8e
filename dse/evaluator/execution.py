"""One replica at one tensor x pipeline split: capacity, residency, the passes of a request,
power capping, and the largest batch that meets the SLOs. Arrays are (n_cand,)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.evaluator.efficiency import Efficiency
from dse.evaluator.roofline import BOUNDS, ChipView, PassCost, pass_cost
from workloads.ops import Pass, Plan

__all__ = ["Need", "need", "capacity_batch", "resident_batch", "Run", "run",
           "batch_within_slo"]

_MAX_BATCH = float(1 << 20)  # a batch "as large as memory allows" stops here
_SEARCH_STEPS = 10  # regula falsi steps of the SLO batch search
# vLLM's default KV block: 16 tokens (Kwon et al., SOSP 2023, section 7.2: "block size 16";
# vllm engine args block_size default 16). Waste is at most one block per sequence.
KV_BLOCK_TOKENS = 16


@dataclass(frozen=True)
class Need:
    """Capacity needs per chip (n_cand,): weights, KV cache per sequence, activations per
    item of a microbatch."""

    weights: np.ndarray
    kv_per_seq: np.ndarray
    act_per_item: float

    def total(self, b: np.ndarray, mb: np.ndarray) -> np.ndarray:
        return self.weights + b * self.kv_per_seq + mb * self.act_per_item

    def take(self, idx: np.ndarray) -> Need:
        return Need(self.weights[idx], self.kv_per_seq[idx], self.act_per_item)


def need(view: ChipView, plan: Plan, tp: int, pp: int) -> Need:
    """Weights split over tp x pp chips; KV heads split over at most n_kv_heads of them; the
    live activations of the widest operator split over the tp chips that share it."""
    weights = plan.param_elems * view.weight_bytes / (tp * pp)
    # A paged KV cache holds whole blocks: a sequence's last block is partly empty.
    kv_tokens = np.ceil(plan.kv_tokens / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS
    kv = (plan.kv_elems_per_token * kv_tokens * view.kv_bytes
          / (min(tp, plan.n_kv_heads) * pp))
    act = max(p.act_peak_elems for p in plan.passes) * view.act_bytes / tp
    return Need(weights, np.broadcast_to(kv, weights.shape), act)


def capacity_batch(view: ChipView, nd: Need, pp: int) -> np.ndarray:
    """Largest replica batch whose KV cache and activations fit beside the weights."""
    free = view.capacity_bytes - nd.weights
    per_item = nd.kv_per_seq + nd.act_per_item / pp
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.floor(np.where(per_item > 0, free / per_item, _MAX_BATCH))
    return np.clip(np.where(free >= 0, b, 0.0), 0.0, _MAX_BATCH)


def resident_batch(view: ChipView, nd: Need, pp: int) -> np.ndarray:
    """Largest replica batch whose microbatch activations fit in SRAM beside the weights
    (0 where the weights alone do not fit): the batch of the weights-resident regime."""
    free = view.sram_usable_bytes - nd.weights
    with np.errstate(divide="ignore", invalid="ignore"):
        per_micro = np.floor(np.where(nd.act_per_item > 0, free / nd.act_per_item, _MAX_BATCH))
    return np.clip(np.where(free > 0, per_micro * pp, 0.0), 0.0, _MAX_BATCH)


def _microbatch(b: np.ndarray, pp: int) -> np.ndarray:
    return b / np.minimum(pp, np.maximum(b, 1.0))


def _pass(view: ChipView, plan: Plan, p: Pass, nd: Need, b: np.ndarray, tp: int, pp: int,
          eff: Efficiency, detail: bool = False) -> tuple[np.ndarray, np.ndarray, PassCost]:
    """(time, energy incl. static, cost) of one step of pass ``p`` at replica batch ``b``.

    Capacity decides the regime: weights are resident when they fit in SRAM beside the
    microbatch's activations; the KV cache too when everything fits. Above TDP the chip slows
    down by power / TDP."""
    mb = _microbatch(b, pp)
    resident = nd.weights + mb * nd.act_per_item <= view.sram_usable_bytes
    kv_on_chip = nd.total(b, mb) <= view.sram_usable_bytes
    sram_free = np.maximum(view.sram_usable_bytes - resident * nd.weights
                           - kv_on_chip * b * nd.kv_per_seq, 0.0)
    c = pass_cost(view, p, b, tp, pp, (plan.n_heads, plan.n_kv_heads),
                  (plan.moe_experts, plan.moe_top_k), resident, kv_on_chip, sram_free, eff,
                  detail)
    power = c.energy_j / c.time_s + view.static_w
    t = c.time_s * np.maximum(1.0, power / view.tdp_w)
    return t, c.energy_j + view.static_w * t, c


@dataclass(frozen=True)
class Run:
    """A replica serving one batch of requests (n_cand,) each."""

    latency_s: np.ndarray
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    energy_j: np.ndarray  # per chip, dynamic and static, over the latency
    flop: np.ndarray  # executed per chip
    mem_bytes: np.ndarray  # off-chip per chip
    shares_s: np.ndarray  # (n_cand, len(BOUNDS))
    resident: np.ndarray
    fits_memory: np.ndarray
    detail: dict | None = None


def _single_prompt_ttft(view, plan, nd, b, tp, pp, eff, prefill_t) -> np.ndarray:
    """TTFT of one request of a continuously batched server: the prefill of its own prompt.
    Where the batch is one request it is the batch's prefill."""
    single = b <= 1.0
    if single.all():
        return prefill_t
    prefill = next(p for p in plan.passes if p.name == "prefill")
    t1, _, _ = _pass(view, plan, prefill, nd, np.ones_like(b), tp, pp, eff)
    return np.where(single, prefill_t, t1)


def _repeats(plan: Plan, b: np.ndarray) -> dict[str, np.ndarray]:
    """Times each pass runs per request batch, (n_cand,) per pass. A continuously batched
    ``generate`` (a ``mixed`` pass in the plan) runs gen_len mixed steps where the replica
    serves more than one sequence; one sequence has nothing to mix with, so it runs its
    prefill and then its decode steps, as a static batch does."""
    names = {p.name for p in plan.passes}
    if "mixed" not in names:
        return {p.name: np.full(b.shape, p.repeats) for p in plan.passes}
    mixed = b > 1.0
    return {p.name: np.where(mixed == (p.name == "mixed"), p.repeats, 0.0) for p in plan.passes}


def run(view: ChipView, plan: Plan, nd: Need, b: np.ndarray, tp: int, pp: int,
        eff: Efficiency, detail: bool = False) -> Run:
    """All passes of a request batch at replica batch ``b``. ``generate``: latency = prefill
    of the batch + gen_len decode steps (static), or gen_len mixed steps (continuous);
    TTFT = prefill of one prompt; TPOT = mean step."""
    n = view.n
    latency, energy, flop, mem = (np.zeros(n) for _ in range(4))
    shares = np.zeros((n, len(BOUNDS)))
    times, details = {}, {}
    repeats = _repeats(plan, b)
    for p in plan.passes:
        k = repeats[p.name]
        if not detail and not k.any() and p.name != "prefill":
            continue  # a pass no candidate runs (the prefill is kept: it gives the TTFT)
        t, e, c = _pass(view, plan, p, nd, b, tp, pp, eff, detail)
        times[p.name], details[p.name] = t, c.detail
        latency += k * t
        energy += k * e
        flop += k * c.flop
        mem += k * c.mem_bytes
        shares += (k * t / c.time_s)[:, None] * c.shares_s
    nan = np.full(n, np.nan)
    ttft = times.get("prefill", nan)
    tpot = times.get("decode", nan)
    if plan.phase == "generate":
        ttft = _single_prompt_ttft(view, plan, nd, b, tp, pp, eff, ttft)
        if "mixed" in times:
            tpot = np.where(repeats["mixed"] > 0, times["mixed"], tpot)
    mb = _microbatch(b, pp)
    return Run(latency, ttft, tpot, energy, flop, mem, shares,
               nd.weights + mb * nd.act_per_item <= view.sram_usable_bytes,
               nd.total(b, mb) <= view.capacity_bytes, details if detail else None)


def _bound_pass(plan: Plan, tpot_slo: float | None, ttft_slo: float | None):
    """The pass whose time grows with the batch and is held to an SLO, with that SLO: the
    decode step (TPOT; the mixed step of a continuously batched generate), or the prefill of
    a ``prefill`` scenario (TTFT). A generate TTFT is one prompt's prefill, whatever the
    batch."""
    names = {p.name: p for p in plan.passes}
    if tpot_slo is not None and ("mixed" in names or "decode" in names):
        return names.get("mixed", names.get("decode")), tpot_slo
    if ttft_slo is not None and plan.phase == "prefill":
        return names["prefill"], ttft_slo
    return None, None


def batch_within_slo(view: ChipView, plan: Plan, nd: Need, b_cap: np.ndarray, tp: int,
                     pp: int, tpot_slo: float | None, ttft_slo: float | None,
                     eff: Efficiency) -> np.ndarray:
    """Largest replica batch <= ``b_cap`` whose SLO-bound pass meets its SLO.

    Step time grows with the batch almost linearly, so regula falsi between a feasible and an
    infeasible batch converges in a few steps; each step keeps the bracket, so the answer is
    always feasible. A batch of 1 is kept where even it misses, so the miss is reported.
    """
    p, slo = _bound_pass(plan, tpot_slo, ttft_slo)
    hi = np.maximum(b_cap, 1.0)
    if p is None:
        return hi
    t_hi = _pass(view, plan, p, nd, hi, tp, pp, eff)[0]
    lo = np.ones_like(hi)
    t_lo = _pass(view, plan, p, nd, lo, tp, pp, eff)[0]
    result = np.where(t_hi <= slo, hi, lo)
    active = np.flatnonzero((t_hi > slo) & (t_lo <= slo) & (hi - lo > 1))
    for step in range(_SEARCH_STEPS):
        if active.size == 0:
            break
        a_lo, a_hi = lo[active], hi[active]
        guess = a_lo + (slo - t_lo[active]) * (a_hi - a_lo) / (t_hi[active] - t_lo[active])
        if step % 3 == 2:  # a bisection step now and then guarantees progress
            guess = (a_lo + a_hi) / 2.0
        guess = np.clip(np.floor(guess), a_lo + 1, a_hi - 1)
        t = _pass(view.take(active), plan, p, nd.take(active), guess, tp, pp, eff)[0]
        good = t <= slo
        lo[active] = np.where(good, guess, a_lo)
        t_lo[active] = np.where(good, t, t_lo[active])
        hi[active] = np.where(good, a_hi, guess)
        t_hi[active] = np.where(good, t_hi[active], t)
        result[active] = lo[active]
        active = active[hi[active] - lo[active] > 1]
    return result
