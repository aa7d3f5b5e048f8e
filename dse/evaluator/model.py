"""Roofline-plus-capacity evaluator: candidate chips x one scenario -> output columns.

Pure and vectorised: no I/O, no Ray. One chip is a batch of one. For every tensor x pipeline
x data split of the system's chips, capacity decides the batch and the regime (weights
resident in SRAM or streamed), the roofline (dse.evaluator.roofline) times each pass, power
is capped at TDP, and the best feasible split wins (DESIGN.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.evaluator.execution import (
    Need,
    Run,
    batch_within_slo,
    capacity_batch,
    need,
    resident_batch,
    run,
)
from dse.evaluator.parallel import splits
from dse.evaluator.roofline import BOUNDS, ChipView
from hwspace.compute import COMPUTE_CLASSES
from hwspace.derived import ChipDerived, derive
from hwspace.spec import ChipArrays
from hwspace.tables import EXECUTION_MODELS, TCO, link_kind_column
from workloads.ops import Plan
from workloads.precision import parse_dtype, sparse_weight_bits
from workloads.scenario import Scenario

__all__ = ["System", "evaluate", "explain", "OUTPUTS", "LABELS", "REASONS", "REGIMES", "BOUNDS",
           "chip_view"]

REASONS = ("", "area", "links", "weights", "kv_cache", "tpot_slo", "ttft_slo")
REGIMES = ("weights_resident", "weights_streamed")
OUTPUTS = (
    "fits", "reason", "throughput_per_s", "ttft_s", "tpot_s", "latency_s", "max_batch",
    "batch", "tp", "pp", "dp", "bound", "arithmetic_intensity", "utilization", "regime",
    "power_w", "energy_per_item_j", "die_area_mm2", "die_cost_usd", "unit_cost_usd",
    "system_cost_usd", "throughput_per_usd", "throughput_per_w", "usd_per_million_items",
)
_SECONDS_PER_YEAR = 365.25 * 24 * 3600
MAX_NUM_SEQS = 256


@dataclass(frozen=True)
class System:
    """A system of ``chips`` identical packages (scalar or (n_cand,)) and its SLOs."""

    chips: int | np.ndarray = 1
    tpot_slo_s: float | None = None
    ttft_slo_s: float | None = None
    tp: int | None = None  # pin the tensor-parallel degree (validation of stated setups)
    # A serving engine's cap on concurrent sequences per replica, for ``batch="max"``: vLLM's
    # default max_num_seqs is 256 (V0; V1 on A100 and GPUs under 70 GiB: vllm/engine/
    # arg_utils.py @ 99d7eb5d); TensorRT-LLM's max_batch_size defaults to 2048
    # (tensorrt_llm/builder.py @ 008b2b8d). None: memory and the SLOs alone decide.
    max_num_seqs: int | None = MAX_NUM_SEQS


def chip_view(chips: ChipArrays, der: ChipDerived, sc: Scenario, eff: Efficiency) -> ChipView:
    """Per-candidate figures for the scenario's precision: math runs at the activations'
    dtype class where the chip lists it, else at bf16."""
    w, a, kv = (parse_dtype(x, f) for x, f in ((sc.weights, "weights"),
                (sc.activations, "activations"), (sc.kv_cache, "kv_cache")))
    cls = COMPUTE_CLASSES.index(a.compute)
    sparse = (sc.sparsity == "2:4") & (chips.sparsity_speedup > 1.0)
    dataflow = chips.execution_idx == EXECUTION_MODELS.index("dataflow")
    kind_eff = link_kind_column("bw_efficiency")[chips.link_kind_idx]
    kind_latency = link_kind_column("call_latency_s")[chips.link_kind_idx]
    # Weights stored narrower than the math they feed (int4 under bf16) are unpacked first.
    weight_only = w.bits < a.bits and w.compute != a.compute
    return ChipView(
        peak_flop_per_s=der.peak_flop_per_s_cls[:, cls],
        inv_peak_flop_s=1.0 / (der.peak_flop_per_s_cls[:, cls] * eff.compute_max),
        inv_vector_ratio=1.0 / chips.vector_ratio,
        inv_sparse_speedup=np.where(sparse, 1.0 / chips.sparsity_speedup, 1.0),
        weight_bytes=np.where(sparse, sparse_weight_bits(w.bits), w.bits) / 8.0,
        dense_weight_bytes=w.bits / 8.0,
        act_bytes=a.bits / 8.0,
        kv_bytes=kv.bits / 8.0,
        mem_bw_bytes_per_s=chips.mem_bw_bytes_per_s,
        inv_sram_bw=1.0 / der.sram_bw_bytes_per_s,
        collective_bw_bytes_per_s=der.link_bw_bytes_per_s * kind_eff,
        link_latency_s=chips.link_latency_s,
        call_latency_s=np.where(dataflow, 0.0, kind_latency),
        op_overhead_s=np.where(dataflow, 0.0, eff.op_overhead_s),
        dequant_flop_per_weight=eff.dequant_flop_per_weight if weight_only else 0.0,
        capacity_bytes=der.capacity_bytes * eff.usable_memory,
        sram_usable_bytes=chips.sram_bytes * eff.usable_memory,
        has_memory=chips.mem_capacity_bytes > 0,
        flop_pj=np.where(chips.dtype_speedup[:, cls] > 0, der.flop_pj_cls[:, cls],
                         der.flop_pj_cls[:, 0]),
        mem_pj_per_byte=der.mem_pj_per_byte,
        sram_pj_per_byte=der.sram_pj_per_byte,
        static_w=der.static_w,
        tdp_w=der.tdp_w,
    )


def _slo_ok(r: Run, tpot_slo: float | None, ttft_slo: float | None) -> np.ndarray:
    ok = np.ones(r.latency_s.shape, bool)
    if tpot_slo is not None:
        ok &= ~(r.tpot_s > tpot_slo)
    if ttft_slo is not None:
        ok &= ~(r.ttft_s > ttft_slo)
    return ok


def _reason(der: ChipDerived, view: ChipView, nd: Need, r: Run, sys: System,
            tp: int, pp: int) -> np.ndarray:
    """Why a design cannot serve the scenario, as a code into REASONS (0: it can). The first
    failing check in REASONS order wins."""
    checks = (
        ~der.area_ok,
        (tp * pp > 1) & (view.collective_bw_bytes_per_s <= 0),
        nd.weights > view.capacity_bytes,
        ~r.fits_memory,
        ~_slo_ok(r, sys.tpot_slo_s, None),
        ~_slo_ok(r, None, sys.ttft_slo_s),
    )
    reason = np.zeros(view.n, dtype=np.int8)
    for code in range(len(checks), 0, -1):
        reason[checks[code - 1]] = code
    return reason


def _evaluate_split(view, der, plan, sc, sys, tp, pp, dp, eff) -> dict[str, np.ndarray]:
    """All outputs that depend on the split, flat (n_cand,) arrays (``shares`` 2-D)."""
    nd = need(view, plan, tp, pp)
    b_cap = capacity_batch(view, nd, pp)
    if sys.max_num_seqs is not None:
        b_cap = np.minimum(b_cap, float(sys.max_num_seqs))
    if sc.batch != "max":
        # A fixed batch beyond what memory (or the scheduler) admits runs in waves of what
        # fits, as vLLM and TensorRT-LLM queue requests when KV blocks run out; a design with
        # no room for one sequence cannot serve it (reason kv_cache).
        asked = float(np.ceil(sc.batch / dp))
        waves = (b_cap >= 1.0) & (b_cap < asked)
        b = np.where(waves, b_cap, asked)
        return _at_batch(view, der, plan, sys, nd, b, np.where(waves, b * dp, float(sc.batch)),
                         b_cap, (tp, pp, dp), eff)
    b = batch_within_slo(view, plan, nd, b_cap, tp, pp, sys.tpot_slo_s, sys.ttft_slo_s, eff)
    best = _at_batch(view, der, plan, sys, nd, b, b * dp, b_cap, (tp, pp, dp), eff)
    # The largest batch is not the fastest where a smaller one keeps weights and activations
    # on chip (CNNs on SRAM-rich chips: data streams through resident weights).
    b_res = resident_batch(view, nd, pp)
    idx = np.flatnonzero((b_res >= 1.0) & (b_res < b))
    if idx.size:
        sub = {k: v[idx] for k, v in best.items()}
        _merge_into(sub, _at_batch(view.take(idx), der.take(idx), plan, sys, nd.take(idx),
                                   b_res[idx], b_res[idx] * dp, b_cap[idx], (tp, pp, dp), eff))
        for key, value in sub.items():
            best[key][idx] = value
    return best


def _at_batch(view, der, plan, sys, nd, b, batch, b_cap, split, eff) -> dict[str, np.ndarray]:
    """Outputs of one split at replica batch ``b`` (system batch ``batch``), (n_cand,)."""
    tp, pp, dp = split
    r = run(view, plan, nd, b, tp, pp, eff)
    n = view.n
    mb = b / np.minimum(pp, np.maximum(b, 1.0))
    return dict(
        reason=_reason(der, view, nd, r, sys, tp, pp),
        throughput=batch * plan.items_per_request / r.latency_s,
        overfill=nd.total(b, mb) / view.capacity_bytes,
        latency=r.latency_s, ttft=r.ttft_s, tpot=r.tpot_s, energy=r.energy_j, flop=r.flop,
        mem=r.mem_bytes, shares=r.shares_s, resident=r.resident.astype(float), batch=batch,
        max_batch=b_cap * dp, tp=np.full(n, float(tp)), pp=np.full(n, float(pp)),
        dp=np.full(n, float(dp)),
    )


def _better(new: dict, best: dict) -> np.ndarray:
    """Feasible beats infeasible; then higher throughput; infeasible ones by how close they
    come to fitting (so the reported reason is the nearest miss)."""
    nf, bf = new["reason"] == 0, best["reason"] == 0
    more = new["throughput"] > best["throughput"]
    closer = new["overfill"] < best["overfill"]
    return (nf & ~bf) | (nf & bf & more) | (~nf & ~bf & closer)


def _merge_into(best: dict, new: dict) -> None:
    take = np.flatnonzero(_better(new, best))
    for key, value in best.items():
        value[take] = new[key][take]


LABELS = {"reason": REASONS, "bound": BOUNDS, "regime": REGIMES}


def evaluate(chips: ChipArrays, plan: Plan, sc: Scenario, sys: System = System(),
             eff: Efficiency = DEFAULT) -> dict[str, np.ndarray]:
    """Evaluate every candidate on one scenario.

    Args:
        chips: n_cand candidates.
        plan: the workload's passes for ``sc`` (workloads.scenario.build_plan).
        sc: the scenario; ``sc.batch`` is the system batch or "max".
        sys: chips per system (scalar or (n_cand,)) and SLOs.
        eff: global efficiency factors.

    Returns:
        OUTPUTS -> (n_cand,) arrays; ``reason``, ``bound`` and ``regime`` are int codes into
        ``LABELS``. Performance outputs are NaN where the design cannot run the scenario at
        all (area, links, capacity); a missed SLO keeps its numbers and says so.
    """
    der = derive(chips)
    view = chip_view(chips, der, sc, eff)
    n_sys = np.broadcast_to(np.asarray(sys.chips), (chips.n,))
    if np.any(n_sys < 1) or np.any(n_sys != np.round(n_sys)):
        raise ValueError(f"system.chips must be a whole number >= 1, got {n_sys[n_sys < 1][:1]}")
    out = {k: np.empty(chips.n) for k in OUTPUTS}
    for c in np.unique(n_sys):
        idx = np.flatnonzero(n_sys == c)
        v, d = view.take(idx), der.take(idx)
        best = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for tp, pp, dp in splits(int(c), plan.n_heads, plan.n_layers):
                if sys.tp is not None and tp != sys.tp:
                    continue
                res = _evaluate_split(v, d, plan, sc, sys, tp, pp, dp, eff)
                if best is None:
                    best = res
                else:
                    _merge_into(best, res)
        if best is None:
            raise ValueError(f"tp = {sys.tp} does not divide {int(c)} chips or exceeds "
                             f"{plan.n_heads} heads")
        for key, value in _outputs(best, d, v, plan, int(c)).items():
            out[key][idx] = value
    return out


def _outputs(best: dict, der: ChipDerived, view: ChipView, plan: Plan,
             chips: int) -> dict[str, np.ndarray]:
    reason = best["reason"]
    runs = ~np.isin(reason, (1, 2, 3, 4))  # area, links, weights, kv_cache: cannot run

    def perf(x: np.ndarray) -> np.ndarray:
        return np.where(runs, x, np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        throughput = perf(best["throughput"])
        power = perf(best["energy"] / best["latency"])
        system_cost = chips * der.unit_cost_usd * TCO.server_cost_factor
        system_w = chips * power
        life_s = TCO.life_years * _SECONDS_PER_YEAR
        energy_usd = system_w * TCO.pue * life_s / 3.6e6 * TCO.usd_per_kwh
        intensity = np.where(best["mem"] > 0, best["flop"] / best["mem"], np.inf)
        return dict(
            fits=(reason == 0).astype(float),
            reason=reason,
            throughput_per_s=throughput,
            ttft_s=perf(best["ttft"]),
            tpot_s=perf(best["tpot"]),
            latency_s=perf(best["latency"]),
            max_batch=best["max_batch"],
            batch=best["batch"],
            tp=best["tp"],
            pp=best["pp"],
            dp=best["dp"],
            bound=np.argmax(best["shares"], axis=1),
            arithmetic_intensity=perf(intensity),
            utilization=perf(best["flop"] / best["latency"] / view.peak_flop_per_s),
            regime=np.where(best["resident"] > 0, 0, 1),
            power_w=power,
            energy_per_item_j=system_w / throughput,
            die_area_mm2=der.die_area_mm2,
            die_cost_usd=der.die_cost_usd,
            unit_cost_usd=der.unit_cost_usd,
            system_cost_usd=system_cost,
            throughput_per_usd=throughput / system_cost,
            throughput_per_w=throughput / system_w,
            usd_per_million_items=(system_cost + energy_usd) / (throughput * life_s) * 1e6,
        )


def explain(chips: ChipArrays, plan: Plan, sc: Scenario, sys: System = System(),
            eff: Efficiency = DEFAULT) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Outputs of one candidate and, for its chosen split and batch, the per-operator
    arrays of every pass: {pass name: {DETAIL column: (n_ops,)}}."""
    if chips.n != 1:
        raise ValueError(f"explain takes one chip, got {chips.n}")
    out = evaluate(chips, plan, sc, sys, eff)
    view = chip_view(chips, derive(chips), sc, eff)
    tp, pp, dp = (int(out[k][0]) for k in ("tp", "pp", "dp"))
    b = np.ceil(out["batch"] / dp)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = run(view, plan, need(view, plan, tp, pp), b, tp, pp, eff, detail=True)
    return out, {name: {k: v[0] for k, v in d.items()} for name, d in r.detail.items()}
