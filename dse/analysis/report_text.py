"""Readable terminal output (rich): numbers in engineering format, short headers with units,
tables that keep their deciding columns whole. Every string shown goes through
rich.markup.escape: names and values are the user's text, never markup."""

from __future__ import annotations

import math
import numbers
import os
import sys
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

if typing.TYPE_CHECKING:  # pandas costs 0.3 s to import: `dse predict` prints no frame
    import pandas as pd

__all__ = ["eng", "fmt", "header", "aggregate_note", "print_prediction", "print_rows",
           "print_table", "render", "console"]

PIPED_WIDTH = 160  # piped output without COLUMNS: wider than rich's 80, so tables stay whole


def console() -> Console:
    """The terminal's console; piped output gets PIPED_WIDTH columns, so tables stay whole."""
    c = Console()
    return c if c.is_terminal else Console(width=PIPED_WIDTH)


def _fitting_console() -> Console:
    """The console print_table fits its tables to: COLUMNS when set, piped or not (a width
    asked for; rich reads it), else ``console()``.

    NOTE: print_rows keeps ``console()``: its tables (query answers, validation rows) have no
    deciding columns to keep whole, and pytest hands its subprocesses COLUMNS=80."""
    return Console() if os.environ.get("COLUMNS") else console()


_PREFIXES = {12: "T", 9: "G", 6: "M", 3: "k", 0: "", -3: "m", -6: "µ", -9: "n", -12: "p"}


def eng(value: float) -> str:
    """``value`` in engineering format: 3 significant digits, trailing zeros kept so that a
    column reads evenly, and an SI prefix whose exponent is a multiple of 3 (1.23k, 45.6M,
    8.10m, 2.00); beyond p..T, scientific (1.20e-15)."""
    if value == 0:
        return "0"
    exp3 = 3 * math.floor(math.log10(abs(value)) / 3)
    mantissa = float(f"{value / 10.0 ** exp3:.3g}")
    if abs(mantissa) >= 1000:  # 999.7 rounds to 1000: the next prefix up
        exp3, mantissa = exp3 + 3, mantissa / 1000
    if exp3 not in _PREFIXES:
        return f"{value:.2e}"
    return f"{mantissa:#.3g}".rstrip(".") + _PREFIXES[exp3]


def _missing(value: Any) -> bool:
    """None or pandas' NA (which only exists once something has imported pandas)."""
    pandas = sys.modules.get("pandas")
    return value is None or (pandas is not None and value is pandas.NA)


def fmt(value: Any) -> str:
    """A cell: whole numbers exact (1,024), measurements in engineering format, missing as -."""
    if _missing(value) or isinstance(value, (bool, str)):
        return "-" if _missing(value) else str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if not isinstance(value, numbers.Real):
        return str(value)
    if math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return eng(float(value))


# column -> (short header, unit): distinct headers that fit the narrow columns of a table
_LABELS = {
    "candidate_id": ("id", ""), "rank": ("#", ""), "pareto": ("front", ""),
    "feasible": ("fit", ""), "violation": ("why not", ""),
    "throughput_per_usd": ("tput/$", "/s/$"), "throughput_per_w": ("tput/W", "/s/W"),
    "throughput_per_s": ("tput", "/s"), "usd_per_million_items": ("$/M items", "$"),
    "peak_flop_per_s": ("peak bf16", "FLOP/s"), "mem_bw_bytes_per_s": ("mem bw", "B/s"),
    "mem_capacity_gb": ("mem", "GB"), "bytes_per_flop": ("mem/peak", "B/FLOP"),
    "system_cost_usd": ("cost", "$"), "system_power_w": ("power", "W"),
    "unit_cost_usd": ("unit cost", "$"), "die_cost_usd": ("die cost", "$"),
    "power_w": ("chip power", "W"), "die_area_mm2": ("die area", "mm²"),
    "energy_per_item_j": ("energy", "J/item"), "arithmetic_intensity": ("intensity", "FLOP/B"),
    "utilization": ("util", ""), "max_batch": ("max batch", ""),
    "ttft_s": ("TTFT", "s"), "tpot_s": ("TPOT", "s"), "latency_s": ("latency", "s"),
    "process_node": ("node", ""), "macs": ("MACs", ""), "clock_ghz": ("clock", "GHz"),
    "sram_mb": ("SRAM", "MB"), "memory_type": ("mem type", ""),
    "memory_stacks": ("stacks", ""), "links_count": ("links", ""),
    "links_gb_s_per_link": ("link bw", "GB/s"), "links_latency_us": ("link lat", "µs"),
}
# name suffix -> unit, for columns without a label (longest first: _tb_s before _s)
_SUFFIXES = (("_per_s", "/s"), ("_tb_s", "TB/s"), ("_gb_s", "GB/s"), ("_usd", "$"),
             ("_mm2", "mm²"), ("_ghz", "GHz"), ("_gb", "GB"), ("_mb", "MB"), ("_us", "µs"),
             ("_w", "W"), ("_j", "J"), ("_s", "s"))


def header(column: str) -> tuple[str, str]:
    """(short header, unit) of an output or design column; ``dtype_speedup_fp8`` is
    ("×fp8", "vs bf16"), other names keep their words and give their unit suffix to the unit
    (``links_latency_us``: ("links_latency", "µs"))."""
    if column in _LABELS:
        return _LABELS[column]
    if column.startswith("dtype_speedup_"):
        return f"×{column.removeprefix('dtype_speedup_')}", "vs bf16"
    for suffix, unit in _SUFFIXES:
        if column.endswith(suffix) and len(column) > len(suffix):
            return column.removesuffix(suffix), unit
    return column, ""


def aggregate_note(scenarios: Sequence[str]) -> str:
    """What a niche's score is: "geomean of 2 scenarios: a, b" (one scenario: its name)."""
    if len(scenarios) == 1:
        return f"scenario {scenarios[0]}"
    return f"geomean of {len(scenarios)} scenarios: {', '.join(scenarios)}"


def _headers(columns: Sequence[str]) -> list[str]:
    """Two-line headers (name, unit); a pair two columns share falls back to the names."""
    pairs = [header(c) for c in columns]
    taken = [p for p in pairs if pairs.count(p) > 1]
    pairs = [(c, "") if p in taken else p for c, p in zip(columns, pairs, strict=True)]
    units = any(u for _, u in pairs)
    return [escape(name) + (f"\n[dim]{escape(unit)}[/dim]" if units else "")
            for name, unit in pairs]


def _table(frame: pd.DataFrame, decisive: int, caption: str | None) -> Table:
    import pandas as pd

    table = Table(caption=caption and escape(caption), header_style="bold")
    cells = [[fmt(v) for v in frame[c]] for c in frame.columns]
    for k, (name, column) in enumerate(zip(_headers(list(frame.columns)), cells, strict=True)):
        numeric = pd.api.types.is_numeric_dtype(frame[frame.columns[k]]) and not \
            pd.api.types.is_bool_dtype(frame[frame.columns[k]])
        # A deciding column never shrinks below its widest cell, except free text (a reason),
        # which wraps between its words instead.
        whole = k < decisive and not any(" " in c for c in column)
        table.add_column(name, justify="right" if numeric else "left", no_wrap=whole,
                         min_width=max(map(len, column), default=1) if whole else None,
                         overflow="fold")
    for row in zip(*cells, strict=True):
        table.add_row(*(escape(c) for c in row))
    return table


def _natural_width(out: Console, table: Table) -> int:
    return Measurement.get(out, out.options.update(max_width=10**6), table).maximum


def render(frame: pd.DataFrame, *, decisive: int = 1, wide: bool = False,
           out_console: Console | None = None) -> tuple[Table, Console]:
    """(table, console to print it on): the first ``decisive`` columns of ``frame`` always
    whole; without ``wide``, the columns after them dropped from the right until the table
    fits the console (the caption says how many and how to see them); with ``wide``, every
    column, printed at its natural width."""
    out = out_console or _fitting_console()
    shown = frame
    table = _table(shown, decisive, None)
    while not wide and shown.shape[1] > decisive and _natural_width(out, table) > out.width:
        shown = shown.iloc[:, :-1]
        hidden = frame.shape[1] - shown.shape[1]
        table = _table(shown, decisive, f"{hidden} more column{'s' * (hidden > 1)}: "
                                        f"wide=true shows them")
    if wide and _natural_width(out, table) > out.width:
        out = Console(width=_natural_width(out, table), file=out.file,
                      force_terminal=out.is_terminal, color_system=out.color_system)
    return table, out


def print_table(title: str, frame: pd.DataFrame, *, decisive: int = 1, note: str | None = None,
                wide: bool = False, out_console: Console | None = None) -> None:
    """The title, the note saying what the scores are, and ``frame`` as ``render`` lays it
    out (an empty frame: the title and "none"). Title and note are lines of their own, so
    that they wrap at the console's width, not the table's."""
    out = out_console or _fitting_console()
    if frame.empty:
        out.print(f"{escape(title)}: none", highlight=False)
        return
    table, wide_out = render(frame, decisive=decisive, wide=wide, out_console=out)
    out.print(escape(title), style="bold", highlight=False)
    if note:
        out.print(escape(note), highlight=False)
    wide_out.print(table)


_UNITS = {
    "throughput_per_s": "/s", "ttft_s": "s", "tpot_s": "s", "latency_s": "s",
    "power_w": "W", "energy_per_item_j": "J", "die_area_mm2": "mm2", "die_cost_usd": "USD",
    "unit_cost_usd": "USD", "system_cost_usd": "USD", "throughput_per_usd": "/s/USD",
    "throughput_per_w": "/s/W", "usd_per_million_items": "USD", "arithmetic_intensity": "FLOP/B",
}


def print_prediction(title: str, out: dict[str, Any], out_console: Console | None = None) -> None:
    """One prediction: an output per row, its value and unit."""
    table = Table(title=escape(title), show_header=True, header_style="bold")
    table.add_column("output")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for key, value in out.items():
        table.add_row(escape(key), escape(fmt(value)), _UNITS.get(key, ""))
    (out_console or console()).print(table)


def print_rows(title: str, rows: Iterable[dict[str, Any]],
               out_console: Console | None = None) -> None:
    """Rows as given (query answers, validation tables): the column names unchanged."""
    rows = list(rows)
    table = Table(title=escape(title), show_header=True, header_style="bold")
    for key in rows[0] if rows else []:
        table.add_column(escape(str(key)),
                         justify="left" if isinstance(rows[0][key], str) else "right")
    for row in rows:
        table.add_row(*(escape(fmt(v)) for v in row.values()))
    (out_console or console()).print(table)
