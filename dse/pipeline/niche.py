"""Niches: the scenarios a market runs, its constraints and its two objectives.

A row (candidate x scenario) is feasible when the design fits and meets every constraint; a
candidate is feasible for the niche when all its rows are. Objectives aggregate over a
candidate's scenarios by geometric mean, so no single workload's scale dominates.
Constraint values follow Optuna's convention: <= 0 is feasible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dse.evaluator.model import OUTPUTS, System
from dse.presets import load_plan, load_workload
from workloads.ops import Plan
from workloads.scenario import Scenario, family_of, make_scenario

__all__ = ["NicheScenario", "Niche", "parse_niche", "CONSTRAINTS", "row_constraints",
           "DIRECTIONS", "candidate_scores", "score_columns"]

# constraint key -> (row column, sense): ">=" a floor, "<=" a cap.
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "min_throughput_per_s": ("throughput_per_s", ">="),
    "max_latency_s": ("latency_s", "<="),
    "max_system_cost_usd": ("system_cost_usd", "<="),
    "max_system_power_w": ("system_power_w", "<="),
    "max_usd_per_million_items": ("usd_per_million_items", "<="),
}
DIRECTIONS = ("max", "min")
_OBJECTIVE_COLUMNS = set(OUTPUTS) | {"system_power_w"}
_SYSTEM_KEYS = ("tpot_slo_s", "ttft_slo_s")


@dataclass(frozen=True)
class NicheScenario:
    name: str
    workload: str
    scenario: Scenario
    plan: Plan
    constraints: dict[str, float]  # the niche's, with this scenario's own on top
    tpot_slo_s: float | None = None
    ttft_slo_s: float | None = None

    def system(self, chips: np.ndarray | int) -> System:
        return System(chips=chips, tpot_slo_s=self.tpot_slo_s, ttft_slo_s=self.ttft_slo_s)


@dataclass(frozen=True)
class Niche:
    name: str
    scenarios: tuple[NicheScenario, ...]
    objectives: tuple[tuple[str, str], ...]  # (output column, "max" | "min")


def _constraints(where: str, raw: Mapping | None) -> dict[str, float]:
    out = {}
    for key, value in (raw or {}).items():
        if key not in CONSTRAINTS:
            raise ValueError(f"{where}.constraints: unknown {key!r}; allowed: "
                             f"{', '.join(CONSTRAINTS)}")
        if value is not None:
            out[str(key)] = float(value)
    return out


def _scenario(niche: str, name: str, spec: Mapping, constraints: dict) -> NicheScenario:
    spec = dict(spec)
    where = f"niche.{niche}.scenarios.{name}"
    own = _constraints(where, spec.pop("constraints", None))
    if "workload" not in spec:
        raise ValueError(f"{where}: workload is required")
    workload = load_workload(spec.pop("workload"))
    slos = {k: spec.pop(k) for k in _SYSTEM_KEYS if k in spec}
    for key, value in slos.items():
        if value is not None and not float(value) > 0:
            raise ValueError(f"{where}.{key} must be > 0, got {value}")
    try:
        sc = make_scenario(family_of(workload), {k: v for k, v in spec.items() if v is not None})
        plan = load_plan(workload, sc)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return NicheScenario(name, workload.name, sc, plan, {**constraints, **own}, **slos)


def parse_niche(cfg: Mapping[str, Any]) -> Niche:
    """A validated Niche from ``{name, objectives, constraints, scenarios}``."""
    name = str(cfg.get("name", "niche"))
    scenarios = cfg.get("scenarios") or {}
    if not scenarios:
        raise ValueError(f"niche.{name}: no scenarios")
    objectives = tuple((str(k), str(v)) for k, v in (cfg.get("objectives") or {}).items())
    if len(objectives) != 2:
        raise ValueError(f"niche.{name}.objectives: give exactly two, got {len(objectives)}")
    for column, direction in objectives:
        if column not in _OBJECTIVE_COLUMNS:
            raise ValueError(f"niche.{name}.objectives: {column!r} is not an output; choose "
                             f"from {', '.join(sorted(_OBJECTIVE_COLUMNS))}")
        if direction not in DIRECTIONS:
            raise ValueError(f"niche.{name}.objectives.{column}: direction must be max or min")
    constraints = _constraints(f"niche.{name}", cfg.get("constraints"))
    return Niche(name, tuple(_scenario(name, k, v, constraints) for k, v in scenarios.items()),
                 objectives)


def row_constraints(ns: NicheScenario, out: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Constraint values of one scenario's rows (n,), <= 0 feasible: ``fits`` (0 or 1) and
    each constraint as its relative miss. A row that cannot run misses every constraint."""
    values = {"fits": np.where(out["fits"] > 0, 0.0, 1.0)}
    for key, bound in ns.constraints.items():
        column, sense = CONSTRAINTS[key]
        x = np.asarray(out[column], dtype=float)
        miss = (bound - x) if sense == ">=" else (x - bound)
        with np.errstate(invalid="ignore"):
            values[key] = np.where(np.isnan(x), 1.0, miss / max(abs(bound), 1e-300))
    return values


def score_columns(niche: Niche) -> list[str]:
    """The row columns ``candidate_scores`` reads."""
    used = {CONSTRAINTS[k][0] for ns in niche.scenarios for k in ns.constraints}
    return ["candidate_id", "niche", "scenario", "feasible", "fits",
            *sorted(used | {c for c, _ in niche.objectives})]


def candidate_scores(rows: pd.DataFrame, niche: Niche,
                     extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per candidate of ``niche`` (indexed by candidate_id): each objective (and each
    ``extra`` column) as the geometric mean over the niche's scenarios, each constraint as its
    worst miss over them (``fits`` included; <= 0 feasible), and ``feasible`` (every scenario
    row feasible)."""
    rows = rows[rows["niche"] == niche.name]
    ids = rows["candidate_id"]
    out = pd.DataFrame(index=pd.Index(np.unique(ids), name="candidate_id"))
    for column in dict.fromkeys([c for c, _ in niche.objectives] + list(extra)):
        x = rows[column].astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(x.where(x > 0))
        # A candidate that cannot deliver one scenario has no aggregate (NaN), rather than
        # the mean of the scenarios it can run.
        grouped = logs.groupby(ids)
        out[column] = np.where(grouped.count() == grouped.size(), np.exp(grouped.mean()), np.nan)
    for ns in niche.scenarios:
        part = rows[rows["scenario"] == ns.name]
        cons = row_constraints(ns, {c: part[c].to_numpy() for c in part.columns})
        for key, value in cons.items():
            worst = pd.Series(value, index=part["candidate_id"].to_numpy())
            out[key] = np.fmax(out[key], worst.reindex(out.index)) if key in out else worst
    out["feasible"] = rows.groupby(ids)["feasible"].all()
    return out
