"""Roofline-plus-capacity evaluator: candidate chips x one scenario -> output columns.

Pure: no I/O, no Ray. One chip is a batch of one. For every expert x tensor x pipeline x data
split of the system's chips, capacity decides the batch and the regime (weights resident in
SRAM or streamed), the roofline (dse.evaluator.roofline) times each pass, power is capped at
TDP, and the best feasible split wins (DESIGN.md section 4): all in one compiled call per scenario
(dse.evaluator.fused); the outputs derive from the winning splits here, vectorised.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from dse.evaluator.columns import (
    BATCH_LIMITS,
    BOUNDS,
    R_BATCH,
    R_BATCH_LIMIT,
    R_BOUND,
    R_DP,
    R_EP,
    R_ENERGY,
    R_FLOP,
    R_LATENCY,
    R_MAX_BATCH,
    R_MEM,
    R_PP,
    R_REASON,
    R_RESIDENT,
    R_THROUGHPUT,
    R_TP,
    R_TPOT,
    R_TTFT,
    REASON_ACTIVATIONS,
    REASON_AREA,
    REASON_KV_CACHE,
    REASON_LINKS,
    REASON_POWER,
    REASON_WEIGHTS,
    REASONS,
    chip_columns,
    peak_flop_per_s,
)
from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.evaluator.engine import DEFAULT_ENGINE
from dse.evaluator.fused import best_splits, pass_detail
from dse.evaluator.training import STRATEGY, train_splits
from hwspace import cost
from hwspace.cost import EconomicsConfig
from hwspace.derived import ChipDerived, derive
from hwspace.spec import ChipArrays
from hwspace.tables import SCALE_OUT
from workloads.ops import Plan
from workloads.scenario import RECOMPUTE_MODES, Scenario

__all__ = ["System", "evaluate", "explain", "OUTPUTS", "LABELS", "REASONS", "REGIMES", "BOUNDS",
           "BATCH_LIMITS", "ECONOMICS"]

REGIMES = ("weights_resident", "weights_streamed")
OUTPUTS = (
    "fits", "reason", "throughput_per_s", "ttft_s", "tpot_s", "latency_s", "max_batch",
    "batch", "batch_asked", "batch_limit", "tp", "pp", "dp", "ep", "bound", "arithmetic_intensity",
    "utilization", "regime",
    "power_w", "energy_per_item_j", "die_area_mm2", "die_cost_usd", "unit_cost_usd",
    "system_cost_usd", "throughput_per_usd", "throughput_per_w", "usd_per_million_items",
)
MAX_NUM_SEQS = DEFAULT_ENGINE.max_num_seqs  # vLLM's (dse.evaluator.engine)
# The view the cost outputs take when none is given: the buyer's (conf/economics/buyer.yaml).
ECONOMICS = EconomicsConfig()


@dataclass(frozen=True)
class System:
    """A system of ``chips`` identical packages (scalar or (n_cand,)) and its SLOs."""

    chips: int | np.ndarray = 1
    tpot_slo_s: float | None = None
    ttft_slo_s: float | None = None
    tp: int | None = None  # pin the tensor-parallel degree (validation of stated setups)
    pp: int | None = None  # and the pipeline-parallel degree
    ep: int | None = None  # and the expert-parallel degree (MoE)
    # A serving engine's cap on concurrent sequences per replica, for ``batch="max"``: vLLM's
    # default max_num_seqs is 256 (V0; V1 on A100 and GPUs under 70 GiB: vllm/engine/
    # arg_utils.py @ 99d7eb5d); TensorRT-LLM's max_batch_size defaults to 2048
    # (tensorrt_llm/builder.py @ 008b2b8d). None: memory and the SLOs alone decide.
    max_num_seqs: int | None = MAX_NUM_SEQS
    # Training: chips one set of chip links joins (tensor parallelism stays inside), and
    # the cluster network per chip past them (hwspace.tables.SCALE_OUT: DGX H100).
    scale_up: int = SCALE_OUT.chips_per_domain
    network_gb_s: float = SCALE_OUT.gb_s_per_chip
    # KV offload: host memory per chip the KV cache may spill to, and the host link per chip
    # (default PCIe 5.0 x16, 64 GB/s per direction, PCI-SIG; GH200's NVLink-C2C: 450 GB/s,
    # NVIDIA GH200 datasheet "900 GB/s" bidirectional). 0 GB: no host tier.
    kv_host_gb: float = 0.0
    host_gb_s: float = 64.0
    # The serving engine's host time per forward step and per sequence in it, and whether it
    # overlaps the chip's step (dse.evaluator.engine.EngineConfig; default vLLM's).
    step_overhead_s: float = DEFAULT_ENGINE.step_overhead_s
    seq_overhead_s: float = DEFAULT_ENGINE.seq_overhead_s
    overlapped: bool = DEFAULT_ENGINE.overlapped


LABELS = {"reason": REASONS, "bound": BOUNDS, "regime": REGIMES, "recompute": RECOMPUTE_MODES,
          "batch_limit": BATCH_LIMITS}
# Outcomes where the design cannot run the scenario at all: no performance figures.
_CANNOT_RUN = (REASON_AREA, REASON_LINKS, REASON_WEIGHTS, REASON_KV_CACHE, REASON_ACTIVATIONS,
               REASON_POWER)
# Whether a design with each reason code runs: a lookup, not np.isin per call.
_RUNS = np.isin(np.arange(len(REASONS)), _CANNOT_RUN, invert=True)


# The last batch of candidates and its derivation. Sweeps and searches evaluate one batch on
# every scenario of their niches, and derive() (area, yield, cost, power) costs as much as a
# cheap scenario; ChipArrays is frozen, so the same object has the same derivation. A weak
# reference: the cache never keeps a batch alive.
_last_derived: tuple[weakref.ref, ChipDerived] | None = None


def _derived(chips: ChipArrays) -> ChipDerived:
    global _last_derived
    if _last_derived is None or _last_derived[0]() is not chips:
        _last_derived = (weakref.ref(chips), derive(chips))
    return _last_derived[1]


def _system_sizes(sys: System, n: int) -> np.ndarray:
    n_sys = np.broadcast_to(np.asarray(sys.chips), (n,))
    if np.any(n_sys < 1) or np.any(n_sys != np.round(n_sys)):
        raise ValueError(f"system.chips must be a whole number >= 1, got {n_sys[n_sys < 1][:1]}")
    return n_sys


def evaluate(chips: ChipArrays, plan: Plan, sc: Scenario, sys: System = System(),
             eff: Efficiency = DEFAULT,
             econ: EconomicsConfig = ECONOMICS) -> dict[str, np.ndarray]:
    """Evaluate every candidate on one scenario.

    Args:
        chips: n_cand candidates.
        plan: the workload's passes for ``sc`` (workloads.scenario.build_plan).
        sc: the scenario; ``sc.batch`` is the system batch or "max".
        sys: chips per system (scalar or (n_cand,)) and SLOs.
        eff: global efficiency factors.
        econ: the economic view the cost outputs take (hwspace.cost: builder or buyer).

    Returns:
        OUTPUTS -> (n_cand,) arrays, finite or NaN; ``reason``, ``bound``, ``regime`` and
        ``batch_limit`` are int codes into ``LABELS``. Performance outputs are NaN where the
        design cannot run the scenario at all (area, power, links, capacity); a missed SLO
        keeps its numbers and says so. ``batch`` is the system batch served,
        ``batch_asked`` the one asked (NaN: "max"), ``batch_limit`` what set ``batch``
        (a fixed batch cut by memory or the scheduler runs in waves: it still fits). A
        ``train`` scenario adds its strategy (dse.evaluator.training.STRATEGY): the ZeRO
        stage, recomputation (0/1) and pipeline interleave of the fastest step.
    """
    der = _derived(chips)
    n_sys = _system_sizes(sys, chips.n)
    asked = np.full(chips.n, np.nan if sc.batch == "max" else float(sc.batch))
    if plan.phase == "train":
        rec, strategy = train_splits(chip_columns(chips, der, sc, eff), plan, sc, sys, eff,
                                     n_sys)
        return {**_outputs(rec, chips, der, peak_flop_per_s(der, sc), n_sys, asked, econ),
                **dict(zip(STRATEGY, strategy, strict=True))}
    best = best_splits(chips, der, plan, sc, sys, eff, n_sys)
    return _outputs(best, chips, der, peak_flop_per_s(der, sc), n_sys, asked, econ)


def _outputs(best: np.ndarray, spec: ChipArrays, der: ChipDerived, peak: np.ndarray,
             chips: np.ndarray, asked: np.ndarray,
             econ: EconomicsConfig) -> dict[str, np.ndarray]:
    """OUTPUTS from the records of the winning splits, (N_REC, n_cand)
    (dse.evaluator.columns R_*), the batch asked, (n_cand,), and the economic view."""
    out = _figures(best, der, peak, chips)
    out.update(batch_asked=asked, batch_limit=best[R_BATCH_LIMIT].astype(np.int64))
    out.update(_costs(spec, der, chips, econ, out))
    # NOTE: a figure with no finite value (intensity without off-chip bytes, a rate over zero
    # time) has no meaning: NaN, never inf, so stores, JSON and comparisons stay sound. One
    # scan of all float outputs first: one per output took ~5 % of predict().
    floats = [out[k] for k in OUTPUTS if out[k].dtype.kind == "f"]
    if np.isinf(np.concatenate(floats)).any():
        return {k: _no_inf(out[k]) for k in OUTPUTS}
    return {k: out[k] for k in OUTPUTS}


def _no_inf(x: np.ndarray) -> np.ndarray:
    # Scan first: a copy of every output would cost the fast scenarios ~15 % of their time.
    if x.dtype.kind == "f" and np.isinf(x).any():
        return np.where(np.isinf(x), np.nan, x)
    return x


def _figures(best: np.ndarray, der: ChipDerived, peak: np.ndarray,
             chips: np.ndarray) -> dict[str, np.ndarray]:
    """OUTPUTS but the costs, the batch asked and its limit. Chips a training split leaves
    idle draw static power and count in the cost; ``power_w`` and ``utilization`` are per
    chip of the whole system."""
    reason = best[R_REASON].astype(np.int8)
    runs = _RUNS[reason]
    latency, flop, mem = best[R_LATENCY], best[R_FLOP], best[R_MEM]
    busy = best[R_EP] * best[R_TP] * best[R_PP] * best[R_DP] / chips  # share of chips in use

    def perf(x: np.ndarray) -> np.ndarray:
        return np.where(runs, x, np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        throughput = perf(best[R_THROUGHPUT])
        power = perf(busy * best[R_ENERGY] / latency + (1.0 - busy) * der.static_w)
        system_w = chips * power
        intensity = np.where(mem > 0, flop / mem, np.nan)
        return dict(
            fits=(reason == 0).astype(float),
            reason=reason,
            throughput_per_s=throughput,
            ttft_s=perf(best[R_TTFT]),
            tpot_s=perf(best[R_TPOT]),
            latency_s=perf(latency),
            max_batch=best[R_MAX_BATCH],
            batch=best[R_BATCH],
            tp=best[R_TP],
            pp=best[R_PP],
            dp=best[R_DP],
            ep=best[R_EP],
            bound=best[R_BOUND].astype(np.int64),
            arithmetic_intensity=perf(intensity),
            utilization=perf(busy * flop / latency / peak),
            regime=np.where(best[R_RESIDENT] > 0, 0, 1),
            power_w=power,
            energy_per_item_j=system_w / throughput,
            # Copies: ``der`` is kept for the next call (_derived), and callers may write.
            die_area_mm2=der.die_area_mm2.copy(),
            die_cost_usd=der.die_cost_usd.copy(),
            throughput_per_w=throughput / system_w,
        )


def _costs(spec: ChipArrays, der: ChipDerived, chips: np.ndarray, econ: EconomicsConfig,
           out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The cost outputs in the view ``econ`` takes (DESIGN.md section 8): the package's cost
    (builder) or price (buyer), the system's, throughput per USD of it, and USD per million
    items over the system's life (hwspace.cost.ownership_usd_per_s)."""
    unit = cost.chip_price_usd(der.unit_cost_usd, spec.price_usd, spec.node_idx, econ)
    system = cost.system_cost_usd(unit, chips, spec.price_includes_host, econ)
    usd_per_s = cost.ownership_usd_per_s(system, chips, der.tdp_w, out["power_w"],
                                         spec.price_includes_host, econ)
    throughput = out["throughput_per_s"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return dict(unit_cost_usd=unit, system_cost_usd=system,
                    throughput_per_usd=throughput / system,
                    usd_per_million_items=usd_per_s / throughput * 1e6)


def explain(chips: ChipArrays, plan: Plan, sc: Scenario, sys: System = System(),
            eff: Efficiency = DEFAULT, econ: EconomicsConfig = ECONOMICS
            ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Outputs of one candidate and, for its chosen split and batch, the per-operator
    arrays of every pass: {pass name: {DETAIL column: (n_ops,)}} (dse.evaluator.roofline.DETAIL)."""
    if chips.n != 1:
        raise ValueError(f"explain takes one chip, got {chips.n}")
    out = evaluate(chips, plan, sc, sys, eff, econ)
    tp, pp, dp, ep = (int(out[k][0]) for k in ("tp", "pp", "dp", "ep"))
    # Training steps run microbatches of one sequence (dse.evaluator.training); each of the
    # dp x ep groups of tp x pp chips serves its share of the batch.
    b = 1.0 if plan.phase == "train" else np.ceil(out["batch"][0] / (dp * ep))
    return out, pass_detail(chips, _derived(chips), plan, sc, sys, eff, (tp, pp, ep), b)
