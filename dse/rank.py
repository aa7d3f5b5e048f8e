"""Candidate-level results of a niche: feasibility, aggregated objectives, Pareto front."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dse.niche import Niche, candidate_scores

__all__ = ["candidates", "pareto_mask", "top", "minimised", "hypervolume_2d", "reference_point"]


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
    """One row per candidate of ``niche``: its parameters, its scores (niche.candidate_scores)
    and ``violation``, the first scenario's miss."""
    rows = rows[rows["niche"] == niche.name]
    out = rows.groupby("candidate_id", sort=True, observed=True)[params].first()
    scores = candidate_scores(rows, niche)
    out = out.join(scores[[c for c, _ in niche.objectives] + ["feasible"]])
    viol = rows.loc[~rows["feasible"].astype(bool), ["candidate_id", "scenario", "violation"]]
    first = viol.groupby("candidate_id", observed=True).first()
    out["violation"] = (first["scenario"].astype(str) + ": " + first["violation"].astype(str)
                        ).reindex(out.index).fillna("")
    return out


def hypervolume_2d(f: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by the points of ``f`` (n, 2), all minimised, up to ``ref`` (2,).
    Points beyond ``ref`` add nothing."""
    f = f[np.all(f < ref, axis=1)]
    if len(f) == 0:
        return 0.0
    front = f[pareto_mask(f)]
    front = front[np.lexsort((front[:, 1], front[:, 0]))]
    widths = np.diff(np.append(front[:, 0], ref[0]))
    return float(np.sum(widths * (ref[1] - front[:, 1])))


def reference_point(directions: list[str], f_min: np.ndarray) -> np.ndarray:
    """A hypervolume reference in minimised space: 0 (nothing gained) for a maximised
    objective; 10 % beyond the worst value seen for a minimised one."""
    worst = np.max(f_min, axis=0) if len(f_min) else np.zeros(len(directions))
    return np.array([0.0 if d == "max" else w * 1.1 for d, w in zip(directions, worst,
                                                                      strict=True)])


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
