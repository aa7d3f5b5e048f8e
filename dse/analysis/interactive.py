"""The Pareto plots of dse report as one interactive HTML page (plotly, as Optuna's own
visualisation): hovering a point shows its id, design and both objectives; clicking a legend
entry hides its group, double-clicking isolates it. plotly.js is written once beside the page
(no CDN: the report must open on a machine with no network)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

__all__ = ["PLOTLY_JS", "pareto_plotly", "write_interactive"]

PLOTLY_JS = "plotly.min.js"
_CLOUD_POINTS = 5000  # SVG points; more makes the page slow to hover
# Headline figures shown on hover, when the frame has them (hwspace.derived.headline).
_DESIGN = {"peak_tflops": "%{{customdata[{i}]:.4g}} TFLOP/s bf16",
           "mem_bw_tb_s": "%{{customdata[{i}]:.4g}} TB/s off-chip",
           "mem_capacity_gb": "%{{customdata[{i}]:.4g}} GB off-chip memory",
           "sram_mb": "%{{customdata[{i}]:.4g}} MB SRAM",
           "memory_type": "memory %{{customdata[{i}]}}",
           "chips": "%{{customdata[{i}]}} chips"}


def _hover(frame: pd.DataFrame, x: str, y: str, x_label: str, y_label: str,
           name_col: str) -> tuple[np.ndarray, str]:
    """(customdata, hovertemplate): the point's name, its design and both objectives."""
    design = [c for c in _DESIGN if c in frame]
    data = frame.reset_index()[[name_col, *design]].to_numpy(object)
    lines = [f"<b>{name_col.replace('_', ' ')} %{{customdata[0]}}</b>"]
    lines += [_DESIGN[c].format(i=i + 1) for i, c in enumerate(design)]
    lines += [f"{x_label}: %{{x:.4g}}", f"{y_label}: %{{y:.4g}}"]
    return data, "<br>".join(lines) + "<extra>%{fullData.name}</extra>"


def _trace(frame: pd.DataFrame, x: str, y: str, labels: tuple[str, str], name: str,
           name_col: str, **style) -> go.Scatter:
    data, template = _hover(frame, x, y, *labels, name_col)
    return go.Scatter(x=frame[x], y=frame[y], name=name, customdata=data,
                      hovertemplate=template, **style)


def pareto_plotly(feasible: pd.DataFrame, front: pd.DataFrame, refs: pd.DataFrame,
                  axes: tuple[str, str], labels: tuple[str, str], title: str) -> go.Figure:
    """Feasible candidates, the Pareto front and the real chips (``refs``, with a ``chip``
    column; named on hover, as printed names of 47 chips overlap) on log axes; frames are
    indexed by candidate id."""
    x, y = axes
    cloud = feasible.sample(_CLOUD_POINTS, random_state=0) if len(feasible) > _CLOUD_POINTS \
        else feasible
    traces = [
        _trace(cloud, x, y, labels, f"feasible candidates ({len(feasible):,})", "candidate_id",
               mode="markers", marker=dict(size=4, color="rgba(150,150,150,0.5)")),
        _trace(front, x, y, labels, f"Pareto front ({len(front)})", "candidate_id",
               mode="lines+markers", marker=dict(size=6, color="crimson")),
    ]
    for ok, symbol in ((True, "diamond"), (False, "diamond-open")):
        part = refs[(refs["feasible"] == ok) & refs[x].gt(0) & refs[y].gt(0)]
        if len(part):
            traces.append(_trace(
                part.set_index("chip"), x, y, labels,
                f"real chips ({'meet' if ok else 'miss'} the constraints)", "chip",
                mode="markers", marker=dict(size=10, symbol=symbol, color="black")))
    fig = go.Figure(traces)
    fig.update_layout(title=title, template="plotly_white", height=600,
                      xaxis=dict(type="log", title=labels[0]),
                      yaxis=dict(type="log", title=labels[1]),
                      legend=dict(itemclick="toggle", itemdoubleclick="toggleothers"))
    return fig


def write_interactive(figures: list[tuple[str, go.Figure]], path: Path) -> Path:
    """One page of ``figures`` (heading, figure) at ``path``, with plotly.js beside it."""
    js = path.parent / PLOTLY_JS
    if not js.exists():
        js.write_text(get_plotlyjs(), encoding="utf-8")
    body = [f"<h2>{html.escape(head)}</h2>"
            + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig{k}")
            for k, (head, fig) in enumerate(figures)]
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>accel-dse interactive report"
        f"</title><script src='{PLOTLY_JS}'></script><style>body{{font-family:sans-serif;"
        "max-width:1200px;margin:auto}</style></head><body><h1>accel-dse: interactive Pareto "
        "plots</h1><p>Hover a point for its id, design and objectives. Click a legend entry to "
        "hide its group; double-click to show it alone.</p>" + "\n".join(body)
        + "</body></html>", encoding="utf-8")
    return path
