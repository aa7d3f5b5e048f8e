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
from dse.presets import CONF_DIR

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
    ("h100", "llama3-8b", dict(engine="tensorrt"), "engine"),
    ("h100", "llama3-8b", dict(engine=dict(step_overhead_s=-1e-3)), "engine.step_overhead_s"),
    ("h100", "llama3-8b", dict(engine=dict(seq_overhead_s=NAN)), "engine.seq_overhead_s"),
    ("h100", "llama3-8b", dict(engine=dict(max_num_seqs=4096)), "engine.max_num_batched_tokens"),
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
    (["predict", "engine=tensorrt"], "engine"),
    (["predict", "engine.step_overhead_s=-1"], "engine.step_overhead_s"),
    (["predict", "engine.max_num_seqs=0"], "engine.max_num_seqs"),
    (["predict", "chip.execution=systolic"], "execution"),
    (["predict", "chip.links.kind=infiniband"], "links.kind"),
    (["predict", "scenario.prompt_len=0"], "scenario.prompt_len"),
    (["predict", "scenario.bogus=1"], "scenario has no setting 'bogus'; allowed: phase"),
    (["predict", "system.chips=0"], "chips"),
    (["predict", "system.chips=inf"], "chips"),
    (["predict", "system.chips=1e9"], "system.chips = 1000000000.0: allowed: a whole number in "
     "[1, 1,048,576] chips"),
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


# The table of issue 18: for each input, wrong types, bool for a number, negative, zero, NaN,
# inf, huge, fractional where whole, unknown and missing keys, cross-field violations, markup,
# alias bombs, malformed YAML and empty strings. (verb, overrides, the field the line names)
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True))
CHIP_YAML = ("name: x\nprocess_node: n5\nmacs: 100000\nclock_ghz: 1.0\nsram_mb: 64\n"
             "memory: {type: hbm3, stacks: 4}\n")
FILES = {  # name -> YAML text, written as <name>.yaml
    "bomb": CHIP_YAML + BOMB,
    "anchor": CHIP_YAML.replace("memory:", "memory: &m"),
    "empty": "",
    "nomacs": CHIP_YAML.replace("macs: 100000\n", ""),
    "extra": CHIP_YAML + "warp: 9\n",
    "text_macs": CHIP_YAML.replace("100000", "lots"),
    "none80": CHIP_YAML.replace("{type: hbm3, stacks: 4}", "{type: none, capacity_gb: 80}"),
    "huge": CHIP_YAML + "# " + "x" * 1_100_000 + "\n",
}
W_CNN, W_MOE, W_MLA = "workload=resnet50", "workload=mixtral-8x7b", "workload=deepseek-v2-lite"
P, S, Q = "predict", "sweep", "search"
BAD = [
    # chip: overrides
    (P, "chip.macs=true", "chip.macs"), (P, "chip.macs=2.5", "chip.macs"),
    (P, "chip.macs=0", "chip.macs"), (P, "chip.macs=nan", "chip.macs"),
    (P, "chip.macs=1e30", "chip.macs"), (P, "chip.clock_ghz=-1", "chip.clock_ghz"),
    (P, "chip.clock_ghz=inf", "chip.clock_ghz"), (P, "chip.sram_mb=nan", "chip.sram_mb"),
    (P, "chip.tdp_w=0", "chip.tdp_w"), (P, "chip.tdp_w=abc", "chip.tdp_w"),
    (P, "chip.unit_cost_usd=-1", "chip.unit_cost_usd"), (P, "chip.dies=1.5", "chip.dies"),
    (P, "chip.wafer_scale=maybe", "chip.wafer_scale"),
    (P, "chip.sparsity_speedup=5", "chip.sparsity_speedup"),
    (P, "chip.memory.bandwidth_tb_s=0", "chip.memory.bandwidth_tb_s"),
    (P, "chip.memory.capacity_gb=-80", "chip.memory.capacity_gb"),
    (P, "chip.memory.stacks=2.5", "chip.memory.stacks"),
    (P, "chip.memory.type=none", "chip.memory.stacks"),
    (P, "chip.memory.stacks=0 chip.memory.capacity_gb=null", "chip.memory.stacks"),
    (P, "chip.memory.type=", "chip.memory.type"),
    (P, "chip.links.count=-2", "chip.links.count"),
    (P, "chip.links.gb_s_per_link=0", "chip.links.gb_s_per_link"),
    (P, "chip.process_node=", "chip.process_node"), (P, "+chip.memory.warp=1", "warp"),
    (P, "chip.dtype_speedup.fp8=-2", "chip.dtype_speedup.fp8"),
    (P, "chip.name=" + "x" * 300, "chip.name"), (P, "chip.name=", "chip.name"),
    # chip_file
    (P, "chip_file={bomb}", "chip_file"), (P, "chip_file={anchor}", "chip_file"),
    (P, "chip_file={empty}", "chip_file"), (P, "chip_file={nomacs}", "chip.macs"),
    (P, "chip_file={extra}", "chip.warp"), (P, "chip_file={text_macs}", "chip.macs"),
    (P, "chip_file={none80}", "chip.memory.capacity_gb"),
    (P, "chip_file={huge}", "chip_file"), (P, "chip_file=", "chip_file"),
    (P, "chip_file=/", "chip_file"), (P, "explain=yes", "explain"),
    # transformer workload
    (P, f"{W_MOE} workload.top_k=9", "workload.top_k"),
    (P, "workload.n_kv_heads=-8", "workload.n_kv_heads"),
    (P, "workload.n_kv_heads=5", "workload.n_kv_heads"),
    (P, "workload.n_layers=true", "workload.n_layers"),
    (P, "workload.n_layers=1e12", "workload.n_layers"),
    (P, "workload.head_dim=0", "workload.head_dim"),
    (P, "workload.max_context=0", "workload.max_context"),
    (P, "workload.top_k=2", "workload.top_k"), (P, "workload.norm=batchnorm", "workload.norm"),
    (P, "workload.family=cnn", "workload.kind"), (P, "+workload.warp=1", "warp"),
    (P, "workload.kind=", "workload.kind"), (P, "workload.tied_embeddings=2", "tied_embeddings"),
    (P, "workload.n_heads=7", "n_heads (7)"),
    (P, f"{W_MLA} workload.kv_lora_rank=0", "workload.kv_lora_rank"),
    (P, f"{W_MLA} workload.first_dense_layers=99", "workload.first_dense_layers"),
    (P, "workload=mistral-7b workload.sliding_window=0", "workload.sliding_window"),
    # CNN workload and its layer lists
    (P, f"{W_CNN} workload.layers.stem.stride=0", "workload.layers.stem.stride"),
    (P, f"{W_CNN} workload.layers.stem.channels=-64", "workload.layers.stem.channels"),
    (P, f"{W_CNN} workload.layers.stages=[[3,64,0]]", "workload.layers.stages"),
    (P, f"{W_CNN} workload.layers.stages=[[3,64]]", "workload.layers.stages"),
    (P, f"{W_CNN} workload.layers.stages=[]", "workload.layers.stages"),
    (P, f"{W_CNN} workload.layers.expansion=0", "workload.layers.expansion"),
    (P, f"{W_CNN} workload.input_size=0", "workload.input_size"),
    (P, f"{W_CNN} workload.input_size=1e9", "workload.input_size"),
    (P, f"{W_CNN} workload.arch=transformer", "workload.arch"),
    (P, f"{W_CNN} +workload.layers.warp=1", "workload.layers.warp"),
    (P, f"{W_CNN} workload.layers=7", "workload.layers"),
    (P, "workload=mobilenetv2 workload.layers.blocks=[[6,24,2,0]]", "workload.layers.blocks"),
    (P, "workload=vgg16 workload.layers.convs=[64,Q]", "workload.layers.convs"),
    (P, "workload=vgg16 workload.layers.fcs=[-4096]", "workload.layers.fcs"),
    (P, "workload=vgg16 workload.layers.convs=[M]", "workload.layers.convs"),
    (P, f"{W_CNN} workload.input_size=1", "workload.input_size"),
    # scenario
    (P, "scenario.batch=true", "scenario.batch"), (P, "scenario.batch=1e15", "scenario.batch"),
    (P, "scenario.prompt_len=nan", "scenario.prompt_len"),
    (P, "scenario.gen_len=0", "scenario.gen_len"),
    (P, "scenario.context_len=-1", "scenario.context_len"),
    (P, "scenario.weights=", "scenario.weights"),
    (P, "scenario.kv_cache=[fp8]", "scenario.kv_cache"),
    (P, "scenario.acceptance=1.5", "scenario.acceptance"),
    (P, "scenario.spec_tokens=99", "scenario.spec_tokens"),
    (P, "scenario.draft=2", "scenario.draft"),
    (P, "scenario.phase=train scenario.zero=4", "scenario.zero"),
    (P, "scenario.phase=train scenario.optimizer=lion", "scenario.optimizer"),
    (P, "scenario.phase=", "scenario.phase"), (P, "+scenario.warp=1", "warp"),
    (P, "scenario.batch='[b]x'", "scenario.batch"), (P, "scenario.batch=null", "scenario.batch"),
    # system
    (P, "system.chips=true", "system.chips"), (P, "system.chips=2.5", "system.chips"),
    (P, "system.chips=nan", "system.chips"), (P, "system.chips=8 system.tp=3", "system.tp"),
    (P, "system.chips=8 system.tp=4 system.pp=4", "system.tp"), (P, "system.pp=0", "system.pp"),
    (P, "system.scale_up=0", "system.scale_up"), (P, "system.network_gb_s=0", "network_gb_s"),
    (P, "system.host_gb_s=-1", "system.host_gb_s"), (P, "system.kv_host_gb=inf", "kv_host_gb"),
    (P, "system.max_num_seqs=1e30", "system.max_num_seqs"),
    (P, "system.ttft_slo_s=nan", "system.ttft_slo_s"), (P, "+system.warp=1", "warp"),
    # predict flags
    (P, "output=xml", "output"), (P, "explain=maybe", "explain"), (P, "candidate=-1", "candidate"),
    (P, "+warp=1", "warp"), (P, "--jsn", "--jsn"), (P, "chip.name=${oc.env:HOME}", "chip.name"),
    # sweep settings
    (S, "sweep.samples=1e15", "sweep.samples"), (S, "sweep.samples=-5", "sweep.samples"),
    (S, "sweep.samples=true", "sweep.samples"), (S, "sweep.chunk_size=1e12", "sweep.chunk_size"),
    (S, "sweep.samples=1000000000 sweep.chunk_size=1", "sweep.chunk_size"),
    (S, "sweep.seed=-1", "sweep.seed"), (S, "sweep.max_in_flight=0", "sweep.max_in_flight"),
    (S, "sweep.mode=", "sweep.mode"), (S, "+sweep.warp=1", "warp"), (S, "top=-3", "top"),
    (S, "ray.num_cpus=0", "ray.num_cpus"), (S, "+ray.warp=1", "ray.warp"),
    # space
    (S, "sweep.mode=grid space.params.macs.num=1000000 "
     "space.params.clock_ghz={low:1,high:2,num:100000}", "sweep.mode"),
    (S, "space.params.macs.num=1e12", "space.macs.num"),
    (S, "space.params.macs.low=nan", "space.macs"), (S, "space.params.macs.low=true", "space.macs"),
    (S, "space.params.macs.num=2.5", "space.macs.num"),
    (S, "space.params.memory.stacks.step=-4", "space.memory.stacks.step"),
    (S, "space.params.memory.stacks.step=1e-9", "space.memory.stacks.step"),
    (S, "space.params.memory.stacks.low=9", "space.memory.stacks"),
    (S, "space.params.clock_ghz=abc", "space.clock_ghz"),
    (S, "space.params.chips=[0,8]", "space.chips"), (S, "space.params.chips=[1.5]", "space.chips"),
    (S, "space.params.macs.log=maybe", "space.macs.log"), (S, "space.name=", "space.name"),
    (S, "space.params.memory.type=[none] space.params.memory.stacks=4", "space.memory.stacks"),
    # niche
    (S, "niche=edge_vision niche.scenarios.resnet50-b1.batch=0", "resnet50-b1.batch"),
    (S, "niche=edge_vision niche.scenarios.resnet50-b1.batch=true", "resnet50-b1.batch"),
    (S, "niche=edge_vision niche.scenarios.resnet50-b1.workload=nope", "workload"),
    (S, "niche=edge_vision +niche.scenarios.resnet50-b1.warp=1", "resnet50-b1.warp"),
    (S, "niche=edge_vision niche.constraints.max_system_power_w=nan", "max_system_power_w"),
    (S, "niche=edge_vision niche.constraints.max_system_power_w=-5", "max_system_power_w"),
    (S, "niche=edge_vision +niche.constraints.warp=1", "niche.constraints.warp"),
    (S, "niche=edge_vision niche.objectives.throughput_per_w=up", "throughput_per_w"),
    (S, "niche=edge_vision niche.name=", "niche.name"),
    (S, "niche=edge_vision ~niche.scenarios", "niche.scenarios"),
    (S, "niche=hyperscale niche.scenarios.llama3-70b-fp8.tpot_slo_s=0", "tpot_slo_s"),
    (S, "niche=hyperscale +niche.scenarios.llama3-70b-fp8.max_num_seqs=0", "max_num_seqs"),
    (S, "niche=edge_vision niche.scenarios.resnet50-b1.phase=decode", "phase"),
    (S, "niche=hyperscale +niche.scenarios.llama3-70b-fp8.tp=3", "llama3-70b-fp8.tp"),
    # search settings
    (Q, "search.trials=1e15", "search.trials"), (Q, "search.trials=2.5", "search.trials"),
    (Q, "search.trials=true", "search.trials"), (Q, "search.population=1", "search.population"),
    (Q, "search.seed=-1", "search.seed"), (Q, "search.sampler=", "search.sampler"),
    (Q, "+search.warp=1", "warp"), (Q, "top=0", "top"),
]


@pytest.fixture()
def bad_files(tmp_path, monkeypatch):
    for name, text in FILES.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["dse"])
    return {name: str(tmp_path / f"{name}.yaml") for name in FILES}


def _argv(verb: str, overrides: str, files: dict, run_dir) -> list[str]:
    for name, path in files.items():
        overrides = overrides.replace(f"{{{name}}}", path)
    argv = [verb, *overrides.split(" ")]
    if verb in (S, Q):  # a space of the verb, and no run folder in the working tree
        space = [] if "space=" in overrides else ["space=demo"]
        argv += [*space, f"hydra.run.dir={run_dir}"]
    return argv


def test_every_bad_input_is_one_line_naming_its_field(bad_files, tmp_path, capsys):
    """Exit 2, one line on stderr naming the field, nothing on stdout, no traceback, fast;
    all cases in one test (in-process) to keep CI cheap."""
    problems = []
    for i, (verb, overrides, field) in enumerate(BAD):
        run_dir = tmp_path / f"run{i}"
        start = time.perf_counter()
        try:
            main(_argv(verb, overrides, bad_files, run_dir))
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        seconds = time.perf_counter() - start
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        ok = (code == 2 and len(lines) == 1 and field in lines[0] and not out
              and "Traceback" not in err and seconds < 10 and not run_dir.exists())
        if not ok:
            problems.append(f"{verb} {overrides[:60]}: exit {code}, {seconds:.1f} s, {err!r:.200}")
    assert not problems, "\n".join(problems)


GOOD_CLI = [  # README examples and markup that must print literally
    "predict chip=h100 workload=llama2-70b scenario.phase=decode scenario.batch=64 system.chips=8",
    "predict chip=a100 workload=gpt2 scenario.phase=decode --json",
    "explain chip=groq-lpu workload=llama2-70b scenario.phase=decode scenario.weights=int8 "
    "scenario.activations=int8 system.chips=576",
    "predict chip=h100 workload=llama3-405b scenario.phase=train scenario.batch=2048 "
    "scenario.prompt_len=8192 system.chips=8192",
    "predict chip=h100 workload=llama2-70b system.chips=4 scenario.batch=1 "
    "scenario.draft=llama2-7b scenario.spec_tokens=4 scenario.acceptance=0.8",
    "predict chip=h100 workload=llama3-70b scenario.phase=decode scenario.context_len=8000 "
    "scenario.batch=max scenario.weights=fp8 scenario.activations=fp8 scenario.kv_cache=fp8 "
    "system.max_num_seqs=null system.kv_host_gb=480 system.host_gb_s=450",
    "predict chip=h100 workload=llama3-8b scenario.phase=generate scenario.batch=max "
    "system.max_num_seqs=1024",
    "predict chip=a100 workload=llama2-7b scenario.phase=generate scenario.batch=64 "
    "scenario.batching=static",
    f"predict chip_file={CONF_DIR}/chip/t4.yaml workload=resnet50 scenario.batch=256",
    "predict system.chips=8 system.tp=2 system.pp=2",
    "predict chip.name='[/x]' workload.name='[bold]y[/bold]'",
]


@pytest.mark.parametrize("line", GOOD_CLI, ids=range(len(GOOD_CLI)))
def test_good_input_still_works_and_prints_user_text_literally(line, tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.chdir(tmp_path)
    main(line.split(" "))
    out, err = capsys.readouterr()
    assert err == "" and ("throughput_per_s" in out)
    if "[/x]" in line:
        assert "[/x]" in out and "[bold]y[/bold]" in out


@pytest.mark.parametrize("args", [
    "space=hyperscale niche=hyperscale sweep.samples=1000000",
    "space=demo niche=edge_vision sweep.mode=grid",
    "space=hyperscale niche=training sweep.samples=20000",
    "space=hyperscale niche=disaggregated sweep.samples=20000",
    "space=wide niche=local_llm",
])
def test_readme_sweeps_pass_the_checks(args):
    from dse.cli.checks import check_command
    from dse.cli.schema import register

    register()
    check_command("sweep", "sweep", [*args.split(" "), "hydra.run.dir=/tmp/unused"])


def test_a_niche_sets_any_system_key(compose_conf):
    """max_num_seqs, kv_host_gb, tp, pp: no longer fixed at the defaults for every sweep."""
    from omegaconf import OmegaConf

    from dse.pipeline.niche import parse_niche

    cfg = OmegaConf.to_container(compose_conf("sweep", [
        "niche=hyperscale", "+niche.scenarios.llama3-70b-fp8.max_num_seqs=2048",
        "+niche.scenarios.llama3-70b-fp8.kv_host_gb=480", "+niche.scenarios.llama3-70b-fp8.tp=4"]))
    ns = parse_niche(cfg["niche"]).scenarios[0]
    system = ns.system(8)
    assert (system.max_num_seqs, system.kv_host_gb, system.tp, system.chips) == (2048, 480.0, 4, 8)
    assert system.tpot_slo_s == 0.05


def test_the_chip_count_limit_is_one_constant():
    from dse.evaluator.parallel import MAX_CHIPS as evaluator_limit
    from hwspace.config import MAX_CHIPS
    from hwspace.space import parse_space

    assert evaluator_limit == MAX_CHIPS
    space = parse_space({"name": "big", "params": dict(
        process_node="n5", macs=1024, clock_ghz=1.0, sram_mb=32, chips=MAX_CHIPS)})
    assert space.params[-1].choices == (MAX_CHIPS,)


def test_an_alias_bomb_in_a_workload_yaml_fails_fast(tmp_path):
    path = tmp_path / "wl.yaml"
    path.write_text("name: w\nn_layers: 2\nd_model: 64\nn_heads: 4\nd_ff: 128\nvocab: 100\n"
                    + BOMB)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="anchors and aliases"):
        predict("h100", str(path))
    assert time.perf_counter() - start < 1
