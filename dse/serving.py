"""Serving at a request rate (DESIGN.md section 8, phase "serve"): step-time tables from the
evaluator for one chip, workload and system, the scheduler's simulation of them
(dse.evaluator.scheduler), and its outputs; and which candidates of a sweep to simulate.

The step model. An engine step of ``n`` decoding sequences at mean context ``c`` and ``p``
prompt tokens of prompts of length ``P`` takes

    t = L(n + p) + [T_d(n, c) - L(n)] + p * a(P),    L(T) = T_d(T, 0),
    a(P) = [T_p(P) - L(P)] / P,

where T_d(n, c) is the evaluator's decode step at batch n and context c and T_p(P) its
prefill of one P-token prompt. L is one pass of T tokens through the weights: the weights
are read once for decode and prompt tokens together, and each operator is the roofline of
all of them (compute of both, memory of the weights), as in the evaluator's own mixed pass
(workloads.llm.mixed_pass). The decode tokens' KV reads and the prompt tokens' attention to
their prompt add to it. A pure decode step is the evaluator's decode step exactly, and a
lone prompt its prefill.
NOTE: the alternative t = max(compute, memory) over the whole step needs the compute and
memory time of every operator, which the evaluator keeps inside its compiled loop; a sum of
whole-step times keeps the evaluator the one owner of the physics.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from dse.evaluator import model
from dse.evaluator.columns import KV_BLOCK_TOKENS
from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.evaluator.scheduler import (
    Engine,
    Requests,
    StepTimes,
    draw_lengths,
    max_rate,
    poisson_arrivals,
    simulate,
    summarize,
)
from dse.inputs import check_value
from dse.presets import load_chip, load_plan, load_workload
from hwspace.spec import ChipArrays, from_configs
from workloads.config import TransformerConfig
from workloads.scenario import ScenarioConfig, family_of, make_scenario

__all__ = ["serve", "ChipModel", "build_step_times", "read_trace", "check_settings", "shortlist",
           "SERVE_OUTPUTS", "SERVE_COLUMNS", "PRECISION_KEYS"]

SERVE_OUTPUTS = ("fits", "reason", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
                 "goodput_per_s", "max_rate_per_s", "capacity_per_s", "requests_per_s",
                 "throughput_per_s", "n_requests", "tp", "pp", "ep", "dp", "kv_blocks",
                 "system_cost_usd", "system_power_w", "max_rate_per_usd", "max_rate_per_w")
# The outputs a sweep's serve rows add to the evaluator's (the rest it has under its names).
SERVE_COLUMNS = ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "goodput_per_s",
                 "max_rate_per_s", "capacity_per_s", "max_rate_per_usd", "max_rate_per_w")
_DEFAULT = ScenarioConfig()  # the serve settings' defaults: their schema's
_GRID_RATIO = 2 ** 0.25  # spacing of the batch and token grids: step times bend smoothly
_N_CTX = 5  # context grid points: KV reads are linear in the context
_N_PROMPT = 6  # prompt-length grid points
# Scenario keys a served workload takes besides its lengths. Speculative decoding is not one:
# the scheduler advances a sequence by one token per step.
PRECISION_KEYS = ("weights", "activations", "kv_cache", "sparsity")


class ChipModel:
    """The evaluator on one chip, workload, system and precision: ``outputs`` of a scenario,
    and ``step``: the time of one step, s (NaN where the batch was cut or does not fit)."""

    def __init__(self, chips: ChipArrays, work: TransformerConfig, sys: model.System,
                 eff: Efficiency, precision: dict):
        self.chips, self.work, self.sys, self.eff, self.precision = chips, work, sys, eff, precision

    def outputs(self, **keys: Any) -> dict[str, float]:
        sc = make_scenario("llm", {**self.precision, **keys})
        out = model.evaluate(self.chips, load_plan(self.work, sc), sc, self.sys, self.eff)
        return {k: float(v[0]) for k, v in out.items()}

    def step(self, phase: str, batch: int, **keys: Any) -> float:
        out = self.outputs(phase=phase, batch=batch, **keys)
        if out["batch"] != batch or not out["fits"]:
            return np.nan
        return out["tpot_s"] if phase == "decode" else out["ttft_s"]


def _grid(high: int, low: int = 1) -> np.ndarray:
    """Whole numbers from ``low`` to ``high``, geometric (ratio _GRID_RATIO), ends included."""
    n = max(2, math.ceil(math.log(max(high / low, 1.0)) / math.log(_GRID_RATIO)) + 1)
    return np.unique(np.rint(np.geomspace(low, high, n)).astype(np.int64))


def _filled(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` at ``x`` (increasing) with the NaN past its last number (batches the evaluator
    cut to fit memory) extended in proportion to ``x``: KV reads grow with the sequences,
    and passes that large are compute-bound, growing with the tokens."""
    ok = np.flatnonzero(~np.isnan(y))
    if len(ok) == 0:
        return np.zeros_like(y)
    last = ok[-1]
    return np.where(np.arange(len(y)) <= last, np.nan_to_num(y), y[last] * x / x[last])


def build_step_times(ev: ChipModel, engine: Engine, max_len: int,
                     prompt_lens: np.ndarray) -> StepTimes:
    """The scheduler's step-time tables (module docstring) from evaluator calls on grids:
    tokens up to the budget and the longest prompt, sequences up to the cap, contexts up to
    ``max_len`` tokens, prompt lengths over ``prompt_lens``' range."""
    tokens = _grid(max(engine.max_num_batched_tokens, int(prompt_lens.max())))
    linear = _filled(tokens, np.array([ev.step("decode", int(t), context_len=0)
                                       for t in tokens]))
    dense = np.arange(engine.max_num_batched_tokens + 1)
    linear_s = np.interp(dense, np.r_[0, tokens], np.r_[0.0, linear])

    seqs = _grid(engine.max_num_seqs)
    ctx = np.linspace(0.0, max_len - 1, _N_CTX)
    kv = np.stack([_filled(seqs, np.array([ev.step("decode", int(n), context_len=int(c))
                                           for n in seqs]) - np.interp(seqs, tokens, linear))
                   for c in ctx[1:]], axis=1)
    kv = np.c_[np.zeros(len(seqs)), np.maximum(kv, 0.0)]
    n_dense = np.arange(engine.max_num_seqs + 1)
    kv_s = np.stack([np.interp(n_dense, np.r_[0, seqs], np.r_[0.0, col]) for col in kv.T], 1)

    prompts = np.unique(np.rint(np.geomspace(prompt_lens.min(), prompt_lens.max(), _N_PROMPT)))
    prefill = np.array([ev.step("prefill", 1, prompt_len=int(p)) for p in prompts])
    per_token = (prefill - np.interp(prompts, tokens, linear)) / prompts
    return StepTimes(linear_s, kv_s, float(ctx[1]), prompts, np.nan_to_num(per_token))


def read_trace(trace: Any) -> Requests:
    """Requests from a trace: a CSV path with the header ``arrival_s,prompt_len,gen_len``,
    or an array of such rows (n, 3), sorted here by arrival."""
    if isinstance(trace, (str, Path)):
        if not Path(trace).is_file():
            raise ValueError(f"scenario.trace = {str(trace)!r}: no such file")
        rows = np.loadtxt(trace, delimiter=",", skiprows=1, ndmin=2)
    else:
        rows = np.asarray(trace, dtype=float)
    if rows.ndim != 2 or rows.shape[1] != 3 or len(rows) < 2:
        raise ValueError(f"trace must hold >= 2 rows of (arrival_s, prompt_len, gen_len), "
                         f"got shape {rows.shape}")
    lens = rows[:, 1:]
    if not (np.all(np.isfinite(rows)) and np.all(rows[:, 0] >= 0) and np.all(lens >= 1)
            and np.all(lens == np.rint(lens))):
        raise ValueError("trace: arrival_s must be finite and >= 0 and the lengths whole "
                         "numbers >= 1")
    rows = rows[np.argsort(rows[:, 0], kind="stable")]
    return Requests(rows[:, 0] - rows[0, 0], rows[:, 1].astype(np.int64),
                    rows[:, 2].astype(np.int64))


def _checked(key: str, value: Any, kind: type = int) -> None:
    """ValueError unless ``value`` fits serve setting ``key``'s field of ScenarioConfig."""
    check_value(f"scenario.{key}", value, kind, _FIELDS[key].metadata)


_FIELDS = {f.name: f for f in dataclasses.fields(ScenarioConfig)}


def check_settings(work: TransformerConfig, system: model.System, *, request_rate, prompt_len,
                   gen_len, trace, n_requests: int, seed: int, max_num_batched_tokens: int,
                   routing: str, replicas: int = 1) -> tuple[Requests, float]:
    """Serve settings (workloads.scenario.serve_settings) checked against their schema fields,
    the workload and the system; returns (the requests at rate 1 per s, the rate asked): a
    trace's arrivals rescaled to rate 1 (its own rate where ``request_rate`` is None), or
    Poisson arrivals and drawn lengths, ``n_requests`` for each of ``replicas``."""
    for key, value in (("n_requests", n_requests), ("seed", seed),
                       ("max_num_batched_tokens", max_num_batched_tokens)):
        _checked(key, value)
    _checked("routing", routing, str)
    seqs = system.max_num_seqs or max_num_batched_tokens
    if seqs > max_num_batched_tokens:  # vLLM refuses it: every running sequence decodes
        raise ValueError(f"system.max_num_seqs = {seqs}: allowed with phase serve: <= "
                         f"scenario.max_num_batched_tokens ({max_num_batched_tokens})")
    if trace is not None:
        req = read_trace(trace)
        own = (len(req.arrival_s) - 1) / req.arrival_s[-1]
        unit = Requests(req.arrival_s * own, req.prompt_len, req.gen_len)
        rate = own if request_rate is None else request_rate
    else:
        high = work.max_context - 1
        n_requests *= replicas
        prompt = draw_lengths("prompt_len", prompt_len, n_requests, seed + 1, high)
        gen = draw_lengths("gen_len", gen_len, n_requests, seed + 2, high)
        if isinstance(prompt_len, dict) or isinstance(gen_len, dict):
            # A drawn request past the context stops there, as vLLM stops at max_model_len.
            gen = np.minimum(gen, work.max_context - prompt)
        unit = Requests(poisson_arrivals(1.0, n_requests, seed), prompt, gen)
        rate = request_rate
    poisson_arrivals(rate, 1, seed)  # the rate's own check: finite and > 0
    total = int(np.max(unit.prompt_len + unit.gen_len))
    if total > work.max_context:
        raise ValueError(f"scenario.prompt_len + gen_len must be <= {work.name}'s max_context "
                         f"= {work.max_context}, got {total}")
    return unit, rate


def _nan_outputs(reason: str, **known: float) -> dict[str, Any]:
    out = dict.fromkeys(SERVE_OUTPUTS, np.nan)
    return {**out, "fits": False, "reason": reason, **known}


def _engine(replica: ChipModel, unit: Requests, seqs: int, budget: int, dp: int,
            routing: str) -> Engine:
    """The engine of one replica; its KV capacity is the evaluator's largest decode batch
    at the mean request length, in whole blocks (dse.evaluator.columns.KV_BLOCK_TOKENS)."""
    ref_ctx = int(round(np.mean(unit.prompt_len + unit.gen_len))) - 1
    per_seq = replica.outputs(phase="decode", batch="max", context_len=ref_ctx)["max_batch"]
    return Engine(int(per_seq) * -(-(ref_ctx + 1) // KV_BLOCK_TOKENS), seqs, budget, dp,
                  routing)


def serve(chip: Any, workload: Any, *, request_rate: float | None,
          prompt_len: Any = _DEFAULT.prompt_len, gen_len: Any = _DEFAULT.gen_len,
          trace: Any = None, system: model.System | None = None,
          max_num_batched_tokens: int = _DEFAULT.max_num_batched_tokens,
          routing: str = _DEFAULT.routing, n_requests: int = _DEFAULT.n_requests,
          seed: int = _DEFAULT.seed, find_max_rate: bool = True,
          efficiency: Efficiency = DEFAULT, **precision: Any) -> dict[str, Any]:
    """Serve requests at a rate on ``system`` and report the SLO figures.

    Args:
        chip, workload: as dse.api.predict (preset name, dict or YAML path; a chip also as
            the ChipArrays of one candidate); a decoder LLM.
        request_rate: requests/s for the whole system (Poisson, seeded); with a trace, None
            keeps the trace's own rate and a number rescales its arrival times to it.
        prompt_len, gen_len: tokens: a whole number, or a distribution
            (dse.evaluator.scheduler.draw_lengths); ignored with a trace.
        trace: a CSV path or (n, 3) rows of (arrival_s, prompt_len, gen_len).
        system: (default model.System()) chips, the SLOs (ttft_slo_s and tpot_slo_s, held
            at P99; None: not held), max_num_seqs (the engine's cap per replica; None: the
            token budget), tp and pp (pinned, else the evaluator's best split for continuous
            generation), and the rest as dse.api.predict; dp = chips / (ep * tp * pp) replicas.
        max_num_batched_tokens, routing: the engine (dse.evaluator.scheduler.Engine).
        n_requests, seed: how many requests to simulate per data-parallel replica (the
            system's rate splits over them), and their seed.
        find_max_rate: False skips the bisection for max_rate_per_s (NaN).
        **precision: weights, activations, kv_cache, sparsity (scenario keys).

    Returns:
        SERVE_OUTPUTS: latencies s, rates requests/s (throughput_per_s: generated tokens/s),
        ``capacity_per_s`` the analytical steady state (the evaluator's continuous
        generation at the largest batch, without SLOs, per mean gen_len), ``kv_blocks`` per
        replica, ``system_power_w`` the system's power in that steady state (the load near
        max_rate_per_s), ``max_rate_per_usd`` and ``max_rate_per_w`` the niche objectives
        "requests/s per $ and per W at SLO" (max_rate_per_s NaN where neither SLO is set).
        ``fits`` False with a reason and NaN figures where the system cannot serve the
        workload.
    """
    unknown = sorted(set(precision) - set(PRECISION_KEYS))
    if unknown:
        raise ValueError(f"phase serve: unknown scenario key(s) {unknown}; allowed besides "
                         f"the lengths: {', '.join(PRECISION_KEYS)}")
    system = system or model.System()
    chips = chip if isinstance(chip, ChipArrays) else from_configs([load_chip(chip)])
    work = load_workload(workload)
    if family_of(work) != "llm":
        raise ValueError(f"workload: phase serve needs a decoder LLM, got {work.name!r}")
    settings = dict(request_rate=request_rate, prompt_len=prompt_len, gen_len=gen_len,
                    trace=trace, n_requests=n_requests, seed=seed,
                    max_num_batched_tokens=max_num_batched_tokens, routing=routing)
    unit, rate = check_settings(work, system, **settings)
    # The evaluator runs without the SLOs: the simulation holds them, at P99.
    free = dataclasses.replace(system, ttft_slo_s=None, tpot_slo_s=None)
    mean_gen = max(1, int(round(unit.gen_len.mean())))
    best = ChipModel(chips, work, free, efficiency, precision).outputs(
        phase="generate", batch="max", prompt_len=int(round(unit.prompt_len.mean())),
        gen_len=mean_gen)
    cost = dict(system_cost_usd=best["system_cost_usd"],
                system_power_w=best["power_w"] * system.chips)
    if not best["fits"]:
        return _nan_outputs(model.REASONS[int(best["reason"])], **cost)
    split = {k: int(best[k]) for k in ("tp", "pp", "ep", "dp")}
    if split["dp"] > 1:
        # Each replica warms up from empty: its P99s need its own n_requests, not a share
        # (an 8-replica H100 system overstated max_rate_per_s 2x on 1,000 requests in all).
        unit, rate = check_settings(work, system, **settings, replicas=split["dp"])
    # A replica is one engine: its ep expert groups (data-parallel attention, one scheduler)
    # of tp x pp chips each (dse.evaluator.roofline.expert_parallel).
    replica = ChipModel(chips, work, dataclasses.replace(
        free, chips=split["ep"] * split["tp"] * split["pp"], tp=split["tp"], pp=split["pp"],
        ep=split["ep"], max_num_seqs=None), efficiency, precision)
    engine = _engine(replica, unit, system.max_num_seqs or max_num_batched_tokens,
                     max_num_batched_tokens, split["dp"], routing)
    steps = build_step_times(replica, engine, int(np.max(unit.prompt_len + unit.gen_len)),
                             unit.prompt_len)
    slo = (system.ttft_slo_s or np.inf, system.tpot_slo_s or np.inf)
    req = Requests(unit.arrival_s / rate, unit.prompt_len, unit.gen_len)
    out = summarize(req, *simulate(req, steps, engine), rate, *slo)
    capacity = best["throughput_per_s"] / mean_gen
    find_max_rate = find_max_rate and np.isfinite(slo).any()
    top = (max_rate(unit.arrival_s, unit.prompt_len, unit.gen_len, steps, engine, *slo,
                    1.2 * capacity) if find_max_rate else np.nan)
    return dict(fits=True, reason="", **out, max_rate_per_s=top, capacity_per_s=capacity,
                **split, kv_blocks=engine.kv_blocks, **cost,
                max_rate_per_usd=top / cost["system_cost_usd"],
                max_rate_per_w=top / cost["system_power_w"])


def shortlist(capacity_per_s: np.ndarray, system_cost_usd: np.ndarray, factor: float = 2.5,
              min_keep: int = 1) -> np.ndarray:
    """Which candidates of a sweep to simulate, (n_cand,) bool.

    Every candidate gets the analytical model first: its steady-state requests/s at the SLOs
    (the evaluator's ``batch="max"`` throughput under tpot_slo_s and ttft_slo_s, per
    gen_len) per system $. Queueing lowers a rate by the ratio of the simulated
    max_rate_per_s to that capacity, and that ratio lies in a band: 0.43 to 1.0 on eleven
    preset chip, model and system cases at P99 TTFT <= 0.5 s and TPOT <= 50 ms (A10 with
    Llama-2-7B, KV-bound at a few sequences, lowest; H100-class at 0.93-1.0). A candidate
    whose analytical objective is below the best's / ``factor`` (factor >= 1 / the band's
    low end) cannot overtake the best once both are simulated. Those within the factor are
    kept, and at least the ``min_keep`` best.
    Infeasible candidates (NaN, 0 or negative capacity or cost) are never kept.

    Args:
        capacity_per_s: (n_cand,) analytical requests/s at the SLOs.
        system_cost_usd: (n_cand,) system cost.
        factor: how far below the best analytical requests/s per $ a candidate may be.
        min_keep: the number of best candidates kept whatever the factor.
    """
    if not (np.isfinite(factor) and factor >= 1.0):
        raise ValueError(f"factor must be a finite number >= 1, got {factor!r}")
    rate, cost = np.asarray(capacity_per_s, float), np.asarray(system_cost_usd, float)
    ok = np.isfinite(rate) & np.isfinite(cost) & (rate > 0) & (cost > 0)
    objective = np.where(ok, rate / np.where(ok, cost, 1.0), -np.inf)
    if not ok.any():
        return ok
    keep = ok & (objective >= np.max(objective) / factor)
    best = np.argsort(-objective, kind="stable")[:min_keep]
    keep[best[ok[best]]] = True
    return keep
