"""Phase serve wired through the inputs (issue 21, item 1): the scenario schema, predict()
from Python, dse predict (text and --json), niches, and a sweep on real Ray and Parquet
that simulates only the shortlisted candidates."""

import json
import math

import numpy as np
import pyarrow.compute as pc
import pytest
from omegaconf import OmegaConf

from dse.api import explain, predict
from dse.cli import main
from dse.pipeline.niche import parse_niche
from dse.pipeline.rows import evaluate_rows
from dse.pipeline.sweep import make_job, read_rows, run_sweep
from dse.pipeline.workers import chunk_candidates
from dse.evaluator.model import System
from dse.presets import load_workload
from dse.serving import SERVE_COLUMNS, check_settings, shortlist
from workloads.scenario import make_scenario

_FIGURES = ("ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "goodput_per_s",
            "max_rate_per_s")
_CLI = ("predict chip=h100 workload=llama3-8b scenario.phase=serve scenario.request_rate=10 "
        "system.ttft_slo_s=0.5 system.tpot_slo_s=0.05")


def _cli(line: str, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``dse <line>`` run in-process."""
    try:
        main(line.split(" "))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_dse_predict_serve_prints_the_slo_figures_and_json_matches_python(capsys):
    code, text, err = _cli(_CLI, capsys)
    assert code == 0 and err == ""
    assert all(name in text for name in _FIGURES)
    code, out, _ = _cli(_CLI + " --json", capsys)
    doc = json.loads(out)
    assert all(doc[k] is None or math.isfinite(doc[k]) for k in _FIGURES)
    py = predict("h100", "llama3-8b", phase="serve", request_rate=10, ttft_slo_s=0.5,
                 tpot_slo_s=0.05)
    assert doc == py
    # At 10 requests/s an H100 is lightly loaded: every request meets both SLOs, and the
    # highest rate that still does lies above the offered one.
    assert doc["goodput_per_s"] == pytest.approx(10.0) and doc["max_rate_per_s"] > 10.0
    assert doc["ttft_p50_s"] <= doc["ttft_p99_s"] <= 0.5


def test_lengths_may_be_drawn_and_serve_is_judged_at_their_means():
    sc = make_scenario("llm", dict(phase="serve", request_rate=2.0,
                                   prompt_len=dict(dist="uniform", low=100, high=300),
                                   gen_len=dict(dist="lognormal", mean=64, sigma=0.5)))
    assert (sc.phase, sc.batch, sc.prompt_len, sc.gen_len) == ("generate", "max", 200, 64)
    out = predict("h100", "llama3-8b", phase="serve", request_rate=2.0, n_requests=200,
                  prompt_len=dict(dist="uniform", low=100, high=300),
                  gen_len=dict(dist="lognormal", mean=64, sigma=0.5), tpot_slo_s=0.05)
    assert out["fits"] and out["n_requests"] == 200 and out["goodput_per_s"] > 0


def test_a_trace_is_served_at_its_own_rate_or_the_one_asked(tmp_path):
    path = tmp_path / "trace.csv"
    rows = np.array([[0.0, 1024, 64], [0.5, 512, 128], [1.0, 2048, 16], [1.5, 100, 8]])
    np.savetxt(path, rows, delimiter=",", header="arrival_s,prompt_len,gen_len", comments="")
    own = predict("h100", "llama3-8b", phase="serve", trace=str(path), ttft_slo_s=0.5)
    assert own["n_requests"] == 4 and own["goodput_per_s"] == pytest.approx(2.0)
    fast = predict("h100", "llama3-8b", phase="serve", trace=str(path), request_rate=8.0,
                   ttft_slo_s=0.5)
    assert fast["goodput_per_s"] == pytest.approx(8.0)


def test_explain_serve_gives_the_figures_and_its_steady_states_operators():
    out, rows = explain("h100", "llama3-8b", phase="serve", request_rate=5.0, n_requests=200,
                        tpot_slo_s=0.05)
    assert out["fits"] and set(_FIGURES) <= set(out)
    assert {"prefill", "decode"} <= {r["phase"] for r in rows}


def test_drawn_requests_past_the_context_stop_at_it():
    # Llama-3-8B holds 8,192 tokens; a lognormal tail of 20,000 draws passes it, and those
    # answers are cut (vLLM stops a request at max_model_len) instead of refusing the run.
    unit, _ = check_settings(load_workload("llama3-8b"), System(), request_rate=1.0,
                             prompt_len=dict(dist="lognormal", mean=4000, sigma=0.5),
                             gen_len=4000, trace=None, n_requests=20_000, seed=0,
                             max_num_batched_tokens=2048, routing="round_robin")
    total = unit.prompt_len + unit.gen_len
    assert total.max() == 8192 and unit.gen_len.min() >= 1
    assert 0 < np.mean(unit.gen_len < 4000) < 0.5
    with pytest.raises(ValueError, match="max_context"):
        predict("h100", "llama3-8b", phase="serve", request_rate=1.0, prompt_len=8000,
                gen_len=500)


_BAD = [  # (overrides added to dse predict, the field the one line names)
    ("scenario.phase=serve scenario.request_rate=0", "scenario.request_rate"),
    ("scenario.phase=serve", "scenario.request_rate"),
    ("scenario.phase=decode scenario.request_rate=5", "scenario.request_rate"),
    ("scenario.phase=serve scenario.request_rate=5 scenario.prompt_len={dist:normal,mean:5}",
     "scenario.prompt_len.dist"),
    ("scenario.phase=serve scenario.request_rate=5 scenario.gen_len={dist:lognormal,mean:9}",
     "scenario.gen_len.sigma"),
    ("scenario.phase=generate scenario.gen_len={dist:uniform,low:1,high:9}",
     "scenario.gen_len"),
    ("scenario.phase=serve scenario.request_rate=5 scenario.batch=8", "scenario.batch"),
    ("scenario.phase=serve scenario.request_rate=5 scenario.routing=random",
     "scenario.routing"),
    ("scenario.phase=serve scenario.request_rate=5 scenario.n_requests=0",
     "scenario.n_requests"),
    ("scenario.phase=serve scenario.request_rate=5 system.max_num_seqs=4096",
     "system.max_num_seqs"),
    ("scenario.phase=serve scenario.request_rate=5 scenario.trace=/no/such.csv",
     "scenario.trace"),
    ("scenario.phase=serve scenario.request_rate=5 workload=resnet50", "scenario.phase"),
    ("scenario.phase=serve scenario.trace=t.csv scenario.gen_len={dist:uniform,low:1,high:9}",
     "scenario.gen_len"),
]


def test_bad_serve_input_is_one_line_naming_the_field(capsys):
    problems = []
    for overrides, field in _BAD:
        code, out, err = _cli(f"predict {overrides}", capsys)
        lines = err.strip().splitlines()
        if not (code == 2 and len(lines) == 1 and field in lines[0] and not out):
            problems.append(f"{overrides}: exit {code}, {err!r:.200}")
    assert not problems, "\n".join(problems)


def _serving_niche(compose_conf) -> dict:
    return OmegaConf.to_container(compose_conf("sweep", ["niche=serving"]).niche, resolve=True)


@pytest.mark.parametrize("change, field", [
    (dict(ttft_slo_s=None, tpot_slo_s=None), "ttft_slo_s"),
    (dict(workload="bert-large"), "phase"),
    (dict(prompt_len=8000, gen_len=500), "max_context"),
    (dict(max_num_seqs=4096), "max_num_seqs"),
])
def test_a_serving_niche_is_checked_when_parsed(compose_conf, change, field):
    niche = _serving_niche(compose_conf)
    scenario = next(iter(niche["scenarios"].values()))
    scenario.update(change)
    with pytest.raises(ValueError, match=field) as err:
        parse_niche(niche)
    assert "\n" not in str(err.value)


def test_serving_niche_sweep_simulates_only_the_shortlist(compose_conf, tmp_path):
    # Four candidates, one chip each: a small and a large array, HBM3e or LPDDR5X. The
    # LPDDR5X ones miss the 50 ms TPOT SLO analytically, the small HBM one falls outside the
    # shortlist's factor, the large HBM one is simulated.
    space = dict(name="serve-tiny", params=dict(
        process_node="n4", macs=[65536, 262144], clock_ghz=1.5, sram_mb=64,
        memory=dict(type=["hbm3e", "lpddr5x"], stacks=4)))
    job = make_job(space, [_serving_niche(compose_conf)], "grid", None, 0, chunk_size=4)
    manifest = run_sweep(job, tmp_path / "run", num_cpus=1, show_progress=False)
    rows = read_rows(manifest["results_dir"]).to_pandas().sort_values("candidate_id")
    assert manifest["status"] == "complete" and set(rows["phase"]) == {"serve"}
    ns = job.niches[0].scenarios[0]
    analytical = np.where(rows["fits"], rows["throughput_per_s"] / ns.scenario.gen_len, np.nan)
    simulated = rows["max_rate_per_s"].notna().to_numpy()
    assert list(simulated) == list(shortlist(analytical, rows["system_cost_usd"]))
    assert list(rows["violation"]) == ["serve:not_shortlisted", "fits:tpot_slo", "",
                                       "fits:tpot_slo"]
    best = rows[simulated].iloc[0]
    assert best["feasible"] and all(np.isfinite(best[c]) for c in SERVE_COLUMNS)
    assert best["max_rate_per_usd"] == pytest.approx(best["max_rate_per_s"]
                                                     / best["system_cost_usd"])
    assert rows[~simulated][list(SERVE_COLUMNS)].isna().all().all()
    table = read_rows(manifest["results_dir"], columns=["max_rate_per_w"])
    assert pc.count(table["max_rate_per_w"]).as_py() == 1  # null, not NaN, where not simulated
    # The reference chips of dse rank are simulated whole: each feasible one placed.
    every = evaluate_rows(*chunk_candidates(job, 0), job.niches, simulate_all=True).to_pandas()
    assert list(every["violation"]) == ["", "fits:tpot_slo", "", "fits:tpot_slo"]
    assert every["max_rate_per_s"].iloc[0] < best["max_rate_per_s"]
