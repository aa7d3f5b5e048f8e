"""Candidate-level results of a niche: feasibility, aggregated objectives, Pareto front."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dse.niche import Niche

__all__ = ["candidates", "pareto_mask", "top", "minimised"]


def minimised(values: np.ndarray, directions: list[str]) -> np.ndarray:
    """Objectives (n, k) turned so that lower is better in every column (Optuna's
    ``_normalize_value``: maximised columns are negated once, then everything minimises)."""
    sign = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    return values * sign


def pareto_mask(f: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``f`` (n, 2), all minimised. Distinct points sorted by the first
    objective (then the second) are on the front exactly when their second objective beats
    every point before them; duplicates share their point's verdict."""
    if f.ndim != 2 or f.shape[1] != 2:
        raise ValueError(f"pareto_mask takes (n, 2) objectives, got shape {f.shape}")
    if f.shape[0] == 0:
        return np.zeros(0, bool)
    uniq, inverse = np.unique(f, axis=0, return_inverse=True)
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(uniq[:, 1])[:-1]))
    return (uniq[:, 1] < best_before)[inverse.ravel()]


def candidates(rows: pd.DataFrame, niche: Niche, params: list[str]) -> pd.DataFrame:
    """One row per candidate of ``niche``: its parameters, ``feasible`` (every scenario
    feasible), each objective as the geometric mean over scenarios, and ``violation``
    (the first scenario's miss)."""
    rows = rows[rows["niche"] == niche.name]
    grouped = rows.groupby("candidate_id", sort=True, observed=True)
    out = grouped[params].first()
    out["feasible"] = grouped["feasible"].all()
    for column, _ in niche.objectives:
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(rows[column].astype(float).where(rows[column] > 0))
        out[column] = np.exp(logs.groupby(rows["candidate_id"]).mean())
    viol = rows.loc[~rows["feasible"].astype(bool), ["candidate_id", "scenario", "violation"]]
    first = viol.groupby("candidate_id", observed=True).first()
    out["violation"] = (first["scenario"].astype(str) + ": " + first["violation"].astype(str)
                        ).reindex(out.index).fillna("")
    return out


def top(cands: pd.DataFrame, niche: Niche, n: int = 10) -> pd.DataFrame:
    """The ``n`` best feasible candidates by the niche's first objective, with ``pareto``
    marking the members of the feasible Pareto front."""
    feasible = cands[cands["feasible"]].copy()
    columns = [c for c, _ in niche.objectives]
    f = minimised(feasible[columns].to_numpy(float), [d for _, d in niche.objectives])
    ok = np.isfinite(f).all(axis=1)
    feasible = feasible[ok]
    feasible["pareto"] = pareto_mask(f[ok])
    first, direction = niche.objectives[0]
    return feasible.sort_values(first, ascending=direction == "min").head(n)
