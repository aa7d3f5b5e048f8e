"""Pareto fronts and hypervolumes of two minimised objectives."""

from __future__ import annotations

import numpy as np

__all__ = ["pareto_mask", "minimised", "hypervolume_2d", "reference_point"]


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
