"""Figures as PNG files (matplotlib, headless): readable labels, units on the axes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter  # noqa: E402

__all__ = ["predicted_vs_measured", "save"]

_STYLE = {"batch-1 decode": ("o", "tab:orange"), "batched decode": ("s", "tab:green"),
          "prefill": ("^", "tab:red"), "CNN/encoder": ("D", "tab:blue")}


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def predicted_vs_measured(frame: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Log-log scatter of predicted vs measured, one panel per metric, with the 1:1 line and
    a +-25 % band; markers by regime."""
    metrics = [m for m in ("throughput_per_s", "ttft_s", "latency_s")
               if (frame["metric"] == m).any()]
    labels = {"throughput_per_s": "throughput (tokens/s or samples/s, whole system)",
              "ttft_s": "time to first token (s)", "latency_s": "batch-1 latency (s)"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.5 * len(metrics), 6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        part = frame[(frame["metric"] == metric) & np.isfinite(frame["predicted"])]
        for regime, group in part.groupby("regime"):
            marker, color = _STYLE.get(regime, ("o", "tab:gray"))
            ax.scatter(group["measured"], group["predicted"], s=45, alpha=0.8,
                       marker=marker, color=color, label=regime)
        lo = min(part["measured"].min(), part["predicted"].min()) / 1.5
        hi = max(part["measured"].max(), part["predicted"].max()) * 1.5
        line = np.array([lo, hi])
        ax.plot(line, line, "k-", lw=1, label="1:1")
        ax.fill_between(line, line / 1.25, line * 1.25, color="grey", alpha=0.15,
                        label="+-25 %")
        ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi),
               xlabel=f"measured {labels[metric]}", ylabel=f"predicted {labels[metric]}")
        ax.grid(True, which="both", alpha=0.3)
        few_decades = hi / lo < 100
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FormatStrFormatter("%g"))
            if few_decades:  # label 2x and 5x so a narrow axis still reads
                axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
                axis.set_minor_formatter(FormatStrFormatter("%g"))
            else:
                axis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=9)
    fig.suptitle(title)
    return save(fig, path)
