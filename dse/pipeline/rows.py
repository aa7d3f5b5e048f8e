"""One chunk of candidates x the scenarios of some niches -> an Arrow table of result rows.

Pure (no Ray, no files): the sweep's workers and the search's trials both call
``evaluate_rows``; one row per candidate x scenario holds the candidate's parameters, the
scenario, every output of DESIGN.md section 4 and the niche verdict (``feasible``,
``violation``: the evaluator's reason or the first broken constraint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.evaluator.model import LABELS, OUTPUTS, evaluate
from dse.pipeline.niche import Niche, NicheScenario, row_constraints
from hwspace.spec import from_columns

__all__ = ["evaluate_rows", "KEY_COLUMNS"]

KEY_COLUMNS = ("candidate_id", "niche", "scenario")


def _dictionary(values: np.ndarray) -> pa.DictionaryArray:
    """Strings as a dictionary column without building n Python strings."""
    labels, codes = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(labels))


def _constant(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))


def _labelled(codes: np.ndarray, labels: tuple[str, ...]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(labels))


def _violation(ns: NicheScenario, out: dict, cons: dict) -> pa.DictionaryArray:
    """"" where the row is feasible; else the evaluator's reason or the first constraint."""
    names = ("",) + tuple(f"fits:{r}" for r in LABELS["reason"][1:]) + tuple(ns.constraints)
    code = np.where(out["fits"] > 0, 0, out["reason"].astype(np.int64))
    for k, key in enumerate(ns.constraints):
        code = np.where((code == 0) & (cons[key] > 0), len(LABELS["reason"]) + k, code)
    return _labelled(code, names)


def _scenario_table(ns: NicheScenario, niche: Niche, chips, params: Mapping[str, np.ndarray],
                    candidate_id: np.ndarray, n_sys: np.ndarray, eff: Efficiency) -> pa.Table:
    out = evaluate(chips, ns.plan, ns.scenario, ns.system(n_sys), eff, niche.economics)
    out["system_power_w"] = out["power_w"] * n_sys
    cons = row_constraints(ns, out)
    feasible = np.logical_and.reduce([v <= 0 for v in cons.values()])
    n = len(candidate_id)
    cols: dict[str, pa.Array] = {
        "candidate_id": pa.array(candidate_id, pa.int64()),
        "niche": _constant(niche.name, n),
        "scenario": _constant(ns.name, n),
        "workload": _constant(ns.workload, n),
        "phase": _constant(ns.scenario.phase, n),
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
    cols["system_power_w"] = pa.array(out["system_power_w"], pa.float64(), from_pandas=True)
    cols["feasible"] = pa.array(feasible)
    cols["violation"] = _violation(ns, out, cons)
    return pa.table(cols)


def evaluate_rows(params: Mapping[str, np.ndarray], candidate_id: np.ndarray,
                  niches: Sequence[Niche], eff: Efficiency = DEFAULT) -> pa.Table:
    """Rows of every candidate x every scenario of ``niches``.

    Args:
        params: space columns (n_cand,) each: chip-spec columns and optionally ``chips``.
        candidate_id: (n_cand,) identifiers, unique within a run.
        niches: the niches whose scenarios to evaluate.
        eff: the global efficiency factors (robust ranking draws others).

    Returns:
        A table of n_cand x n_scenarios rows, grouped by niche then scenario.
    """
    spec = {k: v for k, v in params.items() if k != "chips"}
    chips = from_columns(spec)
    n_sys = np.broadcast_to(np.asarray(params.get("chips", 1), dtype=float), (chips.n,))
    tables = [_scenario_table(ns, niche, chips, params, candidate_id, n_sys, eff)
              for niche in niches for ns in niche.scenarios]
    return pa.concat_tables(tables, promote_options="permissive")
