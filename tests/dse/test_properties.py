"""Monotonicity and bounds that must hold for any chip (hypothesis over random candidates)."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dse.api import _prepare, predict
from dse.evaluator import model
from hwspace.tables import MEMORY_TYPES, NODE_NAMES

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)

SCENARIOS = [
    ("llama3-8b", dict(phase="decode", batch=8, context_len=1024, weights="int4")),
    ("llama2-7b", dict(phase="generate", batch=4, prompt_len=256, gen_len=64)),
    ("llama2-70b", dict(phase="decode", batch="max", weights="fp8", activations="fp8", chips=8)),
    ("mixtral-8x7b", dict(phase="decode", batch=16, weights="int8", chips=4)),
    ("resnet50", dict(batch=32, weights="int8", activations="int8")),
    ("bert-large", dict(batch=4, prompt_len=384)),
]


@st.composite
def chips(draw):
    mem = draw(st.sampled_from([m for m in MEMORY_TYPES if m != "none"] + ["none"]))
    stacks = 0 if mem == "none" else draw(st.integers(1, 8))
    return dict(
        name="candidate",
        process_node=draw(st.sampled_from(NODE_NAMES)),
        macs=draw(st.integers(2_000, 400_000)),
        clock_ghz=draw(st.floats(0.5, 2.0)),
        sram_mb=draw(st.floats(1.0, 1000.0) if mem != "none" else st.floats(200.0, 4000.0)),
        dtype_speedup={"fp8": draw(st.sampled_from([0, 2])), "int8": 2,
                       "int4": draw(st.sampled_from([0, 4]))},
        memory=dict(type=mem, stacks=stacks),
        links=dict(count=draw(st.integers(1, 18)), gb_s_per_link=draw(st.floats(5.0, 100.0))),
        dies=2,
    )


scenarios = st.sampled_from(SCENARIOS)


def _scaled(chip: dict, path: str, factor: float) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in chip.items()}
    if "." in path:
        outer, inner = path.split(".")
        out[outer][inner] = out[outer][inner] * factor
    else:
        out[path] = type(out[path])(out[path] * factor)
    return out


@SETTINGS
@given(chips(), scenarios, st.floats(1.1, 4.0))
def test_more_memory_bandwidth_never_lowers_throughput(chip, case, factor):
    from hwspace.memory import derive_memory
    from hwspace.tables import MEMORY_TYPES as TYPES

    if chip["memory"]["type"] == "none":
        return
    idx = np.array([TYPES.index(chip["memory"]["type"])])
    _, bw = derive_memory(idx, np.array([chip["memory"]["stacks"]]), np.array([np.nan]),
                          np.array([np.nan]))
    chip["memory"]["bandwidth_tb_s"] = float(bw[0])
    workload, sc = case
    slow = predict(chip, workload, **sc)
    fast = predict(_scaled(chip, "memory.bandwidth_tb_s", factor), workload, **sc)
    if slow["fits"]:
        assert fast["fits"]
        assert fast["throughput_per_s"] >= slow["throughput_per_s"] * (1 - 1e-9)


def _offchip_bytes(chip: dict, workload: str, sc: dict) -> float:
    chips_arr, plan, scen, sys = _prepare(chip, workload, dict(sc))
    _, detail = model.explain(chips_arr, plan, scen, sys)
    return sum(p.repeats * float(np.sum(detail[p.name]["mem_bytes"] * p.ops.count))
               for p in plan.passes)


@SETTINGS
@given(chips(), scenarios, st.floats(1.1, 8.0))
def test_more_sram_never_raises_offchip_bytes(chip, case, factor):
    workload, sc = case
    sc = {**sc, "chips": 1, "batch": 1 if sc.get("batch") == "max" else sc["batch"]}
    small = predict(chip, workload, **sc)
    if not small["fits"]:
        return
    big_chip = _scaled(chip, "sram_mb", factor)
    if not predict(big_chip, workload, **sc)["fits"]:  # a larger die may pass the reticle
        return
    assert _offchip_bytes(big_chip, workload, sc) <= _offchip_bytes(chip, workload, sc) * (1 + 1e-9)


@SETTINGS
@given(chips(), scenarios, st.floats(1.1, 4.0), st.booleans())
def test_more_macs_never_raise_compute_time(chip, case, factor, fixed_tdp):
    workload, sc = case
    sc = {**sc, "chips": 1, "batch": 1 if sc.get("batch") == "max" else sc["batch"]}
    if fixed_tdp:
        chip["tdp_w"] = 300.0
    few = _compute_time(chip, workload, sc)
    many = _compute_time(_scaled(chip, "macs", factor), workload, sc)
    assert many <= few * (1 + 1e-9)
    if not fixed_tdp:  # without a power cap, nothing else can slow a faster datapath down
        slow = predict(chip, workload, **sc)
        fast = predict(_scaled(chip, "macs", factor), workload, **sc)
        if slow["fits"] and fast["fits"]:
            assert fast["latency_s"] <= slow["latency_s"] * (1 + 1e-9)


def _compute_time(chip: dict, workload: str, sc: dict) -> float:
    chips_arr, plan, scen, sys = _prepare(chip, workload, dict(sc))
    _, detail = model.explain(chips_arr, plan, scen, sys)
    return sum(p.repeats * float(np.sum(detail[p.name]["t_compute"] * p.ops.count))
               for p in plan.passes)


@SETTINGS
@given(chips(), scenarios)
def test_achieved_flops_never_exceed_peak_and_energy_is_positive(chip, case):
    workload, sc = case
    out = predict(chip, workload, **sc)
    if not math.isnan(out["utilization"]):
        assert 0.0 < out["utilization"] <= 1.0
    if out["fits"]:
        assert out["energy_per_item_j"] > 0 and out["power_w"] > 0
        assert out["throughput_per_s"] > 0


@SETTINGS
@given(chips(), st.floats(1.1, 3.0))
def test_cost_grows_with_die_area(chip, factor):
    chip["dies"] = 16  # keep every die under the reticle
    small = predict(chip, "resnet50")
    big = predict(_scaled(chip, "sram_mb", factor), "resnet50")
    assert big["die_area_mm2"] > small["die_area_mm2"]
    assert big["die_cost_usd"] > small["die_cost_usd"]
    assert big["unit_cost_usd"] > small["unit_cost_usd"]


@SETTINGS
@given(chips(), st.sampled_from(SCENARIOS[:2] + SCENARIOS[4:]), st.integers(2, 8))
def test_n_chips_serve_at_least_n_times_one_chip(chip, case, n):
    # Data parallelism is always one of the splits: N chips at N times the batch do at least
    # N times the work of one chip at its batch.
    workload, sc = case
    one = predict(chip, workload, **{**sc, "chips": 1})
    many = predict(chip, workload, **{**sc, "chips": n, "batch": sc["batch"] * n})
    if one["fits"]:
        assert many["fits"]
        assert many["throughput_per_s"] >= n * one["throughput_per_s"] * (1 - 1e-9)


# -- Random valid candidates in bulk (issue 18, item 3) ----------------------------------------
# The sweeps' own sampler over conf/space/wide.yaml, widened by hypothesis: per example a seed
# and the spread of the fields the space fixes (TDP, clock, links, explicit bandwidth,
# execution model), and a few whole chips of the ``chips`` strategy above. Every candidate is
# evaluated vectorised, one evaluate() call per scenario, and checked against physics.

WIDE_SPACE = Path(__file__).resolve().parents[2] / "conf" / "space" / "wide.yaml"
# id -> (workload, scenario, system): the six kinds of work a search optimises.
BULK_CASES = {
    "decode_b1": ("llama3-8b", dict(phase="decode", batch=1, weights="int4"), {}),
    "generate_max_slo": ("llama3-8b", dict(phase="generate", batch="max", prompt_len=1024,
                                           gen_len=256, weights="fp8", activations="fp8",
                                           kv_cache="fp8"),
                         dict(tpot_slo_s=0.05, ttft_slo_s=2.0)),
    "prefill": ("llama3-8b", dict(phase="prefill", batch=4, prompt_len=2048), {}),
    "moe_decode": ("mixtral-8x7b", dict(phase="decode", batch=16, weights="int8"), {}),
    "cnn_b256": ("resnet50", dict(phase="infer", batch=256, weights="int8",
                                  activations="int8"), {}),
    "train_small": ("gpt2", dict(phase="train", batch=8), {}),
}
BULK_CANDIDATES = 2_000
REL = 1e-9  # rounding allowance of every bound


def wide_space():
    """conf/space/wide.yaml as the sweeps parse it."""
    from omegaconf import OmegaConf

    from hwspace.space import parse_space

    raw = OmegaConf.to_container(OmegaConf.load(WIDE_SPACE))
    return parse_space({k: v for k, v in raw.items() if k != "defaults"})


def spread(tdp_share: float, tdp_scale: float, bw_share: float,
           dataflow: float) -> dict:
    """How to spread the fields wide.yaml fixes: {column: sampler(rng, n)}. ``tdp_share`` of
    the candidates state a TDP of ``tdp_scale`` x the derived one (throttled below 1),
    ``bw_share`` an explicit memory bandwidth, ``dataflow`` run as dataflow chips."""
    return dict(
        clock_ghz=lambda rng, n: rng.uniform(0.3, 3.0, n),
        links_latency_us=lambda rng, n: rng.uniform(0.0, 5.0, n),
        execution=lambda rng, n: np.where(rng.random(n) < dataflow, "dataflow", "kernels"),
        vector_ratio=lambda rng, n: rng.uniform(0.02, 1.0, n),
        _tdp=lambda rng, n: np.where(rng.random(n) < tdp_share, tdp_scale, np.nan),
        _bw=lambda rng, n: np.where(rng.random(n) < bw_share, rng.uniform(0.05, 8.0, n),
                                    np.nan),
    )


@st.composite
def spreads(draw):
    """(seed, spread) of one example."""
    return draw(st.integers(0, 2**31 - 1)), spread(
        draw(st.sampled_from([0.0, 0.5, 1.0])), draw(st.floats(0.05, 3.0)),
        draw(st.sampled_from([0.0, 0.5])), draw(st.sampled_from([0.0, 0.3])))


def bulk_candidates(seed: int, spread: dict, extra: list[dict], n: int):
    """(ChipArrays, chips per system) of ``n`` wide-space draws plus the ``extra`` chip dicts."""
    from hwspace.derived import derive
    from hwspace.spec import ChipArrays, from_columns, from_configs

    rng = np.random.default_rng(seed)
    cols = wide_space().random_chunk(seed, 0, n)
    n_sys = np.concatenate([cols.pop("chips"), rng.choice([1, 2, 4], len(extra))])
    for key, sample in spread.items():
        if not key.startswith("_"):
            cols[key] = sample(rng, n)
    cols["memory_bandwidth_tb_s"] = np.where(cols["memory_type"] == "none", np.nan,
                                             spread["_bw"](rng, n))
    parts = [from_columns(cols)] + ([from_configs(extra)] if extra else [])
    chips = ChipArrays(**{f.name: np.concatenate([getattr(c, f.name) for c in parts])
                          for f in dataclasses.fields(ChipArrays)})
    tdp = spread["_tdp"](rng, chips.n) * derive(chips).tdp_w  # NaN: derived
    return dataclasses.replace(chips, tdp_w=tdp), n_sys.astype(float)


def _plan(case: str):
    from dse.presets import load_plan, load_workload
    from workloads.scenario import family_of, make_scenario

    workload, scenario, slos = BULK_CASES[case]
    cfg = load_workload(workload)
    sc = make_scenario(family_of(cfg), dict(scenario))
    return load_plan(cfg, sc), sc, slos


def _min_flop_per_item(plan) -> float:
    """FLOP every output item needs at least: a generated token one decode step's forward, a
    trained token three forwards (PaLM appendix B), else the request's FLOP over its items."""
    flop = {p.name: float(np.sum(p.ops.flop * p.ops.count)) for p in plan.passes}
    if plan.phase == "train":
        return 3.0 * flop["train_forward"] / plan.items_per_request
    if "decode" in flop:
        return flop["decode"]
    return sum(p.repeats * flop[p.name] for p in plan.passes) / plan.items_per_request


def _min_weight_bytes_per_step(plan, sc) -> float:
    """Weight bytes one decode step of a replica reads at least when they stream: every dense
    weight, and of each MoE layer's experts the top-k share (DESIGN.md section 4)."""
    from workloads.precision import parse_dtype

    p = next(p for p in plan.passes if p.name == "decode")
    share = np.where(p.ops.moe, plan.moe_top_k / max(plan.moe_experts, 1), 1.0)
    elems = float(np.sum(p.ops.weight_elems * p.ops.count * share))
    return elems * parse_dtype(sc.weights, "weights").bits / 8.0


def _bounds(chips, n_sys, plan, sc, out) -> dict[str, np.ndarray]:
    """Per candidate, True where a bound is broken."""
    from dse.evaluator.columns import peak_flop_per_s
    from hwspace.derived import derive

    der = derive(chips)
    thr = out["throughput_per_s"]
    ok = ~np.isnan(thr)
    compute_limit = peak_flop_per_s(der, sc) * n_sys / _min_flop_per_item(plan)
    broken = dict(
        finite=np.logical_or.reduce([np.isinf(np.asarray(v, float)) for v in out.values()]),
        utilization=out["utilization"] > 1.0 + REL,
        compute_roofline=ok & (thr > compute_limit * (1 + REL)),
        power=out["power_w"] > der.tdp_w * (1 + REL),
        cost=~((out["unit_cost_usd"] > 0) & (out["system_cost_usd"] > 0)
               & (out["die_cost_usd"] > 0)),
    )
    if plan.phase == "decode":
        streamed = ok & (out["regime"] == 1) & (der.mem_capacity_bytes > 0)
        memory_limit = (out["batch"] * n_sys * chips.mem_bw_bytes_per_s
                        / _min_weight_bytes_per_step(plan, sc))
        broken["memory_roofline"] = streamed & (thr > memory_limit * (1 + REL))
    return broken


def _slower(base: dict, more: dict) -> np.ndarray:
    """Where a candidate with more of a resource is slower, of pairs that both fit."""
    both = (base["fits"] > 0) & (more["fits"] > 0)
    return both & (more["throughput_per_s"] < base["throughput_per_s"] * (1 - REL))


def check_candidates(chips, n_sys, plan, sc, slos: dict) -> dict[str, np.ndarray]:
    """Every property of issue 18 on one scenario (``slos``: System keywords):
    {check: (n_cand,) True where broken}."""
    from hwspace.derived import derive

    def run(c, n):
        return model.evaluate(c, plan, sc, model.System(chips=n, **slos))

    base = run(chips, n_sys)
    broken = _bounds(chips, n_sys, plan, sc, base)
    tdp = derive(chips).tdp_w
    pinned = dataclasses.replace(chips, tdp_w=tdp)  # the same chips, TDP stated
    with_memory = derive(chips).mem_capacity_bytes > 0
    more = dict(
        bandwidth=(run(dataclasses.replace(chips, mem_bw_bytes_per_s=chips.mem_bw_bytes_per_s
                                           * 2.0), n_sys), with_memory),
        # NOTE: SRAM leaks (static power grows with area); under a fixed TDP more of it can
        # throttle a chip, so this pair keeps the derived TDP, which grows with it.
        sram=(run(dataclasses.replace(chips, sram_bytes=chips.sram_bytes * 2.0), n_sys),
              np.isnan(chips.tdp_w)),
        chips=(run(chips, n_sys * 2), True),
        tdp=(run(dataclasses.replace(chips, tdp_w=tdp * 2.0), n_sys), True),
    )
    for name, (out, where) in more.items():
        against = run(pinned, n_sys) if name == "tdp" else base
        broken[f"more_{name}_slower"] = where & _slower(against, out)
    return broken


def _report(broken: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{k}: {int(v.sum())} (e.g. #{int(np.argmax(v))})"
                     for k, v in broken.items() if v.any())


# Four examples (the first is hypothesis's simplest): 8,064 candidates x 6 scenarios, ~5 s.
@settings(max_examples=4, deadline=None, derandomize=True)
@given(spreads(), st.lists(chips(), min_size=16, max_size=16))
def test_random_valid_candidates_obey_physics(drawn, extra):
    seed, columns = drawn
    cands, n_sys = bulk_candidates(seed, columns, extra, BULK_CANDIDATES)
    assert cands.n >= 2_000
    for case in BULK_CASES:
        broken = check_candidates(cands, n_sys, *_plan(case))
        assert not any(v.any() for v in broken.values()), f"{case}: {_report(broken)}"


def _niche(compose_conf, name: str):
    from omegaconf import OmegaConf

    from dse.pipeline.niche import parse_niche

    cfg = compose_conf("sweep", [f"niche={name}"])
    return parse_niche(OmegaConf.to_container(cfg.niche, resolve=True))


# A niche whose scenario pins a published split (tp = 2 of the system's chips): the rows and
# `dse predict run= candidate=` must both hold it.
_PINNED = dict(name="pinned", objectives=dict(throughput_per_usd="max", throughput_per_w="max"),
               scenarios=dict(decode=dict(workload="llama3-8b", phase="decode", batch=16,
                                          prompt_len=512, tp=2)))


@pytest.mark.parametrize("niche", ["hyperscale", "edge_vision", "pinned"])
def test_sweep_rows_equal_predict(compose_conf, niche):
    from dse.pipeline.niche import parse_niche
    from dse.pipeline.rows import evaluate_rows
    from hwspace.spec import nest_config

    found = parse_niche(_PINNED) if niche == "pinned" else _niche(compose_conf, niche)
    params = wide_space().random_chunk(7, 0, 64)
    keep = np.flatnonzero(params["memory_type"] != "none")[:6]  # SRAM-only: see the bulk test
    params = {k: v[keep] for k, v in params.items()}
    if niche == "pinned":
        params["chips"] = np.full(len(keep), 4)
    rows = evaluate_rows(params, np.arange(len(keep)), [found]).to_pandas()
    assert len(rows) == len(keep) * len(found.scenarios)
    for _, row in rows.iterrows():
        i = int(row["candidate_id"])
        chip = nest_config({k: v[i] for k, v in params.items() if k != "chips"})
        ns = next(s for s in found.scenarios if s.name == row["scenario"])
        want = predict(dict(chip, name="candidate"), ns.workload, economics=found.economics,
                       **ns.predict_inputs(int(params["chips"][i])))
        if niche == "pinned" and want["fits"]:
            assert want["tp"] == 2
        for key in model.OUTPUTS:
            got = row[key]
            if key in model.LABELS or key == "fits":
                assert str(got) == str(want[key]), (key, got, want[key])
            elif want[key] is None or (isinstance(want[key], float) and math.isnan(want[key])):
                assert got is None or math.isnan(got), (key, got)
            else:
                assert got == pytest.approx(want[key], rel=1e-12), key


def test_search_pareto_candidates_obey_physics(small_runs, compose_conf):
    # A real 120-trial NSGA-II search of edge_vision (tests/dse/conftest.py, JournalStorage in
    # its run folder): every candidate of its Pareto front passes every check.
    import pandas as pd
    from omegaconf import OmegaConf

    from dse.pipeline.niche import parse_niche
    from hwspace.space import parse_space
    from hwspace.spec import from_columns

    _, _, search = small_runs
    saved = OmegaConf.load(search / ".hydra" / "config.yaml")
    space = parse_space(OmegaConf.to_container(saved.space, resolve=True))
    niche = parse_niche(OmegaConf.to_container(saved.niche, resolve=True))
    front = pd.read_parquet(search / "pareto.parquet")
    assert len(front) > 0
    cols = {c: front[c].to_numpy() for c in space.columns if c != "chips"}
    n_sys = front["chips"].to_numpy(float) if "chips" in front else np.ones(len(front))
    chips = from_columns(cols)
    cases = [(ns.plan, ns.scenario, dict(tpot_slo_s=ns.tpot_slo_s, ttft_slo_s=ns.ttft_slo_s))
             for ns in niche.scenarios] + [_plan(case) for case in BULK_CASES]
    for plan, sc, slos in cases:
        broken = check_candidates(chips, n_sys, plan, sc, slos)
        assert not any(v.any() for v in broken.values()), f"{plan.phase}: {_report(broken)}"
