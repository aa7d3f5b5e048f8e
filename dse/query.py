"""Read-only SQL (DuckDB) over the Parquet results of one run or of every run.

Views: ``rows`` (one row per candidate x scenario; a ``run`` column names the run folder) and,
for search runs, ``pareto`` (the feasible front). Only SELECT and EXPLAIN statements run:
anything that writes (INSERT, DROP, COPY ... TO, ATTACH, ...) is refused before it executes.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

__all__ = ["OUTPUTS_DIR", "find_runs", "resolve_runs", "connect", "run_query", "check_readonly"]

OUTPUTS_DIR = Path("outputs")
_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def find_runs(root: str | Path = OUTPUTS_DIR) -> list[Path]:
    """Every run folder under ``root`` holding results, oldest first (by manifest start)."""
    root = Path(root)
    runs = [m.parent for m in root.rglob("manifest.json")
            if any((m.parent / "results").glob("*.parquet"))]
    return sorted(runs, key=lambda r: (json.loads((r / "manifest.json").read_text())
                                       .get("started", ""), str(r)))


def resolve_runs(run: str | None, root: str | Path = OUTPUTS_DIR) -> list[Path]:
    """``run``: a run folder, "all", or None for the newest run. ValueError when there is
    nothing to read."""
    if run in (None, "", "latest"):
        runs = find_runs(root)
        if not runs:
            raise ValueError(f"no runs with results under {Path(root).resolve()}; "
                             "run `dse sweep` or `dse search` first")
        return runs[-1:]
    if run == "all":
        runs = find_runs(root)
        if not runs:
            raise ValueError(f"no runs with results under {Path(root).resolve()}")
        return runs
    path = Path(run)
    if not path.is_dir():
        raise ValueError(f"run={run}: no such folder")
    if not any((path / "results").glob("*.parquet")):
        inner = find_runs(path)  # a multirun folder: every job inside it
        if not inner:
            raise ValueError(f"run={run}: no results in it (is it a sweep or search run?)")
        return inner
    return [path]


def check_readonly(sql: str) -> None:
    """ValueError unless every statement only reads."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as err:
        raise ValueError(f"bad SQL: {str(err).splitlines()[0]}") from None
    if not statements:
        raise ValueError("empty SQL")
    for st in statements:
        if st.type not in _ALLOWED:
            raise ValueError(f"refused: {st.type.name} statements write; queries are "
                             f"read-only (SELECT)")


def _files(runs: list[Path], name: str) -> list[str]:
    out = []
    for r in runs:
        out += [str(p) for p in sorted((r / name).glob("*.parquet"))] if name == "results" \
            else [str(r / name)] if (r / name).exists() else []
    return out


def connect(runs: list[Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views ``rows`` and (when any run has one) ``pareto``."""
    con = duckdb.connect(":memory:")
    rows = _files(runs, "results")
    con.execute(
        "CREATE VIEW rows AS SELECT * EXCLUDE (filename), "
        "regexp_replace(filename, '/results/[^/]*$', '') AS run "
        f"FROM read_parquet({rows!r}, union_by_name = true, filename = true)")
    fronts = _files(runs, "pareto.parquet")
    if fronts:
        con.execute(
            "CREATE VIEW pareto AS SELECT * EXCLUDE (filename), "
            "regexp_replace(filename, '/pareto.parquet$', '') AS run "
            f"FROM read_parquet({fronts!r}, union_by_name = true, filename = true)")
    return con


def run_query(sql: str, runs: list[Path]) -> pd.DataFrame:
    """The result of a read-only ``sql`` over ``runs``."""
    check_readonly(sql)
    con = connect(runs)
    try:
        return con.execute(sql).df()
    except duckdb.Error as err:
        raise ValueError(f"query failed: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
