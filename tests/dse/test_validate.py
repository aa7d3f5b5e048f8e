"""dse validate and calibrate: public rows, a CSV with an unmappable row, a deterministic fit,
and the leave-one-chip-out figure the Fidelity issue sets as its floor."""

import csv
import dataclasses
import json
import subprocess
import sys

import pandas as pd
import pytest

from dse.analysis.calibration import BOUNDS, fit, leave_one_out
from dse.analysis.validate import DATA, load_cases, summary, validate
from dse.evaluator.efficiency import DEFAULT


def test_public_rows_all_map_or_say_why():
    cases, unmapped = load_cases()
    with DATA.open() as f:
        n_rows = sum(1 for _ in csv.DictReader(f))
    assert len(cases) + len(unmapped) == n_rows
    # Fidelity 2: 200+ mapped rows over 10+ chips and 3+ vendors.
    assert len(cases) >= 200
    assert len({c.chip for c in cases}) >= 10 and len({c.vendor for c in cases}) >= 3
    assert all(u.reason for u in unmapped)
    frame = validate(cases)
    assert frame["predicted"].notna().all()  # every mapped row runs on its preset


def test_a_row_that_cannot_be_mapped_is_listed_not_dropped(tmp_path):
    with DATA.open() as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    mine = [dict(rows[0]), next(r for r in rows if r["id"] == "103")]
    mine[0].update(id="900", chip="Imaginary Accelerator X1")
    path = tmp_path / "mine.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(mine)
    cases, unmapped = load_cases(path)
    assert [c.row_id for c in cases] == ["103"]
    assert [u.row_id for u in unmapped] == ["900"]
    assert "Imaginary Accelerator X1" in unmapped[0].reason

    run = tmp_path / "run"
    res = _validate(f"data={path}", f"hydra.run.dir={run}")
    # The summary comes first; the unmapped rows only when asked for (issue 20, item 4).
    assert res.stdout.splitlines()[0].startswith(
        "1 measured rows over 1 chips: median absolute error ")
    assert res.stdout.splitlines()[0].endswith("(in-sample); 1 rows not mapped")
    assert "Imaginary Accelerator X1" not in res.stdout
    assert "1 rows cannot be mapped: show_unmapped=true lists them" in res.stdout
    listed = _validate(f"data={path}", f"hydra.run.dir={tmp_path / 'listed'}",
                       "show_unmapped=true")
    assert "Imaginary Accelerator X1" in listed.stdout
    assert listed.stdout.index("median absolute error") < listed.stdout.index("Imaginary")
    saved = pd.read_parquet(run / "validation.parquet")
    assert set(saved["id"]) == {"103", "900"}
    assert saved.loc[saved["id"] == "900", "reason"].item()
    assert (run / "validation.png").stat().st_size > 10_000
    assert json.loads((run / "summary.json").read_text())["overall"] >= 0


def _validate(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "dse.cli", "validate", *args],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return res


def test_each_fold_reports_progress_and_show_unmapped_is_a_switch(tmp_path):
    from dse.analysis.calibration import fold_fits

    cases = [c for c in load_cases()[0] if c.chip in ("h100", "a100", "gaudi2")]
    held = []
    fold_fits(cases, "chip", on_fold=held.append, sweeps=1, steps=2)
    assert held == ["a100", "gaudi2", "h100"]  # one call per fold, in the folds' order
    bad = subprocess.run([sys.executable, "-m", "dse.cli", "validate", "show_unmapped=2",
                          f"hydra.run.dir={tmp_path}"], capture_output=True, text=True)
    assert bad.returncode == 2 and "show_unmapped" in bad.stderr


def test_calibration_fit_is_deterministic_and_inside_its_bounds():
    cases, _ = load_cases()
    a = fit(cases, sweeps=1, steps=4)
    b = fit(cases, sweeps=1, steps=4)
    assert a == b
    for name, (low, high, _) in BOUNDS.items():
        assert low <= getattr(a, name) <= high


def test_defaults_are_the_fit_of_the_public_rows():
    # dse/evaluator/efficiency.py must hold what `dse calibrate` fits today (rounded to 3 digits).
    fitted = fit(load_cases()[0])
    for name in BOUNDS:
        assert getattr(DEFAULT, name) == pytest.approx(getattr(fitted, name), rel=0.02), name


@pytest.mark.slow
@pytest.mark.parametrize("by", ["chip", "vendor"])
def test_leave_one_out_error_meets_the_floor(by):
    # Fidelity floor: held-out median error <= 25 % (the goal, 15 % with no regime above 25 %,
    # is measured with full fits by `dse validate cv=all`; figures in the closing note). Short
    # fits here (one sweep) keep the test to a minute.
    errors = summary(leave_one_out(load_cases()[0], by, sweeps=1, steps=6))
    assert errors["overall"] <= 0.25, errors


def test_defaults_fit_better_than_uncalibrated_round_numbers():
    cases, _ = load_cases()
    naive = dataclasses.replace(DEFAULT, compute_max=0.8, memory=0.85,
                                op_overhead_s=2e-6, kv_memory=0.9, usable_memory=0.9)
    assert summary(validate(cases))["overall"] < summary(validate(cases, naive))["overall"]
