"""Ranking robustness: the top candidates re-ranked under the calibration spread's factors;
rank intervals that widen when the factors' spread widens, and a CLI that prints them."""

import dataclasses

import pytest

from dse.analysis.calibration import BOUNDS
from dse.analysis.ranking import load_niche, rank, run_params
from dse.analysis.robust import load_spread, robust_ranks, save_spread, widen
from dse.cli import main
from dse.evaluator.efficiency import DEFAULT

# A spread like the leave-one-chip-out fits' (data/calibration_spread.json): the factors the
# data pins loosely (compute_max, kv_memory) scatter most; op_overhead_s is not fitted.
SPREAD = [dataclasses.replace(DEFAULT, compute_max=c, kv_memory=k, memory=b)
          for c, k, b in [(0.60, 0.60, 0.72), (0.70, 0.70, 0.77), (0.80, 0.85, 0.82),
                          (0.65, 0.75, 0.80)]]


@pytest.fixture(scope="module")
def ranked(small_runs):
    _, sweep, _ = small_runs
    niche = load_niche(sweep, "edge_vision")
    by = niche.objectives[0][0]
    return rank([sweep], niche, by, top=0), niche, by, run_params([sweep])


def _widths(ranked, sets):
    table, niche, by, params = ranked
    out = robust_ranks(table, niche, by, params, sets, top=12, k=3)
    return out, (out["rank_high"] - out["rank_low"]).to_numpy()


def test_no_spread_no_interval_and_the_defaults_rank_as_rank_does(ranked):
    # One factor set, the defaults: every candidate keeps the rank `dse rank` gave it.
    out, widths = _widths(ranked, [DEFAULT])
    assert (widths == 0).all()
    assert (out["rank_low"] == out["rank"]).all()
    assert set(out["p_top_k"]) <= {0.0, 1.0} and out["p_top_k"].sum() == 3


def test_rank_intervals_widen_when_the_spread_widens(ranked):
    # The demo sweep's edge designs hold their ranks within a tenth of the spread and have
    # made every swap they will make by a quarter of it (its leader then leaves the 75 W budget).
    _, narrow = _widths(ranked, widen(SPREAD, 0.1))
    _, wide = _widths(ranked, widen(SPREAD, 2.0))
    _, at_mean = _widths(ranked, widen(SPREAD, 0.0))
    assert (at_mean == 0).all()  # every draw at the mean: one ranking
    assert wide.sum() > narrow.sum()
    assert wide.max() >= narrow.max()


def test_widen_stays_inside_the_calibration_bounds():
    for eff in widen(SPREAD, 50.0):
        for name, (low, high, _) in BOUNDS.items():
            assert low <= getattr(eff, name) <= high


def test_spread_file_round_trips(tmp_path):
    path = save_spread({f"chip{i}": e for i, e in enumerate(SPREAD)}, tmp_path / "s.json")
    back = load_spread(path)
    assert [e.kv_memory for e in back] == [e.kv_memory for e in SPREAD]
    with pytest.raises(ValueError, match="dse calibrate spread=true"):
        load_spread(tmp_path / "missing.json")


def test_dse_rank_robust_prints_intervals(small_runs, tmp_path, capsys):
    _, sweep, _ = small_runs
    spread = save_spread({f"c{i}": e for i, e in enumerate(SPREAD)}, tmp_path / "s.json")
    main(["rank", f"run={sweep}", "robust=true", "robust_top=6", "robust_k=2",
          "references=false", f"robust_spread={spread}"])
    out = capsys.readouterr().out
    assert "how sure the ranking is" in out and "P(top 2)" in out
    assert "rank_low" in out and "p_top_k" in out
