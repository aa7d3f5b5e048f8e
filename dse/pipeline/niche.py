"""Niches: the scenarios a market runs, its constraints and its two objectives.

A row (candidate x scenario) is feasible when the design fits and meets every constraint; a
candidate is feasible for the niche when all its rows are. Objectives aggregate over a
candidate's scenarios by geometric mean, so no single workload's scale dominates.
Constraint values follow Optuna's convention: <= 0 is feasible.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from omegaconf import MISSING

from dse.evaluator.model import OUTPUTS, System
from dse.inputs import build, shown
from dse.presets import load_economics, load_plan, load_workload
from dse.serving import SERVE_COLUMNS, check_settings
from dse.settings import SystemConfig, to_system
from hwspace.cost import EconomicsConfig
from workloads.ops import Plan
from workloads.scenario import (Scenario, ScenarioConfig, family_of, make_scenario,
                                serve_settings)

if typing.TYPE_CHECKING:
    import pandas as pd

__all__ = ["NicheConfig", "NicheScenarioConfig", "NicheScenario", "Niche", "parse_niche",
           "CONSTRAINTS", "row_constraints", "DIRECTIONS", "candidate_scores", "score_columns"]

# constraint key -> (row column, sense): ">=" a floor, "<=" a cap.
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "min_throughput_per_s": ("throughput_per_s", ">="),
    "max_latency_s": ("latency_s", "<="),
    "max_system_cost_usd": ("system_cost_usd", "<="),
    "max_system_power_w": ("system_power_w", "<="),
    "max_usd_per_million_items": ("usd_per_million_items", "<="),
}
DIRECTIONS = ("max", "min")
_OBJECTIVE_COLUMNS = tuple(sorted(set(OUTPUTS) | {"system_power_w"} | set(SERVE_COLUMNS)))
_CONSTRAINT_META = dict(keys=tuple(CONSTRAINTS), values=dict(above=0.0))


@dataclass
class NicheConfig:
    """Schema of conf/niche: two objectives, constraints (each > 0: floors and caps of
    positive outputs), named scenarios (NicheScenarioConfig) and the economic view its cost
    outputs take (a conf/economics preset name or a mapping of EconomicsConfig fields)."""

    name: str = MISSING
    description: str = ""
    economics: Any = "buyer"
    objectives: dict[str, str] = field(default_factory=dict, metadata=dict(
        keys=_OBJECTIVE_COLUMNS, values=dict(choices=DIRECTIONS)))
    constraints: dict[str, Optional[float]] = field(default_factory=dict,
                                                    metadata=_CONSTRAINT_META)
    scenarios: dict[str, Any] = field(default_factory=dict)  # name -> NicheScenarioConfig


def _copy(f: dataclasses.Field, schema: type) -> tuple:
    return (f.name, typing.get_type_hints(schema)[f.name],
            field(default=f.default, default_factory=f.default_factory, metadata=f.metadata))


# One scenario of a niche: its workload, its own constraints, and any scenario or system
# key (chips come from the design space).
NicheScenarioConfig = dataclasses.make_dataclass("NicheScenarioConfig", [
    ("workload", str, field(default=MISSING)),
    ("constraints", dict[str, Optional[float]], field(default_factory=dict,
                                                      metadata=_CONSTRAINT_META)),
    *[_copy(f, ScenarioConfig) for f in dataclasses.fields(ScenarioConfig)],
    *[_copy(f, SystemConfig) for f in dataclasses.fields(SystemConfig) if f.name != "chips"],
])
_SYSTEM_KEYS = tuple(f.name for f in dataclasses.fields(SystemConfig) if f.name != "chips")


@dataclass(frozen=True)
class NicheScenario:
    name: str
    workload: str
    scenario: Scenario
    plan: Plan
    constraints: dict[str, float]  # the niche's, with this scenario's own on top
    tpot_slo_s: float | None = None
    ttft_slo_s: float | None = None
    system_config: SystemConfig = field(default_factory=SystemConfig)  # chips: the space's
    # phase serve: dse.serving.serve's settings; ``scenario`` is then its analytical steady
    # state at the mean lengths (workloads.scenario.make_scenario)
    serve: dict[str, Any] | None = None

    def system(self, chips: np.ndarray | int) -> System:
        return to_system(self.system_config, chips)

    def predict_inputs(self, chips: int) -> dict[str, Any]:
        """dse.api.predict's keywords for this scenario on a system of ``chips``: its
        settings and its system's (SLOs, a pinned tp/pp/ep, caps, host tier), as a sweep
        evaluated it; phase serve: its serve settings, not the analytical steady state."""
        system = {**dataclasses.asdict(self.system_config), "chips": chips}
        scenario = {**self.scenario.inputs(), **system}
        if self.serve is not None:
            precision = ("weights", "activations", "kv_cache", "sparsity")
            scenario = {**{k: scenario[k] for k in precision}, **system, "phase": "serve",
                        **self.serve}
        return {k: v for k, v in scenario.items() if v is not None}


@dataclass(frozen=True)
class Niche:
    name: str
    scenarios: tuple[NicheScenario, ...]
    objectives: tuple[tuple[str, str], ...]  # (output column, "max" | "min")
    economics: EconomicsConfig = field(default_factory=EconomicsConfig)


def _scenario(name: str, spec: Any, constraints: dict, where: str) -> NicheScenario:
    cfg = build(NicheScenarioConfig, spec, where)
    workload = load_workload(cfg.workload)
    # Each field is checked above; tp x pp dividing the chips is a rule per candidate
    # (the space gives the chips), where a split that does not divide is infeasible.
    system = SystemConfig(**{k: getattr(cfg, k) for k in _SYSTEM_KEYS})
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(ScenarioConfig)}
    serve = serve_settings(values) if cfg.phase == "serve" else None
    if serve is not None and system.ttft_slo_s is None and system.tpot_slo_s is None:
        raise ValueError(f"{where}.ttft_slo_s = null: phase serve in a niche needs ttft_slo_s "
                         f"or tpot_slo_s (max_rate_per_s holds them at P99)")
    try:
        sc = make_scenario(family_of(workload), values)
        if serve is not None:
            sc = _served_means(workload, sc, system, serve)
        plan = load_plan(workload, sc)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    own = {k: v for k, v in cfg.constraints.items() if v is not None}
    return NicheScenario(name, workload.name, sc, plan, {**constraints, **own},
                         system.tpot_slo_s, system.ttft_slo_s, system, serve)


def _served_means(workload, sc: Scenario, system: SystemConfig, serve: dict) -> Scenario:
    """``sc`` at the mean lengths of the requests ``serve`` draws or reads (checking them and
    the engine's caps up front: a sweep's workers then cannot fail on them)."""
    unit, _ = check_settings(workload, to_system(system), **serve)
    return dataclasses.replace(sc, prompt_len=max(1, round(float(unit.prompt_len.mean()))),
                               gen_len=max(1, round(float(unit.gen_len.mean()))))


def parse_niche(cfg: Mapping[str, Any]) -> Niche:
    """A validated Niche from ``{name, objectives, constraints, scenarios}`` (NicheConfig)."""
    # A conf/niche file read as plain YAML still holds Hydra's defaults list: not a setting.
    niche = build(NicheConfig, {k: v for k, v in cfg.items() if k != "defaults"}, "niche")
    if not niche.scenarios:
        raise ValueError("niche.scenarios = {}: allowed: at least one named scenario")
    if len(niche.objectives) != 2:
        raise ValueError(f"niche.objectives = {shown(niche.objectives)}: allowed: exactly two "
                         f"output columns, each max or min")
    constraints = {k: v for k, v in niche.constraints.items() if v is not None}
    scenarios = tuple(_scenario(str(k), v, constraints, f"niche.scenarios.{k}")
                      for k, v in niche.scenarios.items())
    return Niche(niche.name, scenarios, tuple(niche.objectives.items()),
                 load_economics(niche.economics, "niche.economics"))


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
    import pandas as pd  # only here: `dse predict` loads niches' schemas, never a frame

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
