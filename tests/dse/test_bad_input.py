"""Every bad input, as a new user types it: one line naming the field, exit 2, no traceback,
and no run folder left behind that looks complete. CLI cases run in-process (dse.cli.main with
argv); a few go through a real subprocess to show nothing else reaches the terminal."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from dse.api import explain, predict
from dse.cli import main

GOOD = dict(name="x", process_node="n5", macs=100_000, clock_ghz=1.0, sram_mb=64,
            memory=dict(type="hbm3", stacks=4))
INF, NAN = float("inf"), float("nan")

API = [  # (chip, workload, scenario, the field the message names)
    ("h999", "llama3-8b", {}, "h999"),
    ("h100", "llama9", {}, "llama9"),
    ({**GOOD, "macs": -5}, "llama3-8b", {}, "macs"),
    ({**GOOD, "clock_ghz": INF}, "llama3-8b", {}, "clock_ghz"),
    ({**GOOD, "sram_mb": NAN}, "llama3-8b", {}, "sram_mb"),
    ({**GOOD, "memory": dict(type="hbm9", stacks=1)}, "llama3-8b", {}, "memory.type"),
    ({**GOOD, "dtype_speedup": {"fp16": 2}}, "llama3-8b", {}, "dtype_speedup.fp16"),
    ({**GOOD, "dtype_speedup": {"tf32": 2}}, "llama3-8b", {}, "dtype_speedup"),
    ("h100", "llama3-8b", dict(batch=INF), "scenario.batch"),
    ("h100", "llama3-8b", dict(batch=NAN), "scenario.batch"),
    ("h100", "llama3-8b", dict(batch="all"), "scenario.batch"),
    ("h100", "llama3-8b", dict(gen_len=INF), "scenario.gen_len"),
    ("h100", "llama3-8b", dict(chips=INF), "chips"),
    ("h100", "llama3-8b", dict(chips=1e9), "chips"),
    ("h100", "llama3-8b", dict(chips=-8), "chips"),
    ("h100", "llama3-8b", dict(chips="8"), "chips"),
    ("h100", "llama3-8b", dict(tpot_slo_s=INF), "tpot_slo_s"),
    ("h100", "llama3-8b", dict(ttft_slo_s=0), "ttft_slo_s"),
    ("h100", "llama2-7b", dict(prompt_len=5000), "max_context"),
    ({**GOOD, "links": dict(kind="infiniband", count=4)}, "llama3-8b", {}, "links.kind"),
    ({**GOOD, "execution": "systolic"}, "llama3-8b", {}, "execution"),
    ("h100", "llama3-8b", dict(batching="dynamic"), "scenario.batching"),
    ("h100", "llama3-8b", dict(max_num_seqs=0), "max_num_seqs"),
    ("h100", "llama3-8b", dict(max_num_seqs=2.5), "max_num_seqs"),
]


@pytest.mark.parametrize("chip, workload, scenario, field", API)
@pytest.mark.parametrize("call", [predict, explain])
def test_api_bad_input_is_one_value_error_naming_the_field(call, chip, workload, scenario,
                                                           field):
    start = time.perf_counter()
    with pytest.raises(ValueError) as err:
        call(chip, workload, **scenario)
    assert field in str(err.value) and "\n" not in str(err.value)
    assert time.perf_counter() - start < 5


def test_fp16_is_accepted_as_the_bf16_class():
    plain = predict(GOOD, "llama3-8b")
    assert predict({**GOOD, "dtype_speedup": {"fp16": 1}}, "llama3-8b") == plain


def test_the_largest_system_is_evaluated_quickly():
    start = time.perf_counter()
    out = predict("h100", "llama3-8b", phase="decode", chips=1_048_576)
    assert out["tp"] * out["pp"] * out["dp"] == 1_048_576
    assert time.perf_counter() - start < 5


CLI = [  # (argv, the text the message must contain)
    (["predict", "chip=h999"], "chip=h999: no such chip preset; available: a10, a100"),
    (["predict", "workload=llama9"], "workload=llama9: no such workload preset"),
    (["explain", "chip=nope"], "chip=nope"),
    (["predict", "scenario.batch=0"], "scenario.batch"),
    (["predict", "scenario.batch=inf"], "scenario.batch"),
    (["predict", "scenario.batch=-1"], "scenario.batch"),
    (["predict", "scenario.batch=2.5"], "scenario.batch"),
    (["predict", "scenario.batch=abc"], "scenario.batch"),
    (["predict", "scenario.batch=[1"], "bad override"),
    (["predict", "scenario.phase=finetune"], "scenario.phase"),
    (["predict", "scenario.phase=train", "scenario.batch=max"], "scenario.batch"),
    (["predict", "system.kv_host_gb=-5"], "kv_host_gb"),
    (["predict", "scenario.weights=int3"], "scenario.weights"),
    (["predict", "scenario.sparsity=1:8"], "scenario.sparsity"),
    (["predict", "scenario.batching=dynamic"], "scenario.batching"),
    (["predict", "system.max_num_seqs=-1"], "max_num_seqs"),
    (["predict", "chip.execution=systolic"], "execution"),
    (["predict", "chip.links.kind=infiniband"], "links.kind"),
    (["predict", "scenario.prompt_len=0"], "scenario.prompt_len"),
    (["predict", "scenario.bogus=1"], "scenario has no setting 'bogus'; allowed: phase"),
    (["predict", "system.chips=0"], "chips"),
    (["predict", "system.chips=inf"], "chips"),
    (["predict", "system.chips=1e9"], "chips must be a whole number in [1, 1,048,576]"),
    (["explain", "system.chips=1e9"], "chips"),
    (["predict", "system.tpot_slo_s=-1"], "tpot_slo_s"),
    (["predict", "system.bogus=1"], "system has no setting 'bogus'"),
    (["predict", "chip.macs=abc"], "chip.macs"),
    (["predict", "chip.macs=-5"], "macs"),
    (["predict", "chip.process_node=n1"], "process_node"),
    (["predict", "chip.memory.type=hbm9"], "memory.type"),
    (["predict", "chip.clock_ghz=0"], "clock_ghz"),
    (["predict", "+chip.bogus=1"], "bogus"),
    (["predict", "+chip.dtype_speedup.fp16=2"], "dtype_speedup.fp16"),
    (["predict", "chip.dtype_speedup={{fp16:2}}"], "chip.dtype_speedup.fp16"),
    (["predict", "chip_file=missing.yaml"], "missing.yaml"),
    (["predict", "chip_file={bad_yaml}"], "line 3, column 12"),
    (["predict", "chip_file={list_yaml}"], "not a mapping"),
    (["predict", "scenario.prompt_len=5000", "workload=llama2-7b"], "max_context"),
    (["explain", "candidate=99999999", "run={sweep}"], "no candidate 99999999"),
    (["explain", "candidate=3", "run={sweep}", "scenario_name=bogus"], "scenario_name"),
    (["sweep", "niche=nope"],
     "niche=nope: no such niche preset; available: disaggregated, edge_vision"),
    (["sweep", "space=nope"], "space=nope: no such space preset"),
    (["sweep", "cluster=nope"], "cluster=nope"),
    (["sweep", "space=demo", "sweep.mode=exhaustive"], "sweep.mode"),
    (["sweep", "space=demo", "sweep.samples=0"], "sweep.samples"),
    (["sweep", "space=demo", "sweep.chunk_size=0"], "sweep.chunk_size"),
    (["sweep", "space=demo", "space.params.macs.high=10"], "space.macs"),
    (["sweep", "space=demo", "+space.params.warp_drive=3"], "allowed (the chip spec's"),
    (["sweep", "space=demo", "space.params.macs.bogus=1"],
     "space.params.macs has no setting 'bogus'"),
    (["sweep", "space=demo", "space.params.memory.type=[hbm3,hbm9]"], "memory.type"),
    (["sweep", "space=demo", "space.params.sram_mb=[]"], "sram_mb"),
    (["sweep", "space=demo", "space.params.chips.high=1e9"], "chips"),
    (["sweep", "space=demo", "sweep.results_dir={a_file}/res"], "sweep.results_dir"),
    (["sweep", "space=demo", "hydra.run.dir=/proc/dse-run"], "hydra.run.dir"),
    (["sweep", "space=demo", "sweep.mode=grid", "ray.address=127.0.0.1:1"],
     "ray.address=127.0.0.1:1: the Ray cluster is unreachable"),
    (["sweep", "space=demo", "ray.address=nosuchhost.invalid:6379"], "ray.address"),
    (["sweep", "resume={search}"], "not a sweep run folder (a search run"),
    (["sweep", "resume={missing}"], "resume="),
    (["search", "search=nope"], "search=nope: no such search preset; available: nsga2"),
    (["search", "niche=local_llm,nope", "--multirun"], "niche=nope"),
    (["search", "search.trials=0"], "search.trials"),
    (["search", "search.population=0"], "search.population"),
    (["search", "search.sampler=annealing"], "search.sampler"),
    (["search", "search.storage=foo://bar"], "search.storage='foo://bar'"),
    (["search", "search.storage=not-a-url"], "search.storage"),
    (["search", "resume={sweep}"], "not a search run folder (a sweep run"),
    (["search", "+niche.objectives.flux=max"], "objectives"),
    (["query", "SELEC 1", "run={sweep}"], "bad SQL"),
    (["query", "SELECT nope FROM rows", "run={sweep}"], "query failed"),
    (["query", "run={sweep}"], "give the SQL"),
    (["query", "SELECT 1", "run={missing}"], "no such folder"),
    (["query", "SELECT 1", "run={empty}"], "no results in it"),
    (["query", "SELECT 1", "run={sweep}", "out=answer.txt"], "out=answer.txt"),
    (["query", "SELECT 1", "run={sweep}", "out={missing}/x.csv"], "does not exist"),
    (["query", "SELECT 1", "run={sweep}", "out=/proc/x.csv"], "out=/proc/x.csv"),
    (["query", "SELECT * FROM read_csv('/etc/passwd')", "run={sweep}"], "refused"),
    (["rank", "run={sweep}", "by=happiness"], "by='happiness'"),
    (["rank", "run={sweep}", "niche=hyperscale"], "hyperscale"),
    (["rank", "niche=nope"], "niche=nope"),
    (["rank", "run={missing}"], "no such folder"),
    (["report", "run={sweep}", "out={a_file}/report"], "out="),
    (["report", "run={sweep}", "out=/proc/report"], "out=/proc/report"),
    (["report", "run={sweep}", "chips=[h999]"], "h999"),
    (["report", "run={empty}"], "no results in it"),
    (["validate", "cv=fold"], "cv"),
    (["frobnicate"], "unknown verb 'frobnicate'"),
]


@pytest.fixture()
def places(small_runs, tmp_path, monkeypatch):
    """Folders and files the CLI cases name; the working folder is an empty tmp_path."""
    root, sweep, search = small_runs
    work = tmp_path / "work"
    (work / "empty").mkdir(parents=True)
    (work / "a_file").write_text("not a folder\n")
    (work / "bad.yaml").write_text("name: bad\nmacs: 1000\n  clock_ghz: [1\n")
    (work / "list.yaml").write_text("- 1\n- 2\n")
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "argv", ["dse"])
    return dict(sweep=sweep, search=search, missing=work / "missing", empty=work / "empty",
                a_file=work / "a_file", bad_yaml=work / "bad.yaml", list_yaml=work / "list.yaml")


def _assert_nothing_complete(folder):
    for manifest in folder.rglob("manifest.json"):
        assert json.loads(manifest.read_text()).get("status") != "complete", manifest
    assert not list(folder.rglob("*.parquet"))


@pytest.mark.parametrize("argv, message", CLI, ids=[" ".join(a) for a, _ in CLI])
def test_cli_bad_input_is_one_line_and_exit_2(places, argv, message, capsys):
    argv = [a.format(**places) for a in argv]
    message = message.format(**places)
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "Traceback" not in err and "HYDRA_FULL_ERROR" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, err
    assert time.perf_counter() - start < 25
    _assert_nothing_complete(places["empty"].parent)


@pytest.mark.parametrize("args, message", [
    (["predict", "chip=h999"], "chip=h999: no such chip preset"),
    (["predict", "system.chips=1e9"], "chips"),
    (["sweep", "space=demo", "ray.address=127.0.0.1:1"], "unreachable"),
    (["query", "SELECT * FROM read_text('/etc/passwd')", "run={sweep}"], "refused"),
    (["search", "resume={sweep}"], "not a search run folder"),
])
def test_a_real_terminal_sees_one_line_and_no_traceback(small_runs, tmp_path, args, message):
    _, sweep, _ = small_runs
    res = subprocess.run([sys.executable, "-m", "dse.cli", *[a.format(sweep=sweep) for a in args]],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and message in res.stderr, res.stderr
    assert res.stdout == ""
    assert list(tmp_path.iterdir()) == []
