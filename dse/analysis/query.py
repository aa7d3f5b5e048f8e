"""Read-only SQL (DuckDB) over the Parquet results of one run or of every run.

Views: ``rows`` (one row per candidate x scenario; a ``run`` column names the run folder) and,
for search runs, ``pareto`` (the feasible front). Only SELECT and EXPLAIN statements run:
anything that writes (INSERT, DROP, COPY ... TO, ATTACH, ...) or executes under EXPLAIN
ANALYZE is refused before it runs. The connection is a sandbox (DuckDB "Securing DuckDB",
operations_manual/securing_duckdb): ``allowed_paths`` lists the runs' Parquet files,
``enable_external_access = false`` closes every other file, URL, extension and environment
variable, and ``lock_configuration = true`` refuses the SET that would reopen them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pandas as pd

__all__ = ["OUTPUTS_DIR", "find_runs", "resolve_runs", "connect", "run_query", "check_readonly"]

OUTPUTS_DIR = Path("outputs")
_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
# EXPLAIN ANALYZE (or ANALYSE, or EXPLAIN (ANALYZE, ...)) executes its statement.
_ANALYZE = re.compile(r"^\s*EXPLAIN\s*(\([^)]*\bANALY[SZ]E\b|ANALY[SZ]E\b)", re.I)
_SANDBOX = ("dse query reads only the runs' Parquet files, through the views rows and pareto")


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
        if _ANALYZE.match(_COMMENTS.sub(" ", st.query)):
            raise ValueError("refused: EXPLAIN ANALYZE executes its statement; use EXPLAIN")


def _files(runs: list[Path], name: str) -> list[str]:
    """Absolute paths of the runs' result chunks (``name="results"``) or fronts."""
    out = []
    for r in (Path(r).resolve() for r in runs):
        out += [str(p) for p in sorted((r / name).glob("*.parquet"))] if name == "results" \
            else [str(r / name)] if (r / name).exists() else []
    return out


def _sandbox(con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
    """Open ``files`` (absolute paths) and nothing else, then lock the settings."""
    con.execute("SET temp_directory = ''")  # no spill folder: it would be readable too
    con.execute("SET allowed_paths = ?", [files])
    for setting in ("autoinstall_known_extensions", "autoload_known_extensions",
                    "enable_external_access"):
        con.execute(f"SET {setting} = false")
    con.execute("SET lock_configuration = true")


def connect(runs: list[Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory, sandboxed DuckDB with views ``rows`` and (when any run has one)
    ``pareto``."""
    con = duckdb.connect(":memory:")
    rows = _files(runs, "results")
    fronts = _files(runs, "pareto.parquet")
    _sandbox(con, rows + fronts)
    con.execute(
        "CREATE VIEW rows AS SELECT * EXCLUDE (filename), "
        "regexp_replace(filename, '/results/[^/]*$', '') AS run "
        f"FROM read_parquet({rows!r}, union_by_name = true, filename = true)")
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
        raise ValueError(_failure(err)) from None
    finally:
        con.close()


def _failure(err: duckdb.Error) -> str:
    """One line: "refused: ..." where the sandbox stopped the query, else "query failed"."""
    line = str(err).splitlines()[0]
    table = re.search(r"Table with name (\S+) does not exist", line)
    if isinstance(err, duckdb.PermissionException) or "getenv" in line or (
            table and re.search(r"[/\\.]", table.group(1))):
        return f"refused: {line} ({_SANDBOX})"
    return f"query failed: {line}"
