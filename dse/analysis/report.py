"""dse report: figures (PNG), report.html and an interactive Pareto page for one or more runs.

Per niche: the Pareto front of its two objectives with the real chips overlaid (named beside
the axes, with leader lines), how much each design parameter moves each objective, and how
sure the ranking of its best candidates is under the calibration spread (dse.analysis.robust;
skipped for simulated serving niches). Per chosen chip and per niche's best design: a roofline
with the operators of the niches' own workloads placed on it (the article's picture). When
the runs hold both LLM niches: their fronts side by side on the design quantities, with the
article's claim (a local LLM wants memory capacity and bandwidth more than compute) checked.
A disaggregated niche also gets its pair front against one chip type colocated.
interactive.html (dse.analysis.interactive) holds the Pareto plots with hover and legend."""

from __future__ import annotations

import base64
import html
from itertools import cycle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from dse.analysis import disaggregated
from dse.analysis.interactive import pareto_plotly, write_interactive
from dse.analysis.plots import plt, save
from dse.analysis.query import connect, fetch, run_query
from dse.analysis.ranking import candidate_sql, load_niche, preset_scores, run_params
from dse.analysis.robust import SPREAD, load_spread, robust_ranks
from dse.evaluator import model
from dse.pipeline.niche import Niche, NicheScenario
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
_MARKERS = "o^sDvP*Xhp<>"


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
    shown = refs[refs[x].gt(0) & refs[y].gt(0)]
    # tall enough for one line per chip label beside the axes
    fig, ax = plt.subplots(figsize=(8, max(6.0, 0.15 * len(shown) + 1.5)))
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
        part = shown[shown["feasible"] == ok]
        if len(part):
            ax.scatter(part[x], part[y], s=40, zorder=5,
                       label="real chips (" + ("meet" if ok else "miss") + " the niche's "
                       "constraints)", **style)
    ax.set(xscale="log", yscale="log", xlabel=_label(x, data.item),
           ylabel=_label(y, data.item),
           title=f"{data.niche.name}: Pareto front of {_label(x, data.item).split(' (')[0]} "
                 f"and {_label(y, data.item).split(' (')[0]}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    label_chips(ax, shown, x, y)
    return save(fig, path)


def label_chips(ax, refs: pd.DataFrame, x: str, y: str) -> list:
    """Each chip's name in a column right of the axes, in the order of its y, with a leader
    line to its point: names never overlap however close the points sit, and each sits as
    near its point's height as the names above and below it allow (near-level lines cross
    less)."""
    if refs.empty:
        return []
    ordered = refs.sort_values(y)
    ax.autoscale_view()  # the data limits the points will be drawn in
    to_axes = ax.transAxes.inverted()
    heights = [to_axes.transform(ax.transData.transform((r[x], r[y])))[1]
               for _, r in ordered.iterrows()]
    slots = _spread(np.clip(heights, 0.02, 0.98), min(0.045, 0.96 / max(len(heights), 1)))
    return [ax.annotate(r["chip"], (r[x], r[y]), xytext=(1.03, slot),
                        textcoords="axes fraction", fontsize=8, va="center",
                        arrowprops=dict(arrowstyle="-", color="0.4", lw=0.6))
            for slot, (_, r) in zip(slots, ordered.iterrows(), strict=True)]


def _spread(heights: np.ndarray, gap: float) -> np.ndarray:
    """Ascending ``heights`` (axes fraction) moved apart to at least ``gap``, inside
    [0.02, 0.98]: pushed up from the bottom, then down from the top."""
    out = np.array(heights, float)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    out[-1] = min(out[-1], 0.98)
    for i in range(len(out) - 2, -1, -1):
        out[i] = min(out[i], out[i + 1] - gap)
    return out


def roofline_figure(chip, name: str, cases: list[NicheScenario], path: Path) -> Path:
    """The chip's roofline (bf16 peak, memory bandwidth) with every operator of each pass of
    each niche scenario of ``cases`` at (its off-chip intensity, its achieved FLOP/s);
    operators served from SRAM alone sit at the right edge."""
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
    points = [p for ns in cases for p in _operator_points(chips, ns)]
    for (label, intensity, achieved), marker in zip(points, cycle(_MARKERS)):
        ax.scatter(intensity, achieved, marker=marker, s=40, alpha=0.8, label=label)
    ax.set(xscale="log", yscale="log", xlim=(1e-2, 2e4),
           xlabel="arithmetic intensity (FLOP per off-chip byte; right edge: SRAM only)",
           ylabel="achieved FLOP/s per chip", title=f"roofline: {flat['name']} ({name})")
    ax.grid(True, which="both", alpha=0.3)
    # beside the axes: SRAM-only operators sit at the lower right edge
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return save(fig, path)


def _operator_points(chips, ns: NicheScenario) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, intensity, achieved FLOP/s) of each pass of the niche scenario ``ns`` on one
    chip of ``chips`` (a system of one: a roofline is per chip)."""
    _, detail = model.explain(chips, ns.plan, ns.scenario, ns.system(1))
    out = []
    for p in ns.plan.passes:
        d = detail[p.name]  # one run of the pass: flop per instance, time of all instances
        keep = (d["flop"] > 0) & (d["time_s"] > 0)
        mem = d["mem_bytes"][keep]
        intensity = np.where(mem > 0, d["flop"][keep] / np.where(mem > 0, mem, 1), 1e4)
        achieved = d["flop"][keep] * p.ops.count[keep] / d["time_s"][keep]
        out.append((f"{ns.name}: {p.name} ({ns.workload})", intensity, achieved))
    return out


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
    for axis in (ax.xaxis, ax.yaxis):  # ranks are whole numbers
        axis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(dots, ax=ax, label=f"P(top {k})")
    ax.legend(loc="upper right")
    return save(fig, path)


def _robust_section(data: NicheData, out_dir: Path, top: int = 20, k: int = 5) -> str:
    """The niche's best feasible candidates by its first objective, re-ranked under the
    calibration spread; empty where no spread file exists."""
    if not SPREAD.exists() or data.feasible.empty:
        return ""
    if any(ns.serve is not None for ns in data.niche.scenarios):
        # Each draw re-simulates every candidate's requests: 349 s for the serving niche.
        return (f"<p>Robust ranking skipped for {data.niche.name}: its phase-serve scenarios "
                f"are simulated, and {len(load_spread())} factor draws x {top} candidates "
                f"take minutes.</p>")
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
    return ('<div class="scroll">'
            + frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
            + "</div>")


_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
        ".scroll{overflow-x:auto;max-width:100%}"  # wide tables scroll inside the page
        "table{border-collapse:collapse;font-size:12px}"
        "td,th{padding:2px 6px;border-bottom:1px solid #ddd;white-space:nowrap}")


@dataclass
class _Section:
    html: str
    plotly: tuple[str, object]  # (heading, plotly figure) of the interactive page
    best: tuple[dict, str] | None  # (chip config, label) of the roofline of its best design
    front: pd.DataFrame | None  # the front with its headline figures, for the claim


def _niche_section(data: NicheData, runs: list[Path], out_dir: Path) -> _Section:
    """The niche's figures and tables: Pareto front (PNG and interactive), robust ranking,
    disaggregated pairs, sensitivity."""
    name, cols = data.niche.name, [c for c, _ in data.niche.objectives]
    sizes = sorted(data.candidates["chips"].astype(int).unique()) \
        if "chips" in data.candidates else [1]
    refs = best_size(preset_scores(data.niche, sizes), data.niche)
    png = pareto_figure(data, refs, out_dir / f"pareto_{name}.png")
    front = data.front
    front = front.assign(**headline({p: front[p] for p in data.params}))
    parts = [f"<h2>{name}</h2><p>{len(data.candidates):,} candidates, "
             f"{len(data.feasible):,} feasible, {len(front)} on the Pareto front "
             f"({data.kind}; <a href='interactive.html'>interactive plot</a>).</p>",
             _img(png, f"{name}: feasible candidates, Pareto front, real chips")]
    best = None
    if len(front):
        parts.append(_table(front[cols + data.params].head(15).reset_index()))
        top = front.sort_values(cols[0], ascending=data.niche.objectives[0][1] == "min").iloc[0]
        best = ({**nest_config({p: top[p] for p in data.params if p != "chips"}),
                 "name": f"best {name} design"}, f"best {name} design ({cols[0]})")
    parts += [_robust_section(data, out_dir), _disaggregated_section(data, runs, out_dir)]
    sens = sensitivity_figure(data, out_dir / f"sensitivity_{name}.png")
    if sens is not None:
        parts.append(_img(sens, f"{name}: sensitivity of each objective to each parameter"))
    return _Section("\n".join(parts), (name, _plotly(data, front, refs)), best,
                    front if len(front) else None)


def _plotly(data: NicheData, front: pd.DataFrame, refs: pd.DataFrame):
    """The niche's Pareto plot for the interactive page."""
    (x, _), (y, _) = data.niche.objectives
    feasible = data.feasible
    feasible = feasible.assign(**headline({p: feasible[p] for p in data.params}))
    labels = (_label(x, data.item), _label(y, data.item))
    return pareto_plotly(feasible, front, refs, (x, y), labels,
                         f"{data.niche.name}: Pareto front and real chips")


def write_report(runs: list[Path], out_dir: Path, chips: list[str]) -> Path:
    """Write the PNGs, report.html and interactive.html into ``out_dir``; returns the
    report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    niches = load(runs)
    sections = [_niche_section(data, runs, out_dir) for data in niches]
    cases = [ns for data in niches for ns in data.niche.scenarios]
    parts = [f"<h1>accel-dse report</h1><p>runs: {html.escape(', '.join(map(str, runs)))}"
             f"</p><p><a href='interactive.html'>Interactive Pareto plots</a> (hover for "
             f"each point's id, design and objectives).</p>", *(s.html for s in sections),
             "<h2>Rooflines</h2><p>Each operator of the niches' own workloads at its "
             "arithmetic intensity and achieved FLOP/s: decode is a matrix-vector product far "
             "left of the ridge, prefill and CNNs are matrix-matrix products near or right of "
             "it.</p>"]
    rooflines = [(c, c, cases) for c in chips] + [
        (*s.best, list(d.niche.scenarios)) for s, d in zip(sections, niches, strict=True)
        if s.best is not None]
    for k, (chip, label, own) in enumerate(rooflines):
        png = roofline_figure(chip, label, own, out_dir / f"roofline_{k}.png")
        parts.append(_img(png, label))
    parts.append(_claim({d.niche.name: s.front for s, d in zip(sections, niches, strict=True)
                         if s.front is not None}, out_dir))
    write_interactive([s.plotly for s in sections], out_dir / "interactive.html")
    page = out_dir / "report.html"
    page.write_text(_page(parts), encoding="utf-8")
    return page


def _page(parts: list[str]) -> str:
    """The report's HTML page around its sections."""
    return ("<!doctype html><html><head><meta charset='utf-8'><title>accel-dse report</title>"
            f"<style>{_CSS}</style></head><body>" + "\n".join(parts) + "</body></html>")


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
