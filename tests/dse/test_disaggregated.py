"""Disaggregated serving: prefill and decode pools of possibly different chips vs one chip
type colocated, under the same SLOs, from real evaluated rows (and a real run's report)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from omegaconf import OmegaConf

from dse.analysis import disaggregated
from dse.analysis.report import write_report
from dse.pipeline.niche import parse_niche
from dse.pipeline.pareto import pareto_mask
from dse.pipeline.rows import evaluate_rows
from dse.pipeline.store import RunStore
from dse.presets import CONF_DIR, load_chip
from hwspace.spec import flatten_config


def _niche_cfg() -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "niche" / "disaggregated.yaml"))
    cfg.pop("defaults")
    return cfg


NICHE = parse_niche(_niche_cfg())
_H100 = {k: v for k, v in flatten_config(load_chip("h100")).items() if k != "name"}
# One price, two balances: twice the H100's MACs on 1 TB/s, or a quarter on 6 TB/s.
COMPUTE = {**_H100, "macs": 2 * _H100["macs"], "memory_bandwidth_tb_s": 1.0}
BANDWIDTH = {**_H100, "macs": _H100["macs"] // 4, "memory_bandwidth_tb_s": 6.0}


def _rows(chips: list[dict], sizes=(8,)):
    params = {k: np.repeat(np.asarray([c[k] for c in chips]), len(sizes)) for k in chips[0]}
    params["chips"] = np.tile(np.asarray(sizes), len(chips))
    n = len(chips) * len(sizes)
    return evaluate_rows(params, np.arange(n), [NICHE]), list(params)


def test_compute_chip_prefills_and_bandwidth_chip_decodes():
    table, params = _rows([COMPUTE, BANDWIDTH])
    comp = disaggregated.compare(table.to_pandas(), NICHE, params)
    best = comp.pairs.iloc[0]
    assert (best["prefill_id"], best["decode_id"]) == (0, 1)
    # Prefill is compute-bound, decode bandwidth-bound (the article's two regimes): the
    # pair beats either chip type serving both phases on tokens per $.
    assert comp.gain > 1.2


def test_pair_front_equals_the_brute_force_front_over_all_pairs():
    chips = [COMPUTE, BANDWIDTH, _H100, {**_H100, "macs": _H100["macs"] // 2},
             {**_H100, "memory_bandwidth_tb_s": 5.0}]
    table, params = _rows(chips, sizes=(4, 8))
    pools = disaggregated.pools(table.to_pandas(), NICHE, params)
    front = disaggregated.pair_front(pools)
    brute = []
    for p, d in itertools.product(pools.index, pools.index):
        usd = 1 / (1 / pools.at[p, "prefill_tokens_per_usd"]
                   + 1 / pools.at[d, "decode_tokens_per_usd"])
        w = 1 / (1 / pools.at[p, "prefill_tokens_per_w"] + 1 / pools.at[d, "decode_tokens_per_w"])
        brute.append((usd, w))
    brute = np.array([b for b in brute if np.isfinite(b).all()])
    best = brute[pareto_mask(-brute)]
    got = front[["tokens_per_usd", "tokens_per_w"]].to_numpy()
    assert {tuple(np.round(x, 12)) for x in got} == {tuple(np.round(x, 12)) for x in best}
    assert len(got) >= 1


def test_kv_transfer_caps_the_prefill_pool():
    # K and V x 80 layers x 8 KV heads x 128 x 2,048 tokens at fp8 = 336 MB per prompt
    # (Llama 3 70B: GQA with 8 KV heads, HF meta-llama/Meta-Llama-3-70B config.json): 8 chips
    # with 1 GB/s of links each send 24 prompts/s, below what they compute.
    kv = 2 * 80 * 8 * 128 * 2048
    assert disaggregated.roles_of(NICHE).kv_bytes_per_prompt == pytest.approx(kv)
    slow = {**COMPUTE, "links_count": 1, "links_gb_s_per_link": 1.0}
    table, params = _rows([COMPUTE, slow])
    rows = table.to_pandas()
    pools = disaggregated.pools(rows, NICHE, params)
    fast, capped = pools["prefill_tokens_per_usd"]
    prefill = rows[(rows["scenario"] == "prefill") & (rows["candidate_id"] == 1)].iloc[0]
    assert prefill["throughput_per_s"] / 2048 > 8e9 / kv  # it computes more than it sends
    assert capped == pytest.approx(8e9 / kv * 512 / prefill["system_cost_usd"])
    assert capped < fast


def test_a_niche_without_the_three_roles_is_refused():
    cfg = _niche_cfg()
    del cfg["scenarios"]["decode"]
    with pytest.raises(ValueError, match="one prefill, one decode and one generate"):
        disaggregated.roles_of(parse_niche(cfg))


def test_report_shows_pairs_against_one_chip_type(tmp_path):
    table, _ = _rows([COMPUTE, BANDWIDTH, _H100], sizes=(4, 8))
    run = tmp_path / "run"
    store = RunStore(run)
    store.prepare()
    store.write_chunk(0, table)
    (run / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create({"niche": _niche_cfg()}), run / ".hydra" / "config.yaml")
    store.write_manifest(dict(status="complete", started="2026-12-02T00:00:00",
                              rows=store.rows()))
    page = write_report([run], tmp_path / "report", chips=[]).read_text()
    assert "Disaggregated serving" in page and "best pair: prefill on candidate" in page
    assert (tmp_path / "report" / "pairs_disaggregated.png").stat().st_size > 10_000
