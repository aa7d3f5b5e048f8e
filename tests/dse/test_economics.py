"""The economic views end to end (DESIGN.md section 8): the ``economics`` keyword of the API
and config group of the CLI, each niche's view in its rows, and the buyer's cost per token of
real chips against public per-token prices."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from dse.api import predict
from dse.pipeline.niche import parse_niche
from dse.pipeline.rows import evaluate_rows
from dse.presets import CONF_DIR, load_chip, load_economics, preset_names
from hwspace.spec import flatten_config

# Llama-3-70B at fp8 on 8 chips under the hyperscale niche's SLOs (conf/niche/hyperscale.yaml).
SERVING = dict(phase="generate", batch="max", prompt_len=2048, gen_len=512, weights="fp8",
               activations="fp8", kv_cache="fp8", tpot_slo_s=0.05, ttft_slo_s=2.0, chips=8)
# Public list prices, USD per million output tokens, of 70B-class Llama models (as of the
# pages read): DeepInfra Meta-Llama-3.1-70B-Instruct-Turbo at fp8 $0.13 in / $0.40 out
# (deepinfra.com model page); Groq llama-3.3-70b-versatile $0.59 / $0.79 (Groq's price list,
# via theneuralbase.com, Apr 2026); Together Meta-Llama-3-70B-Instruct-Turbo $0.88 / $0.88
# (together.ai price list, via getmaxim.ai); Fireworks, serverless 16.1B-80B models, $0.90
# (fireworks.ai/pricing).
OUTPUT_USD_PER_MILLION = {"deepinfra": 0.40, "groq": 0.79, "together": 0.88, "fireworks": 0.90}


def test_buyer_cost_per_token_of_h100s_falls_among_public_prices():
    # A provider's price per output token covers its cost of owning the GPUs that generate
    # it: the buyer's TCO per token of 8 H100s must land in the span of the price lists.
    out = predict("h100", "llama3-70b", economics="buyer", **SERVING)
    low, high = min(OUTPUT_USD_PER_MILLION.values()), max(OUTPUT_USD_PER_MILLION.values())
    assert out["fits"] and low <= out["usd_per_million_items"] <= high
    # Owning an H100 costs more an hour than its price over 5 years ($27,500 / 43,830 h) and
    # less than renting one: $2-4 an hour at neoclouds in 2024-25 (Epoch, Hardware
    # prices.csv; costpower.md section 6.2).
    per_gpu_hour = out["usd_per_million_items"] * out["throughput_per_s"] / 1e6 * 3600 / 8
    assert 27_500 / (5 * 8766) < per_gpu_hour < 2.0
    # The manufacturing view is an order of magnitude below any price: not what a buyer pays.
    built = predict("h100", "llama3-70b", economics="builder", **SERVING)
    assert built["usd_per_million_items"] < low / 10
    assert built["throughput_per_s"] == out["throughput_per_s"]


def test_views_change_the_costs_only():
    views = {v: predict("rtx4090", "llama3-8b", economics=v, phase="decode", batch=1,
                        weights="int4") for v in ("builder", "buyer", "retail")}
    costs = {"unit_cost_usd", "system_cost_usd", "throughput_per_usd", "usd_per_million_items"}
    rest = [k for k in views["builder"] if k not in costs]
    assert all(repr(views[v][k]) == repr(views["builder"][k]) for v in views for k in rest)
    assert views["builder"]["unit_cost_usd"] < 1599 == views["retail"]["unit_cost_usd"]
    # retail: the card alone; buyer: in a server on a network.
    assert views["retail"]["system_cost_usd"] == 1599 < views["buyer"]["system_cost_usd"]


def test_a_mapping_or_a_file_gives_a_view(tmp_path):
    path = tmp_path / "startup.yaml"
    path.write_text("view: builder\nvolume_units: 10000\n")
    few = predict("h100", "llama3-8b", economics=str(path), phase="decode", batch=1)
    many = predict("h100", "llama3-8b", economics={"view": "builder"}, phase="decode", batch=1)
    # (12.18 M USD design + 18.1 M USD masks at 4 nm) / 10,000 vs / 100,000 units.
    assert few["unit_cost_usd"] - many["unit_cost_usd"] == pytest.approx(30.28e6 * 9 / 1e5)


@pytest.mark.parametrize("spec, field", [
    ({"view": "seller"}, "economics.view"),
    ({"gross_margin": 1.0}, "economics.gross_margin"),
    ({"volume_units": 0}, "economics.volume_units"),
    ({"pue": 0.9}, "economics.pue"),
    ({"margin": 0.5}, "economics.margin"),
    ({"view": "builder", "gross_margin": 0.5}, "economics.gross_margin"),
    ({"view": "buyer", "volume_units": 10}, "economics.volume_units"),
    ("cheap", "economics"),
])
def test_bad_economics_is_one_line_naming_the_field(spec, field):
    with pytest.raises(ValueError) as err:
        predict("h100", "llama3-8b", economics=spec, phase="decode", batch=1)
    assert str(err.value).startswith(field) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", preset_names("economics"))
def test_every_economics_preset_composes_against_its_schema(name, compose_conf):
    cfg = compose_conf("predict", [f"economics={name}"])
    composed = load_economics(OmegaConf.to_container(cfg.economics))
    assert composed == load_economics(name)


@pytest.mark.parametrize("niche, view", [("local_llm", "retail"), ("hyperscale", "buyer"),
                                         ("edge_vision", "builder"), ("training", "buyer"),
                                         ("disaggregated", "buyer")])
def test_each_niche_names_its_view(niche, view):
    cfg = yaml.safe_load((CONF_DIR / "niche" / f"{niche}.yaml").read_text())
    assert cfg["economics"] == view
    assert parse_niche(cfg).economics == load_economics(view)


def _preset_rows(names: list[str], niche: str):
    flats = [{k: v for k, v in flatten_config(load_chip(n)).items() if k != "name"}
             for n in names]
    params = {k: np.asarray([f[k] for f in flats]) for k in flats[0]}
    cfg = yaml.safe_load((CONF_DIR / "niche" / f"{niche}.yaml").read_text())
    return evaluate_rows(params, np.arange(len(names)), [parse_niche(cfg)]).to_pandas()


def test_local_llm_prices_a_desktop_card_and_a_cerebras_system_at_retail():
    rows = _preset_rows(["rtx4090", "cerebras-wse3"], "local_llm")
    card, wafer = rows[rows.candidate_id == 0], rows[rows.candidate_id == 1]
    assert (card["system_cost_usd"] == 1599).all()
    # A CS-3 costs its $2-3M system price, not one wafer's ~$33k: over the desktop budget.
    assert (wafer["system_cost_usd"] == 2.5e6).all() and not wafer["feasible"].any()
    assert (wafer["violation"].astype(str) == "max_system_cost_usd").any()


def test_cli_takes_the_economics_group(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dse.cli", "predict", "chip=h100", "workload=llama3-8b",
         "scenario.phase=decode", "scenario.batch=1", "economics=builder",
         "economics.volume_units=10000", "--json", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True)
    out = json.loads(done.stdout)
    # H100's manufacturing cost $3,320 (Raymond James) + (12.18 M + 18.1 M USD) / 10,000.
    assert out["unit_cost_usd"] == pytest.approx(3320 + 3028.0)


def test_explaining_a_run_candidate_takes_its_niches_view(small_runs, tmp_path):
    # The edge_vision niche prices its rows as the builder (conf/niche/edge_vision.yaml);
    # explain of one of them must show the same cost, whatever the CLI's own economics.
    from dse.analysis.query import run_query

    _, sweep, _ = small_runs
    done = subprocess.run(
        [sys.executable, "-m", "dse.cli", "predict", f"run={sweep}", "candidate=7",
         "scenario_name=resnet50-b256", "--json", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True)
    out = json.loads(done.stdout)
    row = run_query("SELECT unit_cost_usd, usd_per_million_items FROM rows WHERE "
                    "candidate_id = 7 AND scenario = 'resnet50-b256'", [sweep]).iloc[0]
    assert out["unit_cost_usd"] == pytest.approx(row["unit_cost_usd"], rel=1e-12)
    assert out["usd_per_million_items"] == pytest.approx(row["usd_per_million_items"],
                                                         rel=1e-12)
