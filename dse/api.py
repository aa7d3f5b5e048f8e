"""predict(): the model for one chip and one scenario, as a dict (DESIGN.md section 6)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from dse.evaluator import model
from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.evaluator.engine import DEFAULT_ENGINE, EngineConfig
from dse.presets import load_chip, load_economics, load_engine, load_plan, load_workload
from dse.settings import SystemConfig, settings, to_system
from hwspace.config import ChipConfig
from hwspace.spec import from_configs
from workloads.ops import KIND_NAMES
from workloads.scenario import ScenarioConfig, family_of, make_scenario, serve_settings

__all__ = ["predict", "explain", "SYSTEM_KEYS"]

_ENGINE = DEFAULT_ENGINE.name  # the engine every call assumes unless told (vLLM)
SYSTEM_KEYS = tuple(f.name for f in dataclasses.fields(SystemConfig))
_SCENARIO_KEYS = tuple(f.name for f in dataclasses.fields(ScenarioConfig))
_INTS = ("max_batch", "batch", "tp", "pp", "dp", "ep", "zero", "interleave",
         "n_requests", "kv_blocks")


def _checked(chip: Any, workload: Any, scenario: dict, engine: Any = _ENGINE):
    """(chip config, workload config, scenario values, scenario, system config, engine), each
    input checked against its schema once; the engine's caps fill max_num_seqs and
    max_num_batched_tokens where the scenario does not give them."""
    eng = load_engine(engine)
    scenario = {"max_num_seqs": eng.max_num_seqs,
                "max_num_batched_tokens": eng.max_num_batched_tokens, **scenario}
    unknown = sorted(set(scenario) - set(SYSTEM_KEYS) - set(_SCENARIO_KEYS))
    if unknown:
        raise ValueError(f"scenario.{unknown[0]}: unknown setting; allowed: "
                         f"{', '.join(_SCENARIO_KEYS + SYSTEM_KEYS)}")
    cfg_chip = load_chip(chip)
    cfg_work = load_workload(workload)
    system = settings(SystemConfig, scenario, "system")
    values = _shallow(settings(ScenarioConfig, scenario, "scenario"))
    sc = make_scenario(family_of(cfg_work), values)
    if eng.static_kv:
        sc = dataclasses.replace(sc, static_kv=True)
    return cfg_chip, cfg_work, values, sc, system, eng


def _system(system: SystemConfig, engine: EngineConfig) -> model.System:
    """The evaluator's System of a checked SystemConfig, with the engine's host time."""
    return to_system(system, step_overhead_s=engine.step_overhead_s,
                     seq_overhead_s=engine.seq_overhead_s, overlapped=engine.overlapped)


def _prepare(chip: Any, workload: Any, scenario: dict, engine: Any = _ENGINE):
    """(chips, plan, scenario, system), each input checked against its schema once; for
    phase serve the plan of its analytical steady state (workloads.scenario)."""
    cfg_chip, cfg_work, _, sc, system, eng = _checked(chip, workload, scenario, engine)
    return (_chip_arrays(chip, cfg_chip), _plan(workload, cfg_work, sc), sc,
            _system(system, eng))


def _serve(chip: Any, workload: Any, scenario: dict, efficiency: Efficiency,
           engine: Any = _ENGINE) -> dict:
    """The SLO figures of phase serve (dse.serving.serve) as plain values."""
    from dse.serving import serve  # the scheduler compiles on first use: only when served

    cfg_chip, cfg_work, values, sc, system, eng = _checked(chip, workload, scenario, engine)
    precision = {k: getattr(sc, k) for k in ("weights", "activations", "kv_cache", "sparsity")}
    out = serve(_chip_arrays(chip, cfg_chip), cfg_work, system=_system(system, eng),
                efficiency=efficiency, **serve_settings(values), **precision)
    return {k: v if isinstance(v, str) else _scalar(k, v) for k, v in out.items()}


def _shallow(obj: Any) -> dict:
    """A flat dataclass as a dict (dataclasses.asdict deep-copies: 10x slower)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _plan(workload: Any, cfg, sc):
    """The plan of ``sc``; a preset's plans are kept (at most _MAX_PLANS, oldest out)."""
    if not isinstance(workload, str) or workload.endswith((".yaml", ".yml")):
        return load_plan(cfg, sc)
    # Plans do not depend on the batch (the evaluator scales them): one per batch sweep.
    key = (workload, dataclasses.replace(sc, batch=None))
    if key not in _PLANS:
        if len(_PLANS) >= _MAX_PLANS:
            del _PLANS[next(iter(_PLANS))]
        _PLANS[key] = load_plan(cfg, sc)
    return _PLANS[key]


_PLANS: dict = {}
_MAX_PLANS = 4096


def _chip_arrays(chip: Any, cfg: ChipConfig):
    """ChipArrays of one validated chip; a preset's are kept (presets and ChipArrays do not
    change while a process runs)."""
    if not isinstance(chip, str) or chip.endswith((".yaml", ".yml")):
        return from_configs([cfg])
    if chip not in _PRESET_ARRAYS:
        _PRESET_ARRAYS[chip] = from_configs([cfg])
    return _PRESET_ARRAYS[chip]


_PRESET_ARRAYS: dict = {}


def _scalar(key: str, value: float) -> Any:
    if key in model.LABELS:
        return model.LABELS[key][int(value)]
    if key == "fits":
        return bool(value)
    if key in _INTS and math.isfinite(value):
        return int(value)
    return float(value)


def predict(chip: Any, workload: Any, *, efficiency: Efficiency = DEFAULT,
            economics: Any = "buyer", engine: Any = _ENGINE, **scenario: Any) -> dict[str, Any]:
    """Evaluate one chip on one workload scenario.

    Args:
        chip: a preset name (``"h100"``), a dict of DESIGN.md section 3, or a YAML path.
        workload: a preset name (``"llama2-70b"``), a dict, or a YAML path.
        efficiency: global efficiency factors (defaults: dse.evaluator.efficiency.DEFAULT).
        economics: the view of the cost outputs: ``"builder"`` (manufacturing + NRE / volume),
            ``"buyer"`` (price, servers, network, data centre, energy), ``"retail"`` (one
            desktop card), a mapping of hwspace.cost.EconomicsConfig fields, or a YAML path.
        engine: the serving engine (conf/engine): ``"vllm"``, ``"trtllm"``, ``"sglang"``,
            ``"llamacpp"``, ``"optimum-habana"``, a mapping of dse.evaluator.engine.EngineConfig
            fields, or a YAML path: its cap on sequences and token budget (max_num_seqs and
            max_num_batched_tokens, where given, win) and its host time per step.
        **scenario: phase, batch (int or "max"), prompt_len, gen_len, context_len, weights,
            activations, kv_cache, sparsity, batching, draft, spec_tokens, acceptance,
            optimizer, zero, recompute, interleave, expert_skew, chips, tpot_slo_s,
            ttft_slo_s, max_num_seqs, scale_up, network_gb_s, kv_host_gb, host_gb_s, tp, pp
            and ep (pin the split: a published setup). Phase serve (requests at a rate,
            dse.serving) adds request_rate, trace, n_requests, seed, routing and
            max_num_batched_tokens, and takes prompt_len and gen_len as a distribution too
            ({dist: uniform, low, high} or {dist: lognormal, mean, sigma}).

    Returns:
        Every output of DESIGN.md section 4 (NaN where it has no meaning); training adds
        ``zero`` (the ZeRO stage), ``recompute`` (none or full) and ``interleave`` (virtual
        pipeline stages per chip) of the fastest step. Phase serve returns
        dse.serving.SERVE_OUTPUTS instead: ttft_p50_s, ttft_p99_s, tpot_p50_s, tpot_p99_s,
        goodput_per_s, max_rate_per_s (at P99 of both SLOs, system.ttft_slo_s and
        system.tpot_slo_s), ...

    Raises:
        ValueError: naming the bad field and its allowed values or range.
    """
    if scenario.get("phase") == "serve":
        return _serve(chip, workload, dict(scenario), efficiency, engine)
    chips, plan, sc, sys = _prepare(chip, workload, dict(scenario), engine)
    out = model.evaluate(chips, plan, sc, sys, efficiency, load_economics(economics))
    return {k: _scalar(k, v[0]) for k, v in out.items()}


def explain(chip: Any, workload: Any, *, efficiency: Efficiency = DEFAULT,
            economics: Any = "buyer", engine: Any = _ENGINE,
            **scenario: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``predict`` plus the per-operator table of the chosen split: one row per pass and
    operator with FLOP, bytes, intensity, time (all instances) and bound, per chip. Phase
    serve: its SLO figures, and the operators of its analytical steady state."""
    chips, plan, sc, sys = _prepare(chip, workload, dict(scenario), engine)
    out, detail = model.explain(chips, plan, sc, sys, efficiency, load_economics(economics))
    rows = []
    for p in plan.passes:
        d = detail[p.name]
        for j, name in enumerate(p.ops.names):
            mem = d["mem_bytes"][j]
            rows.append(dict(
                phase=p.name, op=name, kind=KIND_NAMES[p.ops.kind[j]], count=p.ops.count[j],
                flop=d["flop"][j], mem_bytes=mem, sram_bytes=d["sram_bytes"][j],
                link_bytes=d["link_bytes"][j],
                intensity=d["flop"][j] / mem if mem > 0 else np.inf,
                time_s=d["time_s"][j] * p.repeats,
                overhead_s=d["overhead_s"][j] * p.repeats,
                bound=model.BOUNDS[int(d["bound"][j])],
            ))
        if d["host_s"] > 0:  # the engine's host time per step, beside the chip's operators
            rows.append(dict(phase=p.name, op="engine host time", kind="host", count=1.0,
                             flop=0.0, mem_bytes=0.0, sram_bytes=0.0, link_bytes=0.0,
                             intensity=np.nan, time_s=d["host_s"] * p.repeats,
                             overhead_s=0.0, bound="host"))
    if scenario.get("phase") == "serve":
        return _serve(chip, workload, dict(scenario), efficiency, engine), rows
    return {k: _scalar(k, v[0]) for k, v in out.items()}, rows
