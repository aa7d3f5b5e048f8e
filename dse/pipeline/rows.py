"""One chunk of candidates x the scenarios of some niches -> an Arrow table of result rows.

Pure (no Ray, no files): the sweep's workers and the search's trials both call
``evaluate_rows``; one row per candidate x scenario holds the candidate's parameters, the
scenario, every output of DESIGN.md section 4 and the niche verdict (``feasible``,
``violation``: the evaluator's reason or the first broken constraint).

A serve scenario (phase serve) is judged analytically first, as every scenario: its row
holds the evaluator's steady state at the mean lengths under the SLOs. Only the candidates
of the chunk that dse.serving.shortlist keeps (those whose analytical requests/s per $ is
within a factor 2.5 of the chunk's best feasible one; a chunk's best is at most the run's,
so a chunk keeps every candidate the whole run would) are then simulated, and their rows
gain the simulated SERVE_COLUMNS; the others carry null there and the violation
``serve:not_shortlisted``, and a simulated row whose P99s miss the SLOs at every rate (or
that the simulation cannot serve) ``serve:misses_slo``. ``max_rate_per_w`` divides by the
power of the steady state without SLOs (dse.serving.serve), not by the row's
``system_power_w`` (the analytical steady state under them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.evaluator.model import LABELS, OUTPUTS, evaluate
from dse.pipeline.niche import Niche, NicheScenario, row_constraints
from dse.serving import PRECISION_KEYS, SERVE_COLUMNS, serve, shortlist
from hwspace.spec import from_columns

__all__ = ["evaluate_rows", "KEY_COLUMNS"]

KEY_COLUMNS = ("candidate_id", "niche", "scenario")
# Why a serve row is not feasible besides the evaluator's reasons and the constraints.
SERVE_VIOLATIONS = ("serve:not_shortlisted", "serve:misses_slo")


def _dictionary(values: np.ndarray) -> pa.DictionaryArray:
    """Strings as a dictionary column without building n Python strings."""
    labels, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(labels))


def _constant(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))


def _labelled(codes: np.ndarray, labels: tuple[str, ...]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(labels))


def _violation(ns: NicheScenario, out: dict, cons: dict,
               served: np.ndarray | None) -> pa.DictionaryArray:
    """"" where the row is feasible; else the evaluator's reason, the first constraint, or
    (serve rows, ``served``: 0 or 1 + the index in SERVE_VIOLATIONS) the serving verdict."""
    names = ("",) + tuple(f"fits:{r}" for r in LABELS["reason"][1:]) + tuple(ns.constraints)
    code = np.where(out["fits"] > 0, 0, out["reason"].astype(np.int64))
    for k, key in enumerate(ns.constraints):
        code = np.where((code == 0) & (cons[key] > 0), len(LABELS["reason"]) + k, code)
    if served is not None:
        code = np.where((code == 0) & (served > 0), len(names) - 1 + served, code)
        names += SERVE_VIOLATIONS
    return _labelled(code, names)


def _served(ns: NicheScenario, chips, n_sys: np.ndarray, out: dict, feasible: np.ndarray,
            eff: Efficiency, simulate_all: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(SERVE_COLUMNS (n,) each, verdict (n,): 0 served, 1 + index in SERVE_VIOLATIONS) of a
    serve scenario: the shortlisted (or all) feasible rows simulated, one by one."""
    n = len(n_sys)
    capacity = np.where(feasible, out["throughput_per_s"] / ns.scenario.gen_len, np.nan)
    keep = feasible if simulate_all else shortlist(capacity, out["system_cost_usd"])
    cols = {c: np.full(n, np.nan) for c in SERVE_COLUMNS}
    verdict = np.where(feasible & ~keep, 1, 0)
    precision = {k: getattr(ns.scenario, k) for k in PRECISION_KEYS}
    for i in np.flatnonzero(keep):
        got = serve(chips.take(np.array([i])), ns.workload, system=ns.system(int(n_sys[i])),
                    efficiency=eff, **ns.serve, **precision)
        for c in SERVE_COLUMNS:
            cols[c][i] = got[c]
        verdict[i] = 0 if got["max_rate_per_s"] > 0 else 2
    return cols, verdict


def _scenario_table(ns: NicheScenario, niche: Niche, chips, params: Mapping[str, np.ndarray],
                    candidate_id: np.ndarray, n_sys: np.ndarray, eff: Efficiency,
                    simulate_all: bool) -> pa.Table:
    out = evaluate(chips, ns.plan, ns.scenario, ns.system(n_sys), eff, niche.economics)
    out["system_power_w"] = out["power_w"] * n_sys
    cons = row_constraints(ns, out)
    feasible = np.logical_and.reduce([v <= 0 for v in cons.values()])
    served = None
    if ns.serve is not None:
        serve_cols, served = _served(ns, chips, n_sys, out, feasible, eff, simulate_all)
        out.update(serve_cols)
        feasible &= served == 0
    n = len(candidate_id)
    cols: dict[str, pa.Array] = {
        "candidate_id": pa.array(candidate_id, pa.int64()),
        "niche": _constant(niche.name, n),
        "scenario": _constant(ns.name, n),
        "workload": _constant(ns.workload, n),
        "phase": _constant("serve" if ns.serve is not None else ns.scenario.phase, n),
    }
    for name, values in params.items():
        values = np.asarray(values)
        cols[name] = _dictionary(values) if values.dtype.kind in "US" else pa.array(values)
    for key in OUTPUTS:
        if key in LABELS:
            cols[key] = _labelled(out[key], LABELS[key])
        elif key == "fits":
            cols[key] = pa.array(out[key] > 0)
        else:  # NaN (no meaning) is stored as null: SQL aggregates skip it
            cols[key] = pa.array(out[key], pa.float64(), from_pandas=True)
    for key in ["system_power_w"] + ([*SERVE_COLUMNS] if served is not None else []):
        cols[key] = pa.array(out[key], pa.float64(), from_pandas=True)
    cols["feasible"] = pa.array(feasible)
    cols["violation"] = _violation(ns, out, cons, served)
    return pa.table(cols)


def evaluate_rows(params: Mapping[str, np.ndarray], candidate_id: np.ndarray,
                  niches: Sequence[Niche], eff: Efficiency = DEFAULT,
                  simulate_all: bool = False) -> pa.Table:
    """Rows of every candidate x every scenario of ``niches``.

    Args:
        params: space columns (n_cand,) each: chip-spec columns and optionally ``chips``.
        candidate_id: (n_cand,) identifiers, unique within a run.
        niches: the niches whose scenarios to evaluate.
        eff: the global efficiency factors (robust ranking draws others).
        simulate_all: serve scenarios simulate every feasible candidate, not the shortlist
            (a fixed handful such as the reference chips, each placed on its own).

    Returns:
        A table of n_cand x n_scenarios rows, grouped by niche then scenario.
    """
    spec = {k: v for k, v in params.items() if k != "chips"}
    chips = from_columns(spec)
    n_sys = np.broadcast_to(np.asarray(params.get("chips", 1), dtype=float), (chips.n,))
    tables = [_scenario_table(ns, niche, chips, params, candidate_id, n_sys, eff,
                              simulate_all)
              for niche in niches for ns in niche.scenarios]
    return pa.concat_tables(tables, promote_options="permissive")
