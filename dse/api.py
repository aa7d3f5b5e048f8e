"""predict(): the model for one chip and one scenario, as a dict (DESIGN.md section 6)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dse.evaluator import model
from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.evaluator.parallel import MAX_CHIPS
from dse.presets import load_chip, load_plan, load_workload
from hwspace.spec import from_configs
from workloads.ops import KIND_NAMES
from workloads.scenario import family_of, make_scenario

__all__ = ["predict", "explain", "SYSTEM_KEYS"]

SYSTEM_KEYS = ("chips", "tpot_slo_s", "ttft_slo_s", "max_num_seqs", "scale_up", "network_gb_s",
               "kv_host_gb", "host_gb_s", "tp", "pp")
_INTS = ("max_batch", "batch", "tp", "pp", "dp", "zero", "interleave")
# System figures: (lowest, highest) and whether the lowest itself is allowed (host memory
# may be 0: no host tier; seconds and GB/s may not).
_SYSTEM_NUMBERS = {"tpot_slo_s": (0.0, 1e9, False), "ttft_slo_s": (0.0, 1e9, False),
                   "network_gb_s": (0.0, 1e6, False), "host_gb_s": (0.0, 1e6, False),
                   "kv_host_gb": (0.0, 1e6, True)}


def _whole(key: str, value: Any, high: int) -> int:
    """``value`` as a whole number in [1, high]; ValueError naming ``key`` otherwise."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value == int(value) and 1 <= value <= high):
        raise ValueError(f"{key} must be a whole number in [1, {high:,}], got {value!r}")
    return int(value)


def _system(system: dict) -> model.System:
    """A validated System from the SYSTEM_KEYS a caller gave."""
    for key, (low, high, closed) in _SYSTEM_NUMBERS.items():
        value = system.get(key)
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and (low <= value if closed else low < value) and value <= high
                and math.isfinite(value)):
            raise ValueError(f"{key} must be a finite number {'>=' if closed else '>'} "
                             f"{low:g} and <= {high:g}, got {value!r}")
    seqs = system.get("max_num_seqs", model.MAX_NUM_SEQS)
    numbers = {k: float(system[k]) for k in ("network_gb_s", "host_gb_s", "kv_host_gb")
               if system.get(k) is not None}
    return model.System(
        chips=_whole("chips", system.get("chips", 1), MAX_CHIPS),
        tpot_slo_s=system.get("tpot_slo_s"), ttft_slo_s=system.get("ttft_slo_s"),
        max_num_seqs=None if seqs is None else _whole("max_num_seqs", seqs, 10_000_000),
        scale_up=_whole("scale_up", system.get("scale_up", model.System.scale_up), MAX_CHIPS),
        **{k: _whole(k, system[k], MAX_CHIPS) for k in ("tp", "pp")
           if system.get(k) is not None},
        **numbers)


def _prepare(chip: Any, workload: Any, scenario: dict):
    cfg_chip = load_chip(chip)
    cfg_work = load_workload(workload)
    sys = _system({k: scenario.pop(k) for k in SYSTEM_KEYS if k in scenario})
    sc = make_scenario(family_of(cfg_work), scenario)
    return from_configs([cfg_chip]), load_plan(cfg_work, sc), sc, sys


def _scalar(key: str, value: float) -> Any:
    if key in model.LABELS:
        return model.LABELS[key][int(value)]
    if key == "fits":
        return bool(value)
    if key in _INTS and math.isfinite(value):
        return int(value)
    return float(value)


def predict(chip: Any, workload: Any, *, efficiency: Efficiency = DEFAULT,
            **scenario: Any) -> dict[str, Any]:
    """Evaluate one chip on one workload scenario.

    Args:
        chip: a preset name (``"h100"``), a dict of DESIGN.md section 3, or a YAML path.
        workload: a preset name (``"llama2-70b"``), a dict, or a YAML path.
        efficiency: global efficiency factors (defaults: dse.evaluator.efficiency.DEFAULT).
        **scenario: phase, batch (int or "max"), prompt_len, gen_len, context_len, weights,
            activations, kv_cache, sparsity, batching, draft, spec_tokens, acceptance,
            optimizer, zero, recompute, interleave, chips, tpot_slo_s, ttft_slo_s,
            max_num_seqs, scale_up, network_gb_s, kv_host_gb, host_gb_s, tp and pp (pin
            the split: a published setup).

    Returns:
        Every output of DESIGN.md section 4 (NaN where it has no meaning); training adds
        ``zero`` (the ZeRO stage), ``recompute`` (none or full) and ``interleave`` (virtual
        pipeline stages per chip) of the fastest step.

    Raises:
        ValueError: naming the bad field and its allowed values or range.
    """
    chips, plan, sc, sys = _prepare(chip, workload, dict(scenario))
    out = model.evaluate(chips, plan, sc, sys, efficiency)
    return {k: _scalar(k, v[0]) for k, v in out.items()}


def explain(chip: Any, workload: Any, *, efficiency: Efficiency = DEFAULT,
            **scenario: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``predict`` plus the per-operator table of the chosen split: one row per pass and
    operator with FLOP, bytes, intensity, time (all instances) and bound, per chip."""
    chips, plan, sc, sys = _prepare(chip, workload, dict(scenario))
    out, detail = model.explain(chips, plan, sc, sys, efficiency)
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
    return {k: _scalar(k, v[0]) for k, v in out.items()}, rows
