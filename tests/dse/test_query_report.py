"""dse query, rank, explain and report on a real small sweep and a real search."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dse.analysis.interactive import PLOTLY_JS
from dse.analysis.query import resolve_runs, run_query
from dse.analysis.ranking import load_niche, rank
from dse.pipeline.sweep import read_rows
from tests.dse.test_report_html import CHROMIUM, assert_renders_cleanly


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "dse.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("project") / "outputs"
    sweep, search = root / "sweep", root / "search"
    res = _cli("sweep", "space=demo", "niche=edge_vision", "sweep.mode=grid",
               f"hydra.run.dir={sweep}")
    assert res.returncode == 0, res.stderr
    res = _cli("search", "niche=edge_vision", "search.trials=300", "search.population=100",
               f"hydra.run.dir={search}")
    assert res.returncode == 0, res.stderr
    return root, sweep, search


def test_query_counts_rows_and_filters_by_niche(runs):
    _, sweep, _ = runs
    manifest = json.loads((sweep / "manifest.json").read_text())
    n = run_query("SELECT count(*) AS n FROM rows", [sweep])["n"].item()
    assert n == manifest["rows"] == 96 * 3
    res = _cli("query", "SELECT count(*) AS n FROM rows WHERE niche = 'edge_vision'",
               f"run={sweep}")
    assert res.returncode == 0 and "288" in res.stdout
    none = run_query("SELECT count(*) AS n FROM rows WHERE niche = 'hyperscale'", [sweep])
    assert none["n"].item() == 0


def test_query_over_all_runs_tells_them_apart(runs, tmp_path):
    root, sweep, search = runs
    frame = run_query("SELECT run, count(*) AS n FROM rows GROUP BY run ORDER BY run",
                      resolve_runs("all", root))
    assert dict(zip(frame["run"], frame["n"], strict=True)) == {str(search): 300 * 3,
                                                                str(sweep): 96 * 3}
    out = tmp_path / "answer.csv"
    res = _cli("query", "SELECT candidate_id, scenario FROM rows", "run=all", f"out={out}",
               cwd=root.parent)
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(out)) == 96 * 3 + 300 * 3


def test_query_reads_a_list_of_runs(runs, tmp_path):
    # run=[a,b] reads both (it raised a TypeError from deep inside pathlib); run=[] is one line.
    _, sweep, search = runs
    out = tmp_path / "both.csv"
    res = _cli("query", "SELECT run, count(*) AS n FROM rows GROUP BY run ORDER BY run",
               f"run=[{sweep},{search}]", f"out={out}")
    assert res.returncode == 0, res.stderr
    frame = pd.read_csv(out)
    assert dict(zip(frame["run"], frame["n"], strict=True)) == {str(search): 300 * 3,
                                                                str(sweep): 96 * 3}
    res = _cli("query", "SELECT 1", "run=[]")
    assert res.returncode == 2 and res.stderr.startswith("error: run=[]: allowed:")


@pytest.mark.parametrize("sql", ["DROP VIEW rows", "COPY rows TO 'stolen.csv'",
                                 "INSERT INTO rows VALUES (1)", "ATTACH 'x.db' AS x",
                                 "SELECT 1; DELETE FROM rows"])
def test_query_refuses_writes_and_touches_nothing(runs, sql):
    _, sweep, _ = runs
    before = sorted(p.name for p in sweep.rglob("*"))
    res = _cli("query", sql, f"run={sweep}", cwd=sweep)
    assert res.returncode == 2
    assert "refused" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in sweep.rglob("*")) == before


def test_bad_sql_and_missing_or_empty_runs_get_clear_messages(runs, tmp_path):
    _, sweep, _ = runs
    for args, message in [(("SELEC 1", f"run={sweep}"), "bad SQL"),
                          (("SELECT nope FROM rows", f"run={sweep}"), "query failed"),
                          (("SELECT 1", f"run={tmp_path}/missing"), "no such folder"),
                          (("SELECT 1", f"run={tmp_path}"), "no results in it")]:
        res = _cli("query", *args)
        assert res.returncode == 2 and message in res.stderr, res.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _cli("rank", cwd=empty)
    assert res.returncode == 2 and "no runs with results" in res.stderr


def test_rank_order_matches_a_pandas_sort_of_the_same_rows(runs):
    _, sweep, _ = runs
    niche = load_niche(sweep, "edge_vision")
    ranked = rank([sweep], niche, "throughput_per_w", top=0)
    rows = read_rows(sweep / "results").to_pandas()
    grouped = rows.groupby("candidate_id")
    feasible = grouped["feasible"].all()
    geo = np.exp(np.log(rows["throughput_per_w"]).groupby(rows["candidate_id"]).mean())
    expected = geo[feasible].sort_values(ascending=False, kind="stable")
    got = [int(c.rsplit(":", 1)[-1]) for c in ranked.index]
    assert got == list(expected.index)
    assert ranked["throughput_per_w"].to_numpy() == pytest.approx(expected.to_numpy())
    assert ranked["pareto"].any()
    res = _cli("rank", "niche=edge_vision", "by=throughput_per_w", "top=5", f"run={sweep}")
    assert res.returncode == 0, res.stderr
    assert "real chips" in res.stdout and "h100" in res.stdout
    # Both tables say what their scores are; piped output keeps every cell whole.
    note = "geomean of 3 scenarios: resnet50-b1, resnet50-b256, mobilenetv2-b1"
    assert res.stdout.count(note) == 2 and "…" not in res.stdout
    for cid in ranked.index[:5]:
        assert f"│ {cid.rsplit(':', 1)[-1]} " in res.stdout


def test_explain_a_candidate_of_a_run(runs):
    _, sweep, _ = runs
    res = _cli("explain", f"run={sweep}", "candidate=7", "scenario_name=resnet50-b256")
    assert res.returncode == 0, res.stderr
    assert "candidate 7" in res.stdout and "conv" in res.stdout


def _png_size(path: Path) -> tuple[int, int]:
    with path.open("rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_report_writes_pngs_and_an_html_page_that_references_them(runs, tmp_path):
    root, sweep, search = runs
    out = tmp_path / "report"
    res = _cli("report", f"run={sweep}", f"out={out}")
    assert res.returncode == 0, res.stderr
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"pareto_edge_vision.png", "sensitivity_edge_vision.png",
                                      "robust_edge_vision.png", "roofline_0.png",
                                      "roofline_1.png"}
    page = (out / "report.html").read_text()
    for png in pngs:
        width, height = _png_size(png)
        assert 600 <= width <= 4000 and 400 <= height <= 3000, png
        assert png.stat().st_size > 20_000
        assert png.name in page
    assert page.count("data:image/png;base64,") >= len(pngs) - 1  # self-contained
    assert "overflow-x:auto" in page and page.count('<div class="scroll">') >= 1
    interactive = (out / "interactive.html").read_text()
    assert "interactive.html" in page and (out / PLOTLY_JS).exists()
    assert "Pareto front (" in interactive and "candidate id %{customdata[0]}" in interactive
    if CHROMIUM:
        assert_renders_cleanly(out / "report.html", tmp_path / "report.png")
        dom = assert_renders_cleanly(out / "interactive.html", tmp_path / "interactive.png")
        assert 'class="main-svg"' in dom


def test_search_report_holds_every_figure_it_writes(runs, tmp_path):
    _, _, search = runs
    out = tmp_path / "report"
    res = _cli("report", f"run={search}", f"out={out}")
    assert res.returncode == 0, res.stderr
    page = (out / "report.html").read_text()
    pngs = {p.name for p in out.glob("*.png")}
    assert "sensitivity_edge_vision.png" in pngs
    assert all(name in page for name in pngs)


def test_report_places_each_chip_at_its_best_size():
    # A chip that cannot run the niche at its smaller sizes (NaN objectives) is placed at
    # the size it runs best, for a "max" and a "min" first objective alike.
    from types import SimpleNamespace

    from dse.analysis.report import best_size

    refs = pd.DataFrame(dict(chip=["a", "a", "a", "b", "b"], chips=[4, 8, 16, 4, 8],
                             score=[np.nan, 2.0, 1.0, 3.0, np.nan]))
    for direction, want in (("max", {"a": 8, "b": 4}), ("min", {"a": 16, "b": 4})):
        niche = SimpleNamespace(objectives=(("score", direction), ("other", "max")))
        picked = best_size(refs, niche)
        assert dict(zip(picked["chip"], picked["chips"], strict=True)) == want
