"""dse report: figures (PNG) and one self-contained HTML page for one or more runs.

Per niche: the Pareto front of its two objectives with the real chips overlaid, (for sweeps)
how much each design parameter moves each objective, and how sure the ranking of its best
candidates is under the calibration spread (dse.analysis.robust). Per chosen chip: a roofline
with the operators of LLM decode, LLM prefill and a CNN placed on it (the article's picture). When
the runs hold both LLM niches: their fronts side by side on the design quantities, with the
article's claim (a local LLM wants memory capacity and bandwidth more than compute) checked.
A disaggregated niche also gets its pair front against one chip type colocated.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dse.analysis import disaggregated
from dse.analysis.plots import plt, save
from dse.analysis.query import connect, fetch, run_query
from dse.analysis.ranking import candidate_sql, load_niche, preset_scores, run_params
from dse.analysis.robust import SPREAD, load_spread, robust_ranks
from dse.api import explain
from dse.pipeline.niche import Niche
from dse.pipeline.pareto import minimised, pareto_mask
from hwspace.derived import derive, headline
from hwspace.spec import from_columns, nest_config

__all__ = ["NicheData", "load", "write_report"]

_LABELS = {"throughput_per_usd": "throughput per USD ({item}/s per USD of system cost)",
           "throughput_per_w": "throughput per W ({item}/s per W)",
           "usd_per_million_items": "USD per million {item} (5-year TCO)",
           "throughput_per_s": "throughput ({item}/s)"}
_QUANTITIES = {"bytes_per_flop": "memory bandwidth per FLOP/s (bytes/FLOP)",
               "mem_capacity_gb": "memory capacity (GB)", "sram_mb": "SRAM (MB)",
               "macs": "MAC units"}
# The article's picture: a matrix-vector decode, a matrix-matrix prefill, a CNN.
_ROOFLINE_CASES = [("LLM decode (Llama-3-8B, batch 1)", "llama3-8b",
                    dict(phase="decode", batch=1, context_len=1024), "o"),
                   ("LLM prefill (Llama-3-8B, 2,048 tokens)", "llama3-8b",
                    dict(phase="prefill", batch=1, prompt_len=2048), "^"),
                   ("CNN (ResNet-50, batch 256, int8)", "resnet50",
                    dict(batch=256, weights="int8", activations="int8"), "s")]


@dataclass
class NicheData:
    niche: Niche
    kind: str  # sweep | search
    candidates: pd.DataFrame  # candidate scores + parameters, feasible and not
    params: list[str]

    @property
    def feasible(self) -> pd.DataFrame:
        f = self.candidates[self.candidates["feasible"]]
        cols = [c for c, _ in self.niche.objectives]
        return f[np.isfinite(f[cols].to_numpy(float)).all(axis=1)]

    @property
    def front(self) -> pd.DataFrame:
        f = self.feasible
        cols = [c for c, _ in self.niche.objectives]
        mask = pareto_mask(minimised(f[cols].to_numpy(float),
                                     [d for _, d in self.niche.objectives]))
        return f[mask].sort_values(cols[0])

    @property
    def item(self) -> str:
        return "images" if self.niche.scenarios[0].plan.family == "cnn" else (
            "samples" if self.niche.scenarios[0].plan.family == "encoder" else "tokens")


def load(runs: list[Path]) -> list[NicheData]:
    """Candidate-level data of every niche found in ``runs``."""
    if not runs:
        raise ValueError("no runs to report on")
    found = run_query("SELECT DISTINCT niche, run FROM rows", runs)
    out = []
    for name, group in found.groupby("niche"):
        mine = [Path(r) for r in group["run"].unique()]
        niche = load_niche(mine[0], name)
        params = run_params(mine)
        con = connect(mine)
        try:  # aggregated in DuckDB: a pandas groupby of 3,000,000 rows took most of 30 s
            sql = candidate_sql(niche, [c for c, _ in niche.objectives], params, False)
            scores = fetch(con, sql, {"niche": name}).set_index("candidate_id")
        finally:
            con.close()
        kind = "search" if any((Path(r) / "pareto.parquet").exists() for r in mine) else "sweep"
        out.append(NicheData(niche, kind, scores.drop(columns="bound"), params))
    return out


def _label(column: str, item: str) -> str:
    return _LABELS.get(column, column).format(item=item)


def best_size(refs: pd.DataFrame, niche) -> pd.DataFrame:
    """Each chip of ``refs`` (ranking.preset_scores) at its best system size by the niche's
    first objective; sizes it cannot run (NaN) are never picked over one it can."""
    column, direction = niche.objectives[0]
    ordered = refs.sort_values(column, ascending=direction == "max", na_position="first")
    return ordered.groupby("chip").tail(1)


def pareto_figure(data: NicheData, refs: pd.DataFrame, path: Path) -> Path:
    (x, _), (y, _) = data.niche.objectives
    fig, ax = plt.subplots(figsize=(8, 6))
    cloud = data.feasible
    if len(cloud) > 20000:
        cloud = cloud.sample(20000, random_state=0)
    ax.scatter(cloud[x], cloud[y], s=6, color="0.75", alpha=0.5,
               label=f"feasible candidates ({len(data.feasible):,})")
    front = data.front
    ax.plot(front[x], front[y], "-o", color="tab:red", ms=4, lw=1.5,
            label=f"Pareto front ({len(front)})")
    for ok, style in ((True, dict(color="black", marker="D")),
                      (False, dict(facecolors="none", edgecolors="black", marker="D"))):
        part = refs[(refs["feasible"] == ok) & refs[x].gt(0) & refs[y].gt(0)]
        if len(part):
            ax.scatter(part[x], part[y], s=40, zorder=5,
                       label="real chips (" + ("meet" if ok else "miss") + " the niche's "
                       "constraints)", **style)
        for _, r in part.iterrows():
            ax.annotate(r["chip"], (r[x], r[y]), fontsize=8, xytext=(4, 3),
                        textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel=_label(x, data.item),
           ylabel=_label(y, data.item),
           title=f"{data.niche.name}: Pareto front of {_label(x, data.item).split(' (')[0]} "
                 f"and {_label(y, data.item).split(' (')[0]}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save(fig, path)


def roofline_figure(chip, name: str, path: Path) -> Path:
    """The chip's roofline (bf16 peak, memory bandwidth) with every operator of each case at
    (its off-chip intensity, its achieved FLOP/s); operators served from SRAM alone sit at
    the right edge."""
    flat = _flat(chip)
    chips = from_columns({k: v for k, v in flat.items() if k != "name"})
    der = derive(chips)
    peak, bw = der.peak_flop_per_s_cls[0, 0], chips.mem_bw_bytes_per_s[0]
    low = der.peak_flop_per_s_cls[0].max()
    fig, ax = plt.subplots(figsize=(8, 6))
    x = np.logspace(-2, 4, 200)
    if bw > 0:
        ax.plot(x, np.minimum(peak, bw * x), "k-", lw=2, label="roofline (bf16 peak, memory)")
        ax.axvline(peak / bw, color="k", ls=":", lw=1)
        ax.annotate(f"ridge {peak / bw:.0f} FLOP/B", (peak / bw, peak), fontsize=8,
                    xytext=(5, -15), textcoords="offset points")
    else:
        ax.axhline(peak, color="k", lw=2, label="bf16 peak (no off-chip memory)")
    if low > peak:
        ax.plot(x, np.minimum(low, bw * x) if bw > 0 else np.full_like(x, low), "k--", lw=1,
                label=f"low-precision peak ({low / peak:.0f}x bf16)")
    for label, workload, scenario, marker in _ROOFLINE_CASES:
        _, rows = explain(chip, workload, **scenario)
        ops = pd.DataFrame(rows)
        ops = ops[(ops["flop"] > 0) & (ops["time_s"] > 0)]
        achieved = ops["flop"] * ops["count"] / ops["time_s"]
        intensity = np.where(np.isfinite(ops["intensity"]), ops["intensity"], 1e4)
        ax.scatter(intensity, achieved, marker=marker, s=40, alpha=0.8, label=label)
    ax.set(xscale="log", yscale="log", xlim=(1e-2, 2e4),
           xlabel="arithmetic intensity (FLOP per off-chip byte; right edge: SRAM only)",
           ylabel="achieved FLOP/s per chip", title=f"roofline: {flat['name']} ({name})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, path)


def _flat(chip) -> dict:
    from dse.presets import load_chip
    from hwspace.spec import flatten_config

    return flatten_config(load_chip(chip) if isinstance(chip, str) else chip)


def niches_figure(fronts: dict[str, pd.DataFrame], path: Path) -> Path:
    fig, axes = plt.subplots(1, len(_QUANTITIES), figsize=(4 * len(_QUANTITIES), 5))
    names = list(fronts)
    for ax, (column, label) in zip(axes, _QUANTITIES.items(), strict=True):
        values = [fronts[n][column].to_numpy(float) for n in names]
        ax.boxplot(values, tick_labels=names)
        ax.set(yscale="log", title=label)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.suptitle("design quantities of each niche's Pareto front")
    return save(fig, path)


def _effect(x: pd.Series, y: pd.Series) -> float:
    """Spearman rho for a numeric parameter; the correlation ratio eta (0-1, unsigned) of
    y's ranks across the categories of a categorical one."""
    ry = y.rank()
    if x.dtype.kind in "fiu":
        return float(x.rank().corr(ry)) if x.nunique() > 1 else 0.0
    groups = ry.groupby(x.astype(str))
    between = (groups.count() * (groups.mean() - ry.mean()) ** 2).sum()
    total = ((ry - ry.mean()) ** 2).sum()
    return float(np.sqrt(between / total)) if total > 0 else 0.0


def sensitivity_figure(data: NicheData, path: Path) -> Path | None:
    f = data.feasible
    varying = [p for p in data.params if f[p].nunique() > 1]
    if len(f) < 10 or not varying:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.4 * len(varying) + 2), sharey=True)
    for ax, (column, _) in zip(axes, data.niche.objectives, strict=True):
        effects = [_effect(f[p], f[column].astype(float)) for p in varying]
        ax.barh(varying, effects, color=["tab:blue" if e >= 0 else "tab:orange"
                                         for e in effects])
        ax.axvline(0, color="k", lw=0.8)
        ax.set(xlim=(-1, 1), title=_label(column, data.item).split(" (")[0],
               xlabel="Spearman rho (categorical: correlation ratio)")
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"{data.niche.name}: how each design parameter moves each objective "
                 f"({len(f):,} feasible candidates)")
    return save(fig, path)


def robust_figure(table: pd.DataFrame, name: str, by: str, k: int, path: Path) -> Path:
    """Each re-ranked candidate's rank interval over the factor draws, at its nominal rank,
    coloured by its probability of staying in the top ``k``."""
    fig, ax = plt.subplots(figsize=(8, 5))
    y = table["rank"].to_numpy()
    ax.hlines(y, table["rank_low"], table["rank_high"], color="grey", lw=2)
    dots = ax.scatter(table["rank"], y, c=table["p_top_k"], cmap="viridis", vmin=0, vmax=1,
                      s=60, zorder=3)
    ax.axvline(k + 0.5, color="tab:red", ls="--", lw=1, label=f"top {k}")
    ax.set(xlabel=f"rank by {by} (line: over the leave-one-chip-out factor fits)",
           ylabel="rank with the default factors", title=f"{name}: how sure the ranking is")
    ax.invert_yaxis()
    fig.colorbar(dots, ax=ax, label=f"P(top {k})")
    ax.legend(loc="upper right")
    return save(fig, path)


def _robust_section(data: NicheData, out_dir: Path, top: int = 20, k: int = 5) -> str:
    """The niche's best feasible candidates by its first objective, re-ranked under the
    calibration spread; empty where no spread file exists."""
    if not SPREAD.exists() or data.feasible.empty:
        return ""
    by, direction = data.niche.objectives[0]
    ranked = data.feasible.sort_values(by, ascending=direction == "min", kind="stable")
    table = robust_ranks(ranked, data.niche, by, data.params, load_spread(), top=top, k=k)
    png = robust_figure(table, data.niche.name, by, k, out_dir / f"robust_{data.niche.name}.png")
    return _img(png, f"{data.niche.name}: rank intervals of the best {len(table)} candidates "
                     f"under the leave-one-chip-out factor fits")


def pairs_figure(comp: disaggregated.Comparison, name: str, path: Path) -> Path:
    """The pair front against the colocated front, on generated tokens per $ and per W."""
    fig, ax = plt.subplots(figsize=(8, 6))
    single = comp.colocated.sort_values("colocated_tokens_per_usd")
    ax.plot(single["colocated_tokens_per_usd"], single["colocated_tokens_per_w"], "-s",
            color="tab:blue", ms=4, label=f"one chip type, colocated ({len(single)})")
    pairs = comp.pairs.sort_values("tokens_per_usd")
    ax.plot(pairs["tokens_per_usd"], pairs["tokens_per_w"], "-o", color="tab:red", ms=4,
            label=f"prefill pool + decode pool ({len(pairs)})")
    ax.set(xscale="log", yscale="log", xlabel="generated tokens/s per USD of system cost",
           ylabel="generated tokens/s per W",
           title=f"{name}: disaggregated pairs vs colocated, same SLOs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def _disaggregated_section(data: NicheData, runs: list[Path], out_dir: Path) -> str:
    """Whether a pair of chip types beats one on tokens per $, for a disaggregated niche."""
    if not disaggregated.is_disaggregated(data.niche):
        return ""
    cols = ", ".join(["candidate_id", "scenario", "feasible", "throughput_per_s",
                      "system_cost_usd", "system_power_w", *data.params])
    rows = run_query(f"SELECT {cols} FROM rows WHERE niche = '{data.niche.name}'", runs)
    comp = disaggregated.compare(rows, data.niche, data.params)
    parts = [f"<h3>Disaggregated serving</h3><p>{html.escape(comp.summary())}</p>"]
    if not comp.pairs.empty:
        png = pairs_figure(comp, data.niche.name, out_dir / f"pairs_{data.niche.name}.png")
        parts += [_img(png, f"{data.niche.name}: pair front vs colocated front"),
                  _table(comp.pairs.head(15))]
    return "\n".join(parts)


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{path.name}">'
            f'<figcaption>{html.escape(caption)} (<a href="{path.name}">{path.name}</a>)'
            f"</figcaption></figure>")


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)


def write_report(runs: list[Path], out_dir: Path, chips: list[str]) -> Path:
    """Write the PNGs and report.html into ``out_dir``; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>accel-dse report</h1><p>runs: {html.escape(', '.join(map(str, runs)))}</p>"]
    fronts, chosen = {}, [(c, c) for c in chips]
    for data in load(runs):
        name = data.niche.name
        sizes = sorted(data.candidates["chips"].astype(int).unique()) \
            if "chips" in data.candidates else [1]
        refs = preset_scores(data.niche, sizes)
        cols = [c for c, _ in data.niche.objectives]
        png = pareto_figure(data, best_size(refs, data.niche), out_dir / f"pareto_{name}.png")
        front = data.front
        parts.append(f"<h2>{name}</h2><p>{len(data.candidates):,} candidates, "
                     f"{len(data.feasible):,} feasible, {len(front)} on the Pareto front "
                     f"({data.kind}).</p>")
        parts.append(_img(png, f"{name}: feasible candidates, Pareto front, real chips"))
        if len(front):
            parts.append(_table(front[cols + data.params].head(15)))
            best = front.sort_values(cols[0], ascending=data.niche.objectives[0][1] == "min")
            cand = best.iloc[0]
            chip = {**nest_config({p: cand[p] for p in data.params if p != "chips"}),
                    "name": f"best {name} design"}
            chosen.append((chip, f"best {name} design ({cols[0]})"))
            fronts[name] = front.assign(**headline({p: front[p] for p in data.params}))
        parts.append(_robust_section(data, out_dir))
        parts.append(_disaggregated_section(data, runs, out_dir))
        sens = sensitivity_figure(data, out_dir / f"sensitivity_{name}.png")
        if sens is not None and data.kind == "sweep":
            parts.append(_img(sens, f"{name}: sensitivity of each objective to each parameter"))
    parts.append("<h2>Rooflines</h2><p>Each operator at its arithmetic intensity and achieved "
                 "FLOP/s: decode is a matrix-vector product far left of the ridge, prefill and "
                 "CNNs are matrix-matrix products near or right of it.</p>")
    for k, (chip, label) in enumerate(chosen):
        parts.append(_img(roofline_figure(chip, label, out_dir / f"roofline_{k}.png"), label))
    parts.append(_claim(fronts, out_dir))
    page = out_dir / "report.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'><title>accel-dse report"
                    "</title><style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
                    "img{max-width:100%}table{border-collapse:collapse;font-size:12px}"
                    "td,th{padding:2px 6px;border-bottom:1px solid #ddd}</style></head><body>"
                    + "\n".join(parts) + "</body></html>")
    return page


def _claim(fronts: dict[str, pd.DataFrame], out_dir: Path) -> str:
    llm = {n: f for n, f in fronts.items() if n in ("local_llm", "hyperscale")}
    if len(llm) < 2:
        return ("<h2>Local LLM vs hyperscale</h2><p>Needs runs of both local_llm and "
                "hyperscale (e.g. <code>dse search niche=local_llm,hyperscale --multirun</code>)."
                "</p>")
    png = niches_figure(llm, out_dir / "niches.png")
    local, hyper = llm["local_llm"], llm["hyperscale"]
    ratio = local["bytes_per_flop"].median() / hyper["bytes_per_flop"].median()
    verdict = "support" if ratio > 1 else "do not support"
    return (f"<h2>Local LLM vs hyperscale</h2><p><b>The article's claim:</b> a local LLM wants "
            f"large memory capacity and high bandwidth with modest compute. <b>The data "
            f"{verdict} it:</b> the local_llm front has a median of "
            f"{local['bytes_per_flop'].median():.3g} bytes of memory bandwidth per FLOP/s, "
            f"{ratio:.1f}x hyperscale's {hyper['bytes_per_flop'].median():.3g}, with "
            f"{local['mem_capacity_gb'].median():.0f} GB of memory per chip and "
            f"{local['peak_tflops'].median():.0f} TFLOP/s vs hyperscale's "
            f"{hyper['peak_tflops'].median():.0f} TFLOP/s.</p>"
            + _img(png, "design quantities of the two LLM niches' Pareto fronts"))
