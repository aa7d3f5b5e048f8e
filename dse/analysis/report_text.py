"""Readable terminal output (rich): formatted numbers with units, tables. Every string shown
goes through rich.markup.escape: names and values are the user's text, never markup."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["fmt", "print_prediction", "print_rows", "print_top", "console"]


def console() -> Console:
    """A console; piped output gets 160 columns rather than rich's 80, so tables stay whole."""
    c = Console()
    return c if c.is_terminal else Console(width=160)

_UNITS = {
    "throughput_per_s": "/s", "ttft_s": "s", "tpot_s": "s", "latency_s": "s",
    "power_w": "W", "energy_per_item_j": "J", "die_area_mm2": "mm2", "die_cost_usd": "USD",
    "unit_cost_usd": "USD", "system_cost_usd": "USD", "throughput_per_usd": "/s/USD",
    "throughput_per_w": "/s/W", "usd_per_million_items": "USD", "arithmetic_intensity": "FLOP/B",
}


def fmt(value: Any) -> str:
    """A short human form: 3 significant digits, SI suffixes for large numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf"
    if isinstance(value, int):
        return f"{value:,}"
    mag = abs(value)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if mag >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def print_prediction(title: str, out: dict[str, Any], out_console: Console | None = None) -> None:
    table = Table(title=escape(title), show_header=True, header_style="bold")
    table.add_column("output")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for key, value in out.items():
        table.add_row(escape(key), escape(fmt(value)), _UNITS.get(key, ""))
    (out_console or console()).print(table)


def print_rows(title: str, rows: Iterable[dict[str, Any]],
               out_console: Console | None = None) -> None:
    rows = list(rows)
    table = Table(title=escape(title), show_header=True, header_style="bold")
    for key in rows[0] if rows else []:
        table.add_column(escape(str(key)),
                         justify="left" if isinstance(rows[0][key], str) else "right")
    for row in rows:
        table.add_row(*(escape(fmt(v)) for v in row.values()))
    (out_console or console()).print(table)


def print_top(niche: str, result: dict[str, Any], objectives: list[str],
              out_console: Console | None = None) -> None:
    """The best feasible candidates of a niche; * marks the Pareto front."""
    frame = result["top"]
    title = (f"{niche}: top {len(frame)} of {result['feasible']:,} feasible candidates "
             f"({result['candidates']:,} evaluated); * = Pareto front")
    rows = []
    for cid, row in frame.iterrows():
        rec = {"candidate": int(str(cid).rsplit(":", 1)[-1]),
               "front": "*" if row["pareto"] else ""}
        rec.update({c: row[c] for c in objectives})
        rec.update({c: row[c] for c in frame.columns
                    if c not in (*objectives, "pareto", "rank")})
        rows.append(rec)
    if rows:
        print_rows(title, rows, out_console)
    else:
        (out_console or console()).print(f"{escape(title)}: none")
