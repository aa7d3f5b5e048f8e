"""Count how a table of bad CLI inputs ends: one clear line, accepted, traceback, dump, hang.

Run from the repository root: python benchmarks/bad_inputs.py [--list]. Each case runs the
real CLI in-process (dse.cli.main); sweeps and searches that pass validation are stopped at
the moment they would start Ray (counted as accepted), so the script needs no cluster."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
CHIP = ("name: x\nprocess_node: n5\nmacs: 100000\nclock_ghz: 1.0\nsram_mb: 64\n"
        "memory: {type: hbm3, stacks: 4}\n")
FILES = {
    "bomb.yaml": CHIP + BOMB + "tdp_w: 300\n",
    "bad.yaml": "name: bad\nmacs: 1000\n  clock_ghz: [1\n",
    "empty.yaml": "",
    "nomacs.yaml": CHIP.replace("macs: 100000\n", ""),
    "extra.yaml": CHIP + "warp: 9\n",
    "strmacs.yaml": CHIP.replace("100000", "lots"),
    "none80.yaml": CHIP.replace("{type: hbm3, stacks: 4}", "{type: none, capacity_gb: 80}"),
    "wl_bomb.yaml": "name: w\nn_layers: 2\nd_model: 64\nn_heads: 4\nd_ff: 128\nvocab: 100\n" + BOMB,
    "wl_good.yaml": "name: w\nn_layers: 2\nd_model: 64\nn_heads: 4\nd_ff: 128\nvocab: 100\n",
}
P, S, Q = "predict", "sweep", "search"
NC = "space=demo niche=edge_vision niche.constraints.max_system_power_w="
CASES = [
    # chip: types, bool, sign, zero, nan, inf, huge, fraction, unknown, missing, cross, markup
    (P, "chip.macs=true", "chip.macs"), (P, "chip.macs=2.5", "chip.macs"),
    (P, "chip.macs=0", "chip.macs"), (P, "chip.macs=nan", "chip.macs"),
    (P, "chip.macs=1e30", "chip.macs"), (P, "chip.clock_ghz=-1", "chip.clock_ghz"),
    (P, "chip.clock_ghz=inf", "chip.clock_ghz"), (P, "chip.clock_ghz=true", "chip.clock_ghz"),
    (P, "chip.sram_mb=-1", "chip.sram_mb"), (P, "chip.sram_mb=nan", "chip.sram_mb"),
    (P, "chip.tdp_w=0", "chip.tdp_w"), (P, "chip.tdp_w=-5", "chip.tdp_w"),
    (P, "chip.tdp_w=abc", "chip.tdp_w"), (P, "chip.die_area_mm2=nan", "chip.die_area_mm2"),
    (P, "chip.unit_cost_usd=-1", "chip.unit_cost_usd"), (P, "chip.dies=0", "chip.dies"),
    (P, "chip.dies=1.5", "chip.dies"), (P, "chip.wafer_scale=maybe", "chip.wafer_scale"),
    (P, "chip.sparsity_speedup=5", "chip.sparsity_speedup"),
    (P, "chip.vector_ratio=0", "chip.vector_ratio"),
    (P, "chip.memory.bandwidth_tb_s=0", "chip.memory.bandwidth_tb_s"),
    (P, "chip.memory.bandwidth_tb_s=-3", "chip.memory.bandwidth_tb_s"),
    (P, "chip.memory.capacity_gb=0", "chip.memory.capacity_gb"),
    (P, "chip.memory.capacity_gb=nan", "chip.memory.capacity_gb"),
    (P, "chip.memory.stacks=-1", "chip.memory.stacks"),
    (P, "chip.memory.stacks=2.5", "chip.memory.stacks"),
    (P, "chip.memory.type=none", "chip.memory"), (P, "chip.memory.type=", "chip.memory.type"),
    (P, "chip.links.count=-2", "chip.links.count"),
    (P, "chip.links.gb_s_per_link=inf", "chip.links.gb_s_per_link"),
    (P, "chip.links.latency_us=-1", "chip.links.latency_us"),
    (P, "chip.links.count=true", "chip.links.count"),
    (P, "chip.process_node=", "chip.process_node"),
    (P, "chip.process_node=[n5]", "chip.process_node"),
    (P, "+chip.warp=1", "chip.warp"), (P, "+chip.memory.warp=1", "chip.memory.warp"),
    (P, "chip.dtype_speedup.fp8=-2", "chip.dtype_speedup.fp8"),
    (P, "chip.dtype_speedup.fp8=nan", "chip.dtype_speedup.fp8"),
    (P, "chip.execution=", "chip.execution"),
    (P, "chip.name=" + "x" * 5000, "chip.name"),
    (P, "chip.sram_bw_tb_s=0", "chip.sram_bw_tb_s"),
    # chip_file
    (P, "chip_file={bomb.yaml}", "chip_file"), (P, "chip_file={bad.yaml}", "chip_file"),
    (P, "chip_file={empty.yaml}", "chip_file"), (P, "chip_file={nomacs.yaml}", "macs"),
    (P, "chip_file={extra.yaml}", "warp"), (P, "chip_file={strmacs.yaml}", "macs"),
    (P, "chip_file={none80.yaml}", "memory"), (P, "chip_file=", "chip_file"),
    (P, "chip_file=/etc", "chip_file"),
    # transformer workload
    (P, "workload.top_k=9 workload=mixtral-8x7b", "workload.top_k"),
    (P, "workload.n_kv_heads=-8", "workload.n_kv_heads"),
    (P, "workload.n_kv_heads=0", "workload.n_kv_heads"),
    (P, "workload.n_kv_heads=5", "workload.n_kv_heads"),
    (P, "workload.n_kv_heads=nan", "workload.n_kv_heads"),
    (P, "workload.n_layers=0", "workload.n_layers"),
    (P, "workload.n_layers=2.5", "workload.n_layers"),
    (P, "workload.n_layers=true", "workload.n_layers"),
    (P, "workload.n_layers=1e12", "workload.n_layers"),
    (P, "workload.d_model=-1", "workload.d_model"), (P, "workload.head_dim=0", "workload.head_dim"),
    (P, "workload.head_dim=-64", "workload.head_dim"), (P, "workload.vocab=0", "workload.vocab"),
    (P, "workload.max_context=0", "workload.max_context"),
    (P, "workload.max_context=-5", "workload.max_context"),
    (P, "workload.n_experts=-1", "workload.n_experts"), (P, "workload.top_k=-1", "workload.top_k"),
    (P, "workload.top_k=2", "workload.top_k"), (P, "workload.norm=batchnorm", "workload.norm"),
    (P, "workload.norms_per_layer=-1", "workload.norms_per_layer"),
    (P, "workload.max_positions=-1", "workload.max_positions"),
    (P, "workload.type_vocab=-1", "workload.type_vocab"),
    (P, "workload.family=cnn", "workload.family"), (P, "+workload.warp=1", "workload.warp"),
    (P, "workload.tied_embeddings=2", "workload.tied_embeddings"),
    (P, "workload.kind=", "workload.kind"),
    (P, "workload=deepseek-v2-lite workload.kv_lora_rank=0", "workload.kv_lora_rank"),
    (P, "workload=deepseek-v2-lite workload.qk_rope_head_dim=-1", "workload.qk_rope_head_dim"),
    (P, "workload=deepseek-v2-lite workload.n_shared_experts=-1", "workload.n_shared_experts"),
    (P, "workload=deepseek-v2-lite workload.moe_d_ff=0", "workload.moe_d_ff"),
    (P, "workload=mistral-7b workload.sliding_window=0", "workload.sliding_window"),
    # CNN workload
    (P, "workload=resnet50 workload.layers.stem.stride=0", "workload.layers.stem.stride"),
    (P, "workload=resnet50 workload.layers.stem.channels=-64", "workload.layers.stem.channels"),
    (P, "workload=resnet50 workload.layers.stem.kernel=0", "workload.layers.stem.kernel"),
    (P, "workload=resnet50 workload.layers.stages=[[3,64,0]]", "workload.layers.stages"),
    (P, "workload=resnet50 workload.layers.stages=[[3,64]]", "workload.layers.stages"),
    (P, "workload=resnet50 workload.layers.stages=[[x,64,1]]", "workload.layers.stages"),
    (P, "workload=resnet50 workload.layers.expansion=0", "workload.layers.expansion"),
    (P, "workload=resnet50 workload.input_size=0", "workload.input_size"),
    (P, "workload=resnet50 workload.input_size=-224", "workload.input_size"),
    (P, "workload=resnet50 workload.in_channels=0", "workload.in_channels"),
    (P, "workload=resnet50 workload.num_classes=0", "workload.num_classes"),
    (P, "workload=resnet50 workload.arch=transformer", "workload.arch"),
    (P, "workload=resnet50 +workload.layers.warp=1", "workload.layers.warp"),
    (P, "workload=resnet50 workload.layers=7", "workload.layers"),
    (P, "workload=mobilenetv2 workload.layers.blocks=[[6,24,2,0]]", "workload.layers.blocks"),
    (P, "workload=mobilenetv2 workload.layers.stem=0", "workload.layers.stem"),
    (P, "workload=mobilenetv2 workload.layers.head=-1", "workload.layers.head"),
    (P, "workload=vgg16 workload.layers.convs=[64,Q]", "workload.layers.convs"),
    (P, "workload=vgg16 workload.layers.convs=[0,M]", "workload.layers.convs"),
    (P, "workload=vgg16 workload.layers.fcs=[-4096]", "workload.layers.fcs"),
    # scenario
    (P, "scenario.batch=true", "scenario.batch"), (P, "scenario.batch=1e15", "scenario.batch"),
    (P, "scenario.prompt_len=nan", "scenario.prompt_len"),
    (P, "scenario.gen_len=-1", "scenario.gen_len"), (P, "scenario.gen_len=0", "scenario.gen_len"),
    (P, "scenario.context_len=-1", "scenario.context_len"),
    (P, "scenario.weights=", "scenario.weights"),
    (P, "scenario.kv_cache=[fp8]", "scenario.kv_cache"),
    (P, "scenario.activations=true", "scenario.activations"),
    (P, "scenario.spec_tokens=0 scenario.draft=0.5", "scenario.spec_tokens"),
    (P, "scenario.acceptance=1.5 scenario.draft=0.5", "scenario.acceptance"),
    (P, "scenario.draft=2", "scenario.draft"), (P, "scenario.draft=nan", "scenario.draft"),
    (P, "scenario.zero=4 scenario.phase=train", "scenario.zero"),
    (P, "scenario.optimizer=lion scenario.phase=train", "scenario.optimizer"),
    (P, "scenario.interleave=0 scenario.phase=train", "scenario.interleave"),
    (P, "scenario.phase=", "scenario.phase"), (P, "scenario.phase=[decode]", "scenario.phase"),
    (P, "+scenario.warp=1", "scenario.warp"), (P, "scenario.batch='[b]x'", "scenario.batch"),

    # system
    (P, "system.chips=true", "system.chips"), (P, "system.chips=2.5", "system.chips"),
    (P, "system.chips=nan", "system.chips"), (P, "system.tp=3 system.chips=8", "system.tp"),
    (P, "system.pp=0", "system.pp"), (P, "system.tp=-1", "system.tp"),
    (P, "system.tp=4 system.pp=4 system.chips=8", "system.tp"),
    (P, "system.scale_up=0", "system.scale_up"),
    (P, "system.network_gb_s=0", "system.network_gb_s"),
    (P, "system.network_gb_s=nan", "system.network_gb_s"),
    (P, "system.host_gb_s=-1", "system.host_gb_s"),
    (P, "system.kv_host_gb=inf", "system.kv_host_gb"),
    (P, "system.max_num_seqs=1e30", "system.max_num_seqs"),
    (P, "system.max_num_seqs=true", "system.max_num_seqs"),
    (P, "system.ttft_slo_s=nan", "system.ttft_slo_s"),
    (P, "system.tpot_slo_s=abc", "system.tpot_slo_s"),
    (P, "+system.warp=1", "system.warp"), (P, "system.chips=", "system.chips"),
    # predict flags
    (P, "output=xml", "output"), (P, "explain=maybe", "explain"), (P, "candidate=-1", "candidate"),
    (P, "candidate=abc", "candidate"),
    (P, "output=", "output"), (P, "+warp=1", "warp"),
    (P, "--jsn", "--jsn"), (P, "chip.name=${oc.env:HOME}", "chip.name"),
    # sweep
    (S, "space=demo sweep.samples=1e15", "sweep.samples"),
    (S, "space=demo sweep.samples=-5", "sweep.samples"),
    (S, "space=demo sweep.samples=2.5", "sweep.samples"),
    (S, "space=demo sweep.samples=true", "sweep.samples"),
    (S, "space=demo sweep.samples=nan", "sweep.samples"),
    (S, "space=demo sweep.chunk_size=1e12", "sweep.chunk_size"),
    (S, "space=demo sweep.chunk_size=-1", "sweep.chunk_size"),
    (S, "space=demo sweep.seed=-1", "sweep.seed"),
    (S, "space=demo sweep.seed=abc", "sweep.seed"), (S, "space=demo sweep.seed=1.5", "sweep.seed"),
    (S, "space=demo sweep.max_in_flight=0", "sweep.max_in_flight"),
    (S, "space=demo sweep.mode=", "sweep.mode"), (S, "space=demo +sweep.warp=1", "sweep.warp"),
    (S, "space=demo top=-3", "top"), (S, "space=demo top=abc", "top"),
    (S, "space=demo ray.num_cpus=0", "ray.num_cpus"),
    (S, "space=demo ray.num_cpus=-2", "ray.num_cpus"),
    # space

    (S, "space=demo space.params.macs.low=nan", "space.macs"),
    (S, "space=demo space.params.macs.high=inf", "space.macs"),
    (S, "space=demo space.params.macs.low=true", "space.macs"),
    (S, "space=demo space.params.macs.num=0", "space.macs"),
    (S, "space=demo space.params.macs.num=2.5", "space.macs"),
    (S, "space=demo space.params.memory.stacks.step=0", "space.memory.stacks"),
    (S, "space=demo space.params.memory.stacks.step=-4", "space.memory.stacks"),
    (S, "space=demo space.params.memory.stacks.low=9", "space.memory.stacks"),
    (S, "space=demo space.params.clock_ghz=abc", "space.clock_ghz"),
    (S, "space=demo space.params.clock_ghz=true", "space.clock_ghz"),
    (S, "space=demo space.params.clock_ghz=nan", "space.clock_ghz"),
    (S, "space=demo space.params.chips=[0,8]", "space.chips"),
    (S, "space=demo space.params.chips=[1.5]", "space.chips"),
    (S, "space=demo space.params.process_node=[]", "space.process_node"),
    (S, "space=demo space.params.process_node='[/x]'", "space.process_node"),
    (S, "space=demo space.params.macs.log=maybe", "space.macs"),
    (S, "space=demo space.params.macs.low=-5", "space.macs"),
    (S, "space=demo space.params.dtype_speedup.fp8=-1", "space.dtype_speedup.fp8"),
    (S, "space=demo space.name=", "space.name"),
    (S, "space=demo ~space.params.macs", "macs"),
    (S, "space=demo space.params.memory.type=[none] space.params.memory.stacks=4", "space.memory"),
    (S, "space=demo space.params.links.count=1.5", "space.links.count"),
    # niche
    (S, "space=demo niche=edge_vision niche.scenarios.resnet50-b1.batch=0", "niche"),
    (S, "space=demo niche=edge_vision niche.scenarios.resnet50-b1.batch=true", "batch"),
    (S, "space=demo niche=edge_vision niche.scenarios.resnet50-b1.workload=nope", "workload"),
    (S, "space=demo niche=edge_vision +niche.scenarios.resnet50-b1.warp=1", "warp"),
    (S, NC + "nan", "max_system_power_w"),
    (S, NC + "abc", "max_system_power_w"),
    (S, NC + "-5", "max_system_power_w"),
    (S, NC + "true", "max_system_power_w"),
    (S, "space=demo niche=edge_vision +niche.constraints.warp=1", "warp"),
    (S, "space=demo niche=edge_vision niche.objectives.throughput_per_w=up", "throughput_per_w"),
    (S, "space=demo niche=edge_vision niche.name=", "niche.name"),

    (S, "space=demo niche=hyperscale niche.scenarios.llama3-70b-fp8.tpot_slo_s=0", "tpot_slo_s"),
    (S, "space=demo niche=hyperscale niche.scenarios.llama3-70b-fp8.tpot_slo_s=nan", "tpot_slo_s"),
    (S, "space=demo niche=hyperscale +niche.scenarios.llama3-70b-fp8.tp=3", "tp"),
    (S, "space=demo niche=edge_vision niche.scenarios.resnet50-b1.phase=decode", "phase"),

    (S, "space=demo niche=edge_vision +niche.warp=1", "niche.warp"),
    # search
    (Q, "search.trials=1e15", "search.trials"), (Q, "search.trials=-1", "search.trials"),
    (Q, "search.trials=2.5", "search.trials"), (Q, "search.trials=true", "search.trials"),
    (Q, "search.trials=nan", "search.trials"), (Q, "search.population=1e12", "search.population"),
    (Q, "search.population=1", "search.population"), (Q, "search.seed=-1", "search.seed"),
    (Q, "search.seed=abc", "search.seed"), (Q, "search.sampler=", "search.sampler"),
    (Q, "+search.warp=1", "search.warp"), (Q, "search.storage=", "search.storage"),
    (Q, "top=0", "top"), (Q, "search.population=true", "search.population"),
]


# Valid inputs the first table held (free-text names with markup, settings in range): they
# must run, and print user text literally; counted apart.
GOOD = [
    (P, "chip.name='[/x]'", "chip.name"),
    (P, "chip.name='[bold]x'", "chip.name"),
    (P, "workload.name='[red]x'", "workload.name"),
    (P, "scenario.acceptance=0.5", "scenario.acceptance"),
    (P, "scenario.spec_tokens=9", "scenario.spec_tokens"),
    (P, "scenario_name='[x]'", "scenario_name"),
    (S, "space=demo sweep.mode=grid space.params.macs.num=1000000", "space"),
    (S, "space=demo niche=edge_vision niche.scenarios={}", "niche.scenarios"),
    (S, "space=demo niche=edge_vision niche.name='[/x]'", "niche.name"),
]


class _Stop(Exception):
    """Raised where a sweep or search would start Ray: the input was accepted."""


_ACCEPTED: list[bool] = [False]


def _stop(*_a, **_k):
    _ACCEPTED[0] = True  # Hydra reports the exception as its own: the flag says what it was
    raise _Stop


def _alarm(*_a):
    raise TimeoutError


def _run_case(verb: str, args: str, files: dict, out_dir: Path, timeout_s: float):
    from dse.cli import main

    for name, path in files.items():
        args = args.replace(f"{{{name}}}", path)
    argv = [verb, *args.split(" ")]
    if verb in ("sweep", "search"):
        argv.append(f"hydra.run.dir={out_dir}")
    out, err = io.StringIO(), io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    code = 0
    _ACCEPTED[0] = False
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(argv)
    except SystemExit as e:
        code = e.code
    except _Stop:
        code = "accepted"
    except TimeoutError:
        code = "hang"
    except BaseException as e:  # noqa: BLE001 - counted, not hidden
        err.write(f"Traceback (most recent call last):\n{type(e).__name__}: {e}\n")
        code = 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if _ACCEPTED[0]:
        code = "accepted"
    return code, out.getvalue(), err.getvalue()


def classify(code, out: str, err: str, field: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    if code == "hang":
        return "hang"
    if code in ("accepted", 0, None):
        return "accepted"
    if "Traceback" in err:
        return "traceback"
    if "full_key" in err or "object_type" in err or len(lines) > 1:
        return "dump"
    if code == 2 and len(lines) == 1 and field.split(".")[-1] in lines[0] and not out:
        return "clear"
    return "no_field"


def main() -> None:
    import dse.pipeline.search as search_mod
    import dse.pipeline.sweep as sweep_mod
    import dse.pipeline.workers as workers_mod

    sweep_mod.run_sweep = _stop
    search_mod.run_search = _stop
    workers_mod.ray_session = _stop
    tmp = Path(tempfile.mkdtemp())
    for name, text in FILES.items():
        (tmp / name).write_text(text)
    files = {name: str(tmp / name) for name in FILES}
    os.chdir(tmp)
    counts: dict[str, int] = {}
    for i, (verb, args, field) in enumerate(CASES):
        start = time.perf_counter()
        code, out, err = _run_case(verb, args, files, tmp / f"run{i}", 20.0)
        kind = classify(code, out, err, field)
        counts[kind] = counts.get(kind, 0) + 1
        if kind != "clear" or "--list" in sys.argv:
            line = (err.strip().splitlines() or [""])[-1][:150]
            print(f"{kind:9s} {time.perf_counter() - start:5.1f}s  {verb} {args[:70]}  | {line}",
                  file=sys.__stdout__)
    refused = []
    for i, (verb, args, _) in enumerate(GOOD):
        code, out, err = _run_case(verb, args, files, tmp / f"good{i}", 20.0)
        literal = ".name='" not in args or args.split("'")[1] in out or verb == "sweep"
        if code not in ("accepted", 0, None) or not literal:
            refused.append(f"{verb} {args}: {err.strip()[-150:]}")
    print(f"{len(GOOD) - len(refused)} of {len(GOOD)} valid inputs run" +
          "".join(f"\n  refused {r}" for r in refused), file=sys.__stdout__)
    total = sum(counts.values())
    print(f"{total} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
          f"({100 * counts.get('clear', 0) / total:.1f}% one clear line)", file=sys.__stdout__)


if __name__ == "__main__":
    main()
