"""Searches with real Optuna studies (journal files) and real Ray: the front is feasible and
non-dominated among every evaluated trial, resume extends the same study, bad settings fail
before any work."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import optuna
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dse.analysis.report_text import fmt
from dse.cli.schema import register
from dse.pipeline.niche import candidate_scores, parse_niche, score_columns
from dse.pipeline.pareto import minimised
from dse.pipeline.search import (
    FINISHED,
    LocalEvaluator,
    constraint_names,
    make_search_job,
    open_studies,
    run_search,
)
from dse.pipeline.sweep import read_rows
from dse.presets import CONF_DIR
from hwspace.space import parse_space

register()


def _job(niche="local_llm", trials=300, population=60, sampler="nsga2", seed=0):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="search", overrides=[f"niche={niche}"])
    n = parse_niche(OmegaConf.to_container(cfg.niche))
    return make_search_job(parse_space(OmegaConf.to_container(cfg.space)), n, trials,
                           population, sampler, seed), n


def _dominated(point: np.ndarray, others: np.ndarray) -> bool:
    return bool(np.any(np.all(others <= point, axis=1) & np.any(others < point, axis=1)))


def check_front(run_dir, niche) -> pd.DataFrame:
    """Every front member is feasible and no evaluated feasible trial dominates it."""
    rows = read_rows(run_dir / "results", columns=score_columns(niche)).to_pandas()
    scores = candidate_scores(rows, niche)
    front = pd.read_parquet(run_dir / "pareto.parquet")
    assert len(front) > 0
    columns = [c for c, _ in niche.objectives]
    directions = [d for _, d in niche.objectives]
    feasible = scores[scores["feasible"]]
    everyone = minimised(feasible[columns].to_numpy(float), directions)
    for trial in front["trial"]:
        assert scores.loc[trial, "feasible"], trial
        point = minimised(scores.loc[[trial], columns].to_numpy(float), directions)[0]
        assert not _dominated(point, everyone), trial
    return scores


@pytest.mark.parametrize("sampler", ["nsga2", "tpe", "random", "qmc"])
def test_small_search_front_is_feasible_and_non_dominated(tmp_path, sampler):
    # edge_vision: a niche where every sampler meets feasible designs within 240 trials (in
    # local_llm's space only ~2 % of random designs are feasible).
    job, niche = _job("edge_vision", trials=240, population=40 if sampler != "tpe" else 20,
                      sampler=sampler)
    manifest = run_search(job, tmp_path, LocalEvaluator(niche), show_progress=False)
    assert manifest["trials"] == 240 and manifest["rows"] == 240 * len(niche.scenarios)
    scores = check_front(tmp_path, niche)
    assert len(scores) == 240
    assert (~scores["feasible"]).any()  # infeasible trials are kept and marked


def test_resume_adds_trials_to_the_same_study_without_repeating_numbers(tmp_path):
    job, niche = _job(trials=200, population=50)
    run_search(job, tmp_path, LocalEvaluator(niche), show_progress=False)
    bigger, _ = _job(trials=350, population=50)
    manifest = run_search(bigger, tmp_path, LocalEvaluator(niche), resume=True,
                          show_progress=False)
    assert manifest["trials"] == 350
    record, _ = open_studies(bigger, tmp_path, None, resume=True)
    numbers = [t.number for t in record.get_trials(deepcopy=False)]
    assert numbers == list(range(350))
    rows = read_rows(tmp_path / "results", columns=["trial", "scenario"]).to_pandas()
    assert sorted(rows["trial"].unique()) == list(range(350))
    assert not rows.duplicated(["trial", "scenario"]).any()
    check_front(tmp_path, niche)
    check_dashboard_conventions(record, niche, check_front(tmp_path, niche))


def check_dashboard_conventions(record: optuna.Study, niche, scores: pd.DataFrame) -> None:
    """What optuna-dashboard reads: named metrics, each trial's constraints as one list in
    the niche's order, real objective values (no 1e30 sentinel), PRUNED where there is no
    objective; the study's Pareto front is feasible."""
    objectives = [c for c, _ in niche.objectives]
    names = constraint_names(niche)
    assert record.metric_names == objectives
    assert record.user_attrs["constraint_names"] == names
    trials = record.get_trials(deepcopy=False)
    assert {t.state for t in trials} <= set(FINISHED)
    for t in trials:
        row = scores.loc[t.number]
        assert t.system_attrs["constraints"] == pytest.approx(row[names].astype(float).tolist())
        assert not any(k.startswith("constraints:") for k in t.system_attrs)
        finite = bool(np.isfinite(row[objectives].astype(float)).all())
        assert (t.state == optuna.trial.TrialState.COMPLETE) == finite, t.number
        if finite:  # infeasible or not, the trial holds its real values
            assert t.values == pytest.approx(row[objectives].astype(float).tolist())
    states = {t.state for t in trials}
    assert optuna.trial.TrialState.PRUNED in states  # local_llm: some designs cannot run
    infeasible = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE
                  and any(v > 0 for v in t.constraints.values())]
    assert infeasible  # told with their values, marked infeasible
    assert all(scores.loc[t.number, "feasible"] for t in record.best_trials)


def test_told_trials_missing_rows_are_rewritten_on_resume(tmp_path):
    # Simulates an interruption after a generation reached the study but before its rows did.
    job, niche = _job(trials=100, population=50)
    run_search(job, tmp_path, LocalEvaluator(niche), show_progress=False)
    (tmp_path / "results" / "chunk-000001.parquet").unlink()
    run_search(job, tmp_path, LocalEvaluator(niche), resume=True, show_progress=False)
    rows = read_rows(tmp_path / "results", columns=["trial"]).to_pandas()
    assert sorted(rows["trial"].unique()) == list(range(100))


@pytest.mark.parametrize("overrides, message", [
    (["search.trials=0"], "search.trials = 0: allowed"),
    (["search.sampler=annealing"], "search.sampler = 'annealing': allowed"),
    (["search.population=0"], "search.population = 0: allowed"),
    (["+niche.objectives.flux=max"], "niche.objectives.flux: unknown key"),
    (["+niche.objectives.latency_s=min"], "allowed: exactly two"),
    (["~niche.objectives.throughput_per_w", "+niche.objectives.happiness=max"],
     "niche.objectives.happiness: unknown key"),
])
def test_bad_search_settings_fail_with_a_clear_message(tmp_path, overrides, message):
    res = subprocess.run([sys.executable, "-m", "dse.cli", "search", *overrides,
                          f"hydra.run.dir={tmp_path}"], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr and "Started a local Ray" not in res.stderr


def test_search_cli_runs_on_ray_and_writes_its_run_folder(tmp_path):
    res = subprocess.run([sys.executable, "-m", "dse.cli", "search", "search.trials=300",
                          "search.population=100", f"hydra.run.dir={tmp_path}"],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "COLUMNS": "120"})
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["trials"] == 300
    assert (tmp_path / "study.journal").exists() and (tmp_path / ".hydra/config.yaml").exists()
    assert "memory bandwidth per FLOP/s" in res.stdout
    # The front's table at 120 columns: its main objective whole, labelled as a geomean.
    assert "…" not in res.stdout and max(map(len, res.stdout.splitlines())) <= 120
    assert "geomean of 2 scenarios: llama3-8b-int4, llama3-70b-int4" in res.stdout
    front = pd.read_parquet(tmp_path / "pareto.parquet")
    for value in front["throughput_per_usd"].head(10):
        assert f" {fmt(value)} " in res.stdout
