"""dse rank: a niche's feasible candidates ranked by an output, the Pareto front marked, with
the real chips (conf/chip presets) evaluated on the same scenarios placed in the ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from dse.analysis.query import connect, fetch
from dse.evaluator.model import OUTPUTS
from dse.pipeline.niche import Niche, candidate_scores, parse_niche
from dse.pipeline.pareto import minimised, pareto_mask
from dse.pipeline.rows import evaluate_rows
from dse.pipeline.sweep import SweepJob
from dse.presets import load_chip, preset_names
from dse.serving import SERVE_COLUMNS
from hwspace.derived import headline
from hwspace.spec import flatten_config

__all__ = ["LOWER_IS_BETTER", "HEADLINE", "load_niche", "rank", "reference_chips",
           "direction_of", "preset_scores", "run_params", "candidate_sql", "sweep_top",
           "ranking_view", "scenario_rows"]

# Outputs where less is better; every other numeric output ranks high-first.
LOWER_IS_BETTER = {"ttft_s", "tpot_s", "latency_s", "power_w", "system_power_w",
                   "energy_per_item_j", "die_area_mm2", "die_cost_usd", "unit_cost_usd",
                   "system_cost_usd", "usd_per_million_items", "ttft_p50_s", "ttft_p99_s",
                   "tpot_p50_s", "tpot_p99_s"}
_RANKABLE = ((set(OUTPUTS) | {"system_power_w"} | set(SERVE_COLUMNS))
             - {"fits", "reason", "bound", "regime", "batch_limit"})
# A design's headline figures, after the deciding columns: per chip peak bf16 FLOP/s, memory
# bandwidth and capacity; per system cost and power (a mean over the scenarios, as the score).
HEADLINE = ("chips", "peak_flop_per_s", "mem_bw_bytes_per_s", "mem_capacity_gb", "memory_type",
            "system_cost_usd", "system_power_w")
_SYSTEM_FIGURES = ("system_cost_usd", "system_power_w")


def direction_of(niche: Niche, by: str) -> str:
    """"max" or "min" for ranking by ``by``; ValueError names the allowed columns."""
    if by not in _RANKABLE:
        raise ValueError(f"by={by!r} is not a numeric output; choose from "
                         f"{', '.join(sorted(_RANKABLE))}")
    return dict(niche.objectives).get(by, "min" if by in LOWER_IS_BETTER else "max")


def load_niche(run: Path, name: str) -> Niche:
    """The niche as the run evaluated it (its saved config), not as conf/ says today."""
    saved = run / ".hydra" / "config.yaml"
    if not saved.exists():
        raise ValueError(f"{run}: no .hydra/config.yaml to read the niche from")
    cfg = OmegaConf.to_container(OmegaConf.load(saved), resolve=True)
    if cfg.get("niche", {}).get("name") != name:
        raise ValueError(f"{run}: its niche is {cfg.get('niche', {}).get('name')!r}, not {name!r}")
    return parse_niche(cfg["niche"])


def run_params(runs: list[Path]) -> list[str]:
    con = connect(runs)
    try:
        cols = fetch(con, "DESCRIBE rows")["column_name"].tolist()
    finally:
        con.close()
    first_output = cols.index("fits")
    return [c for c in cols[:first_output]
            if c not in ("candidate_id", "niche", "scenario", "workload", "phase")]


def _geomean(column: str) -> str:
    """SQL: the geometric mean of ``column`` over a candidate's scenarios; NULL where one
    scenario has no positive value (as candidate_scores: no mean of the scenarios it runs)."""
    return (f"CASE WHEN count(*) FILTER (WHERE {column} > 0) = count(*) THEN "
            f"exp(avg(ln({column})) FILTER (WHERE {column} > 0)) END AS {column}")


def candidate_sql(niche: Niche, columns: list[str], params: list[str],
                  feasible_only: bool) -> str:
    """One row per candidate of the niche (``$niche``): the geometric mean of each of
    ``columns``, ``feasible`` (every scenario row feasible), the dominant bound (most
    scenarios; ties to the first name) and its parameters, in (run, id) order; the id is
    ``<run>:<candidate_id>``."""
    means = ", ".join(_geomean(c) for c in dict.fromkeys(columns))
    firsts = "".join(f", any_value({p}) AS {p}" for p in params)
    having = "HAVING bool_and(feasible)" if feasible_only else ""
    return f"""
        WITH r AS (SELECT * FROM rows WHERE niche = $niche),
        c AS (SELECT run, candidate_id, {means}, bool_and(feasible) AS feasible{firsts}
              FROM r GROUP BY run, candidate_id {having}),
        b AS (SELECT run, candidate_id, bound::VARCHAR AS bound, count(*) AS n
              FROM r SEMI JOIN c USING (run, candidate_id) GROUP BY ALL),
        m AS (SELECT run, candidate_id, first(bound ORDER BY n DESC, bound) AS bound
              FROM b GROUP BY ALL)
        SELECT c.run || ':' || c.candidate_id AS candidate_id, c.* EXCLUDE (run, candidate_id),
               m.bound
        FROM c JOIN m USING (run, candidate_id) ORDER BY c.run, c.candidate_id"""


def rank(runs: list[Path], niche: Niche, by: str, top: int) -> pd.DataFrame:
    """The ``top`` feasible candidates of ``niche`` by ``by`` (geometric mean over its
    scenarios), with ``pareto`` (member of the feasible front of the niche's objectives),
    the dominant ``bound`` over its scenarios and the candidate's parameters.

    NOTE: aggregated in DuckDB, one pass over the rows; a pandas groupby with a Python
    ``agg(lambda)`` per candidate took ~25 s on 200,000 candidates.
    """
    direction = direction_of(niche, by)
    params = run_params(runs)
    con = connect(runs)
    try:
        if not fetch(con, "SELECT count(*) AS n FROM rows WHERE niche = ?", [niche.name])["n"][0]:
            raise ValueError(f"no rows of niche {niche.name!r} in {', '.join(map(str, runs))}")
        sql = candidate_sql(niche, [by, *[o for o, _ in niche.objectives], *_SYSTEM_FIGURES],
                            params, True)
        scores = fetch(con, sql, {"niche": niche.name})
    finally:
        con.close()
    scores = scores.set_index("candidate_id")
    objectives = [c for c, _ in niche.objectives]
    f = minimised(scores[objectives].to_numpy(float), [d for _, d in niche.objectives])
    ok = np.isfinite(f).all(axis=1)
    scores = scores[ok].assign(pareto=pareto_mask(f[ok]))
    out = scores[[by, *[o for o in objectives if o != by], "pareto", "bound",
                  *[c for c in _SYSTEM_FIGURES if c != by], *params]]
    out = out.sort_values(by, ascending=direction == "min", kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.head(top) if top else out


def preset_scores(niche: Niche, chips_per_system: list[int],
                  extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every conf/chip preset on the niche's scenarios at each system size: one row per
    (preset, chips) with the objectives (and ``extra``), ``feasible`` and ``violation``.
    Every (preset, size) is one candidate of a single vectorised evaluation."""
    names = preset_names("chip")
    flats = [{k: v for k, v in flatten_config(load_chip(n)).items() if k != "name"}
             for n in names]
    sizes = len(chips_per_system)
    params = {k: np.repeat(np.asarray([f[k] for f in flats]), sizes) for k in flats[0]}
    params["chips"] = np.tile(np.asarray(chips_per_system), len(names))
    table = evaluate_rows(params, np.arange(len(names) * sizes), [niche],
                          simulate_all=True).to_pandas()
    scores = candidate_scores(table, niche, extra=extra)
    misses = table[~table["feasible"]].groupby("candidate_id").first()
    scores["violation"] = (misses["scenario"].astype(str) + ": "
                           + misses["violation"].astype(str)).reindex(scores.index)
    return scores.assign(chip=np.repeat(names, sizes),
                         chips=params["chips"]).reset_index(drop=True)


def reference_chips(niche: Niche, by: str, chips_per_system: list[int],
                    ranked: pd.DataFrame) -> pd.DataFrame:
    """Each preset's best feasible ``by`` over the run's system sizes and the rank it would
    take among ``ranked`` (all feasible candidates, ranked)."""
    direction = direction_of(niche, by)
    scores = preset_scores(niche, chips_per_system, extra=(by,))
    recs = []
    for name, group in scores.groupby("chip", sort=True):
        ok = group[group["feasible"]].dropna(subset=[by])
        if ok.empty:
            recs.append(dict(chip=name, chips=None, value=np.nan, rank=None,
                             violation=group["violation"].iloc[0]))
            continue
        best = ok.loc[ok[by].idxmin() if direction == "min" else ok[by].idxmax()]
        better = (ranked[by] < best[by]) if direction == "min" else (ranked[by] > best[by])
        recs.append(dict(chip=name, chips=int(best["chips"]), value=best[by],
                         rank=int(better.sum()) + 1, violation=""))
    return pd.DataFrame(recs).sort_values("rank", na_position="last")


def sweep_top(job: SweepJob, results_dir: str | Path, n: int) -> dict[str, Any]:
    """Per niche: the ``n`` best feasible candidates by its first objective (rank's columns,
    Pareto front marked), how many candidates were feasible, and the run's parameters."""
    run = [Path(results_dir).parent]
    params = run_params(run)
    out = {}
    for niche in job.niches:
        ranked = rank(run, niche, niche.objectives[0][0], top=0)
        out[niche.name] = dict(top=ranked.head(n), feasible=len(ranked),
                               candidates=job.total, params=params)
    return out


def ranking_view(ranked: pd.DataFrame, niche: Niche, by: str,
                 params: list[str]) -> tuple[pd.DataFrame, int]:
    """(table, deciding columns): ``ranked`` (rank's frame) as shown, the deciding columns
    first (id, rank, front, ``by`` and the niche's objectives), then the bound and the design's
    HEADLINE figures, then its other parameters. The id is the candidate id alone (what
    ``dse explain candidate=`` takes)."""
    frame = ranked.reset_index()
    cols = {p: frame[p].to_numpy() for p in params if p != "chips"}
    figures = headline(cols)
    frame = frame.assign(
        candidate_id=frame["candidate_id"].astype(str).str.rsplit(":", n=1).str[-1],
        pareto=frame["pareto"].map({True: "*", False: ""}),
        peak_flop_per_s=figures["peak_tflops"] * 1e12,
        mem_bw_bytes_per_s=figures["mem_bw_tb_s"] * 1e12,
        mem_capacity_gb=figures["mem_capacity_gb"])
    scores = list(dict.fromkeys([by, *[o for o, _ in niche.objectives]]))
    deciding = ["candidate_id", "rank", "pareto", *scores]
    shown = [*deciding, "bound", *[c for c in HEADLINE if c in frame and c not in scores]]
    rest = [p for p in params if p not in shown]
    return frame[shown + rest], len(deciding)


def scenario_rows(runs: list[Path], niche: Niche, ids: list[str]) -> pd.DataFrame:
    """The rows of candidates ``ids`` (``<run>:<candidate_id>``, in this order) on each of
    the niche's scenarios: the objectives, throughput, latencies, batch, bound and whether it
    fits the niche (its violation when not)."""
    outputs = list(dict.fromkeys([*[o for o, _ in niche.objectives], "throughput_per_s",
                                  "ttft_s", "tpot_s", "latency_s", "batch"]))
    con = connect(runs)
    try:
        frame = fetch(con, f"""
            SELECT run || ':' || candidate_id AS candidate_id, scenario::VARCHAR AS scenario,
                   {", ".join(outputs)}, bound::VARCHAR AS bound, feasible,
                   violation::VARCHAR AS violation
            FROM rows WHERE niche = $niche AND list_contains($ids, run || ':' || candidate_id)
            """, {"niche": niche.name, "ids": ids})
    finally:
        con.close()
    order = {cid: k for k, cid in enumerate(ids)}
    scenario_order = {ns.name: k for k, ns in enumerate(niche.scenarios)}
    frame = frame.assign(_c=frame["candidate_id"].map(order),
                         _s=frame["scenario"].map(scenario_order))
    frame = frame.sort_values(["_c", "_s"], kind="stable").drop(columns=["_c", "_s"])
    fit = frame["violation"].where(~frame["feasible"].astype(bool), "ok")
    frame = frame.assign(feasible=fit,
                         candidate_id=frame["candidate_id"].str.rsplit(":", n=1).str[-1])
    scores = [o for o, _ in niche.objectives]
    first = ["candidate_id", "scenario", *scores, "feasible"]
    rest = [c for c in outputs if c not in scores] + ["bound"]
    return frame[first + rest].reset_index(drop=True)
