"""Printed tables on a real local_llm search run (in-process, Optuna journal, Parquet): the
deciding cells (id, objectives) stay whole at 80, 120 and 200 columns, headers cannot be
confused, numbers read in engineering format, and every score says what it aggregates."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from rich.console import Console

from dse.analysis.ranking import rank, ranking_view, run_params, scenario_rows
from dse.analysis.report_text import aggregate_note, eng, fmt, header, print_table
from dse.cli import main
from dse.pipeline.niche import parse_niche
from dse.pipeline.search import LocalEvaluator, make_search_job, run_search
from hwspace.space import parse_space

WIDTHS = (80, 120, 200)


@pytest.fixture(scope="module")
def llm_run(compose_conf, tmp_path_factory):
    """(run folder, niche): 400 trials of local_llm, whose scores are ~0.04 tokens/s per $
    (the cells `0.0…` hid) and whose space has three dtype_speedup parameters."""
    cfg = compose_conf("search", ["niche=local_llm"])
    niche = parse_niche(OmegaConf.to_container(cfg.niche, resolve=True))
    job = make_search_job(parse_space(OmegaConf.to_container(cfg.space, resolve=True)), niche,
                          400, 100, "nsga2", 0)
    run = tmp_path_factory.mktemp("tables") / "search"
    run_search(job, run, LocalEvaluator(niche), show_progress=False)
    (run / ".hydra").mkdir()
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml", resolve=True)
    return run, niche


@pytest.fixture(scope="module")
def view(llm_run):
    run, niche = llm_run
    by = niche.objectives[0][0]
    ranked = rank([run], niche, by, top=0)
    assert len(ranked) >= 3, "the fixture search must find feasible designs"
    frame, deciding = ranking_view(ranked.head(10), niche, by, run_params([run]))
    return frame, deciding, niche, ranked


@pytest.mark.parametrize("value, text", [
    (0.0081, "8.10m"), (0.0442, "44.2m"), (1.3, "1.30"), (1234.0, "1.23k"), (4.5e6, "4.50M"),
    (999.7, "1.00k"),  # rounding carries into the next prefix
    (-2345.0, "-2.35k"), (0.0, "0"), (2.5e-7, "250n"), (1.2e15, "1.20e+15"),
])
def test_engineering_format_keeps_three_significant_digits(value, text):
    assert eng(value) == text
    # The text reads back to the value within the rounding of 3 significant digits.
    if "e" not in text and value:
        scale = {"T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3, "m": 1e-3, "µ": 1e-6, "n": 1e-9}
        number = float(text.rstrip("TGMkmµn")) * scale.get(text[-1], 1.0)
        assert number == pytest.approx(value, rel=5e-3)


def test_cells_whole_numbers_exact_missing_as_dash():
    assert fmt(31561) == "31,561" and fmt(np.int64(7)) == "7"
    assert fmt(float("nan")) == "-" and fmt(None) == "-" and fmt(math.inf) == "inf"
    assert fmt("hbm3e") == "hbm3e" and fmt(np.float32(0.5)) == "500m"


def test_headers_are_distinct_and_carry_units(view):
    frame, *_ = view
    pairs = [header(c) for c in frame.columns]
    assert len(set(pairs)) == len(pairs), pairs
    assert [header(f"dtype_speedup_{d}")[0] for d in ("fp8", "int8", "int4")] == \
        ["×fp8", "×int8", "×int4"]
    assert header("throughput_per_usd") == ("tput/$", "/s/$")
    assert header("mem_bw_bytes_per_s") == ("mem bw", "B/s")
    assert header("links_gb_s_per_link") == ("link bw", "GB/s")


def _render(frame: pd.DataFrame, deciding: int, width: int, wide: bool = False,
            note: str | None = None) -> str:
    buf = io.StringIO()
    print_table("ranking", frame, decisive=deciding, note=note, wide=wide,
                out_console=Console(width=width, file=buf, color_system=None))
    return buf.getvalue()


@pytest.mark.parametrize("width", WIDTHS)
def test_deciding_cells_stay_whole_at_every_width(view, width):
    frame, deciding, niche, _ = view
    text = _render(frame, deciding, width)
    assert "…" not in text
    assert max(map(len, text.splitlines())) <= width
    lines = [line for line in text.splitlines() if line.startswith("│")]
    assert len(lines) == len(frame)
    for line, (_, row) in zip(lines, frame.iterrows(), strict=True):
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[0] == row["candidate_id"]  # the full id: `dse explain candidate=` takes it
        for k, (column, _) in enumerate(niche.objectives):
            assert cells[3 + k] == fmt(row[column]), (column, cells)


def test_at_120_columns_the_headline_figures_follow_the_deciding_ones(view):
    frame, deciding, *_ = view
    text = _render(frame, deciding, 120)
    head = text.split("┡")[0]
    for label in ("id", "front", "tput/$", "tput/W", "bound", "peak bf16", "mem bw", "cost",
                  "power"):
        assert label in head, label
    assert "FLOP/s" in head and "B/s" in head and " GB " in head and " $ " in head
    assert "more columns: wide=true shows them" in text


def test_wide_shows_every_column_at_its_natural_width(view):
    frame, deciding, *_ = view
    text = _render(frame, deciding, 80, wide=True)
    head = text.split("┡")[0]
    assert "…" not in text and "more column" not in text
    for column in frame.columns:
        assert header(column)[0] in head, column
    assert max(map(len, text.splitlines())) > 80


def test_the_header_says_the_score_is_a_geomean_of_the_named_scenarios(view):
    frame, deciding, niche, _ = view
    names = [ns.name for ns in niche.scenarios]
    note = aggregate_note(names)
    assert note == "geomean of 2 scenarios: llama3-8b-int4, llama3-70b-int4"
    assert note in _render(frame, deciding, 120, note=note)
    assert aggregate_note(["resnet50-b1"]) == "scenario resnet50-b1"


def test_each_scenario_rows_multiply_back_to_the_geomean(llm_run, view):
    run, niche = llm_run
    _, _, _, ranked = view
    ids = list(ranked.index[:3])
    rows = scenario_rows([run], niche, ids)
    names = [ns.name for ns in niche.scenarios]
    assert rows["scenario"].tolist() == names * 3
    assert (rows["feasible"] == "ok").all()  # the ranking holds feasible candidates only
    for cid in ids:
        mine = rows[rows["candidate_id"] == cid.rsplit(":", 1)[-1]]
        for column, _ in niche.objectives:
            # geometric mean over the niche's scenarios (dse.pipeline.niche.candidate_scores)
            geo = float(np.exp(np.log(mine[column]).mean()))
            assert geo == pytest.approx(ranked.loc[cid, column], rel=1e-9)


def test_rank_cli_at_120_columns_with_each_scenario(llm_run, capsys, monkeypatch, tmp_path):
    run, niche = llm_run
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.chdir(tmp_path)
    main(["rank", f"run={run}", "references=false", "top=5", "per_scenario=true"])
    out = capsys.readouterr().out
    assert "…" not in out and max(map(len, out.splitlines())) <= 120
    assert out.count("geomean of 2 scenarios: llama3-8b-int4, llama3-70b-int4") == 1
    assert "on each scenario" in out and "not aggregated" in out
    ranked = rank([run], niche, niche.objectives[0][0], top=5)
    for cid in ranked.index:
        assert f"│ {cid.rsplit(':', 1)[-1]} " in out


@pytest.mark.parametrize("setting", ["per_scenario=maybe", "wide=2"])
def test_rank_switches_take_true_or_false_only(llm_run, setting, capsys, tmp_path,
                                               monkeypatch):
    run, _ = llm_run
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["rank", f"run={run}", "references=false", setting])
    assert exit_.value.code == 2
    key = setting.split("=")[0]
    assert f"error: {key} = " in capsys.readouterr().err
