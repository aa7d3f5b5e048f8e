"""How sure is a ranking? The top candidates re-evaluated with the global efficiency factors
drawn from their calibration spread: each candidate's rank interval and the probability that
it stays in the top k.

The spread is the set of leave-one-chip-out fits (dse.analysis.calibration.fold_fits): each
is what the factors would be had one chip never been measured, so their scatter is how far
the measurements pin each factor down. The fits live in data/calibration_spread.json, written
by ``dse calibrate spread=true``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from dse.analysis.calibration import BOUNDS
from dse.analysis.ranking import direction_of
from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.pipeline.niche import Niche, candidate_scores
from dse.pipeline.rows import evaluate_rows

__all__ = ["SPREAD", "save_spread", "load_spread", "widen", "robust_ranks"]

SPREAD = Path(__file__).resolve().parents[2] / "data" / "calibration_spread.json"


def save_spread(fits: dict[str, Efficiency], path: str | Path = SPREAD) -> Path:
    """The fold fits as JSON: {held-out chip: {factor: value}} for the fitted factors."""
    path = Path(path)
    path.write_text(json.dumps({held: {k: getattr(e, k) for k in BOUNDS}
                                for held, e in fits.items()}, indent=1) + "\n")
    return path


def load_spread(path: str | Path = SPREAD) -> list[Efficiency]:
    """The factor sets of a spread file, each on top of the defaults."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no calibration spread; make it with "
                         "`dse calibrate spread=true`")
    sets = json.loads(path.read_text())
    return [dataclasses.replace(DEFAULT, **{k: float(v) for k, v in s.items() if k in BOUNDS})
            for s in sets.values()]


def widen(sets: list[Efficiency], scale: float) -> list[Efficiency]:
    """The factor sets with each one's deviation from their mean scaled by ``scale`` (0: all
    at the mean), kept inside the calibration bounds: a what-if on a wider or narrower
    spread."""
    out = []
    for eff in sets:
        values = {}
        for name, (low, high, _) in BOUNDS.items():
            mean = float(np.mean([getattr(e, name) for e in sets]))
            values[name] = float(np.clip(mean + scale * (getattr(eff, name) - mean), low, high))
        out.append(dataclasses.replace(eff, **values))
    return out


def robust_ranks(ranked: pd.DataFrame, niche: Niche, by: str, params: list[str],
                 sets: list[Efficiency], top: int = 20, k: int = 10) -> pd.DataFrame:
    """The ``top`` first candidates of ``ranked`` (dse.analysis.ranking.rank), re-evaluated on
    the niche under every factor set of ``sets`` and ranked among themselves by ``by``.

    Returns:
        One row per candidate: its rank with the defaults (``rank``), the lowest and highest
        rank over the draws (``rank_low``, ``rank_high``), and ``p_top_k``, the share of
        draws in which it ranks within the first ``k``. A draw in which a candidate becomes
        infeasible ranks it last. Candidates outside the first ``top`` are not re-evaluated,
        so ranks are within that set.
    """
    head = ranked.head(top)
    cols = {p: head[p].to_numpy() for p in params}
    ids = np.arange(len(head))
    ranks = np.empty((len(sets), len(head)), dtype=int)
    sign = 1.0 if direction_of(niche, by) == "min" else -1.0
    for d, eff in enumerate(sets):
        rows = evaluate_rows(cols, ids, [niche], eff).to_pandas()
        scores = candidate_scores(rows, niche, extra=(by,))
        value = np.where(scores["feasible"].to_numpy(), scores[by].to_numpy(float), np.nan)
        key = np.where(np.isfinite(value), sign * value, np.inf)
        ranks[d] = np.argsort(np.argsort(key, kind="stable"), kind="stable") + 1
    return pd.DataFrame({
        "candidate_id": head.index, "rank": np.arange(1, len(head) + 1), by: head[by].to_numpy(),
        "rank_low": ranks.min(axis=0), "rank_high": ranks.max(axis=0),
        "p_top_k": (ranks <= k).mean(axis=0),
    })
