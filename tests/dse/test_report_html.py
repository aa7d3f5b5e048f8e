"""The report's pages in a real headless Chromium: they render with no console errors, the
interactive plot is drawn with its hover data and legend groups, wide tables scroll inside
the page; real-chip labels of the Pareto PNGs never overlap."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from omegaconf import OmegaConf

from dse.analysis.interactive import PLOTLY_JS, pareto_plotly, write_interactive
from dse.analysis.plots import plt
from dse.analysis.report import _operator_points, _page, _table, label_chips
from dse.pipeline.niche import parse_niche
from dse.presets import CONF_DIR, load_chip
from hwspace.derived import derive
from hwspace.spec import from_configs

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium "
                                    "(.ci/run installs it)")
_FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--window-size=1400,2000",
          "--virtual-time-budget=5000"]
# Runs first in <head>: records every error (a script that throws, a file that fails to
# load, console.error) and the page's widths into attributes that --dump-dom prints.
_PROBE = """<script>(function(){var errs=[],root=document.documentElement;
function rec(m){errs.push(String(m));root.setAttribute('data-errors',JSON.stringify(errs));}
root.setAttribute('data-errors','[]');
window.addEventListener('error',function(e){rec(e.message||('failed to load '+
 (e.target&&(e.target.src||e.target.href))));},true);
window.addEventListener('unhandledrejection',function(e){rec(e.reason);});
var ce=console.error;console.error=function(){rec([].join.call(arguments,' '));
 ce.apply(console,arguments);};
window.addEventListener('load',function(){root.setAttribute('data-loaded','1');
 root.setAttribute('data-scroll-width',root.scrollWidth);
 root.setAttribute('data-window-width',window.innerWidth);});})();</script>"""


def render(page: Path) -> tuple[str, dict]:
    """(DOM after load, the probe's attributes) of ``page`` in headless Chromium, via a copy
    beside it with the probe in its head."""
    probed = page.with_name(f"probed_{page.name}")
    probed.write_text(page.read_text().replace("<head>", "<head>" + _PROBE, 1))
    dom = subprocess.run([CHROMIUM, *_FLAGS, "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=60).stdout
    probed.unlink()
    root = re.search(r"<html([^>]*)>", dom)
    assert root, dom[:500]
    attrs = {k: html.unescape(v) for k, v in re.findall(r'data-([\w-]+)="([^"]*)"', root[1])}
    return dom, attrs


def screenshot(page: Path, png: Path) -> Path:
    """A headless Chromium screenshot of ``page`` (1400 x 2000) at ``png``."""
    subprocess.run([CHROMIUM, *_FLAGS, f"--screenshot={png}", page.as_uri()],
                   capture_output=True, timeout=60, check=True)
    return png


def assert_renders_cleanly(page: Path, png: Path) -> str:
    """The page loads with no errors and its screenshot is a PNG; returns its DOM."""
    dom, attrs = render(page)
    assert attrs.get("loaded") == "1", attrs
    assert json.loads(attrs["errors"]) == [], attrs["errors"]
    # the page fits the window: anything wider scrolls inside its own box
    assert int(attrs["scroll-width"]) <= int(attrs["window-width"]), attrs
    screenshot(page, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    return dom


def _frames(n: int = 300):
    rng = np.random.default_rng(0)
    x, y = rng.lognormal(0, 1, n), rng.lognormal(0, 1, n)
    feasible = pd.DataFrame(dict(a=x, b=y, peak_tflops=rng.uniform(10, 1000, n),
                                 mem_bw_tb_s=rng.uniform(0.1, 5, n),
                                 mem_capacity_gb=rng.uniform(8, 192, n), chips=1),
                            index=pd.Index(np.arange(1000, 1000 + n), name="candidate_id"))
    front = feasible.nlargest(5, "a")
    refs = pd.DataFrame(dict(chip=["h100", "b200", "mi300x"], a=[1.0, 1.01, 2.0],
                             b=[1.0, 1.0, 0.5], feasible=[True, False, True]))
    return feasible, front, refs


@needs_chromium
def test_interactive_page_draws_hover_data_and_legend_groups_without_errors(tmp_path):
    feasible, front, refs = _frames()
    fig = pareto_plotly(feasible, front, refs, ("a", "b"), ("tokens/s per USD", "tokens/s per W"),
                        "test niche")
    page = write_interactive([("test niche", fig)], tmp_path / "interactive.html")
    assert (tmp_path / PLOTLY_JS).stat().st_size > 1_000_000  # plotly.js local, no CDN
    assert "cdn" not in page.read_text().lower()
    dom = assert_renders_cleanly(page, tmp_path / "interactive.png")
    assert dom.count('class="main-svg"') >= 2  # plotly drew the figure
    for group in ("feasible candidates (300)", "Pareto front (5)",
                  "real chips (meet the constraints)", "real chips (miss the constraints)"):
        assert f">{group}<" in dom, group  # one legend entry per group
    data = {t["name"]: t for t in fig.to_dict()["data"]}
    hover = data["Pareto front (5)"]
    assert "candidate id" in hover["hovertemplate"] and "TB/s" in hover["hovertemplate"]
    assert "tokens/s per W: %{y" in hover["hovertemplate"]
    assert [row[0] for row in hover["customdata"]] == list(front.index)
    assert data["real chips (miss the constraints)"]["customdata"][0][0] == "b200"


@needs_chromium
def test_static_page_with_a_wide_table_scrolls_it_inside_the_page(tmp_path):
    wide = pd.DataFrame({f"a_long_column_name_{k}": [1.23456789e9] for k in range(60)})
    page = tmp_path / "report.html"
    page.write_text(_page(["<h1>wide</h1>", _table(wide)]))
    assert_renders_cleanly(page, tmp_path / "report.png")


def test_chip_labels_never_overlap_even_on_one_point():
    refs = pd.DataFrame(dict(chip=[f"chip-{k:02d}" for k in range(47)], x=1.0, y=1.0))
    refs.loc[::3, "y"] = 2.0  # two clumps
    fig, ax = plt.subplots(figsize=(8, 0.15 * len(refs) + 1.5))  # as report.pareto_figure
    ax.scatter(refs["x"], refs["y"])
    ax.set(xscale="log", yscale="log")
    labels = label_chips(ax, refs, "x", "y")
    fig.canvas.draw()
    boxes = [Text.get_window_extent(t) for t in labels]  # the name alone, not its line
    plt.close(fig)
    assert len(boxes) == 47
    assert not [(a, b) for a, b in combinations(range(47), 2) if boxes[a].overlaps(boxes[b])]
    # leader lines keep the order: the lower point's name is lower
    ys = [b.y0 for b in boxes]
    assert ys == sorted(ys)


def test_rooflines_place_the_niches_own_operators_under_the_roof():
    # Roofline model (Williams, Waterman, Patterson, CACM 52(4), 2009): an operator's
    # achieved FLOP/s is at most min(peak, bandwidth x intensity).
    cfg = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "niche" / "local_llm.yaml"))
    cfg.pop("defaults")
    niche = parse_niche(cfg)
    chips = from_configs([load_chip("h100")])
    der = derive(chips)
    peak, bw = der.peak_flop_per_s_cls[0].max(), chips.mem_bw_bytes_per_s[0]
    points = [p for ns in niche.scenarios for p in _operator_points(chips, ns)]
    labels = [label for label, _, _ in points]
    assert "llama3-70b-int4: decode (llama3-70b)" in labels
    assert not any("resnet" in label for label in labels)
    for label, intensity, achieved in points:
        assert len(achieved) and (achieved <= np.minimum(peak, bw * intensity) * 1.001).all(), \
            label
