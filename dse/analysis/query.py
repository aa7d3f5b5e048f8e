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

import os
import re
import threading
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from dse.pipeline.runs import check_dataset, started_at
from dse.pipeline.store import MANIFEST, RESULTS
from dse.presets import CONF_DIR

__all__ = ["OUTPUTS_DIR", "find_runs", "newest_run", "resolve_runs", "connect", "fetch",
           "run_query", "check_readonly", "memory_bytes", "TIMEOUT_S", "MEMORY_SHARE"]

OUTPUTS_DIR = Path("outputs")
_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
# EXPLAIN ANALYZE (or ANALYSE, or EXPLAIN (ANALYZE, ...)) executes its statement.
_ANALYZE = re.compile(r"^\s*EXPLAIN\s*(\([^)]*\bANALY[SZ]E\b|ANALY[SZ]E\b)", re.I)
_SANDBOX = ("dse query reads only the runs' Parquet files, through the views rows and pareto")
TIMEOUT_S = 60.0  # a query's default time limit
MAX_TIMEOUT_S = 86_400.0
MEMORY_SHARE = 0.25  # a query's default memory limit, as a share of RAM
_MIN_MEMORY = 64e6
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$", re.I)
_UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def find_runs(root: str | Path = OUTPUTS_DIR) -> list[Path]:
    """Every run folder under ``root`` holding results, oldest first by the time each started
    (sweeps and searches alike), then by folder."""
    root = Path(root)
    runs = [m.parent for m in root.rglob(MANIFEST)
            if any((m.parent / RESULTS).glob("*.parquet"))]
    return sorted(runs, key=lambda r: (started_at(r), str(r)))


def _saved_niche(run: Path) -> dict:
    """The niche section of ``run``'s saved config ({} when it cannot be read)."""
    try:
        cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return cfg.get("niche") or {} if isinstance(cfg, dict) else {}


def _maker(niche: str) -> str:
    """The command that makes a run of ``niche`` (its own design space where one exists)."""
    space = f" space={niche}" if (CONF_DIR / "space" / f"{niche}.yaml").exists() else ""
    return f"`dse sweep niche={niche}{space}`"


def _no_run(root: Path, niche: str | None, scenario: str | None,
            candidate: int | None) -> str:
    """Why no run fits, and the command that makes one."""
    where = Path(root).resolve()
    what = f"candidate {candidate}" + (f" with scenario {scenario!r}" if scenario else "") \
        if candidate is not None else f"scenario {scenario!r}"
    if scenario is not None:
        owners = [p.stem for p in sorted((CONF_DIR / "niche").glob("*.yaml"))
                  if scenario in (yaml.safe_load(p.read_text()).get("scenarios") or {})]
        make = " or ".join(_maker(n) for n in owners) or "a niche that has it"
        return f"no run under {where} has {what}; make one with {make}"
    if niche is not None:
        return f"no run of niche {niche!r} under {where}; make one with {_maker(niche)}"
    if candidate is not None:
        return f"no run under {where} has {what}; run `dse sweep` or `dse search` first"
    return f"no runs with results under {where}; run `dse sweep` or `dse search` first"


def newest_run(root: str | Path = OUTPUTS_DIR, niche: str | None = None,
               scenario: str | None = None, candidate: int | None = None) -> Path:
    """The newest run by start time, sweeps and searches alike, of ``niche``, holding
    ``scenario`` and ``candidate`` (each when given); ValueError naming the command that
    makes one."""
    for run in reversed(find_runs(root)):
        saved = _saved_niche(run)
        if niche in (None, saved.get("name")) and (
                scenario is None or scenario in (saved.get("scenarios") or {})) and (
                candidate is None or _holds(run, candidate)):
            return run
    raise ValueError(_no_run(Path(root), niche, scenario, candidate))


def _holds(run: Path, candidate: int) -> bool:
    """Whether ``run`` has rows of ``candidate``."""
    return not run_query(f"SELECT 1 FROM rows WHERE candidate_id = {int(candidate)} LIMIT 1",
                         [run]).empty


def resolve_runs(run: str | list[str] | None, root: str | Path = OUTPUTS_DIR,
                 niche: str | None = None) -> list[Path]:
    """``run``: a run folder, a list of them, "all", or None for the newest run (of
    ``niche`` when given). ValueError when there is nothing to read."""
    if isinstance(run, (list, tuple)):
        if not run:
            raise ValueError("run=[]: allowed: a run folder, a list of them, a multirun "
                             "folder, all, or null (the newest)")
        return [p for one in run for p in resolve_runs(str(one), root)]
    if run in (None, "", "latest"):
        return [newest_run(root, niche)]
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


def memory_bytes(memory_limit: str | None) -> int:
    """Bytes a query may hold: ``memory_limit`` ("2GB", "512MiB") or, for None, a share of
    this machine's RAM. ValueError names a size that is not one, or not in the range."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if memory_limit is None:
        return int(ram * MEMORY_SHARE)
    size = _SIZE.match(str(memory_limit).strip())
    if not size:
        raise ValueError(f"memory_limit={memory_limit}: give a size such as 2GB or 512MB")
    n = float(size.group(1)) * _UNITS[(size.group(2) or "b").lower()]
    if not _MIN_MEMORY <= n <= ram:
        raise ValueError(f"memory_limit={memory_limit}: must be between 64MB and this "
                         f"machine's RAM ({ram / 1e9:.1f}GB)")
    return int(n)


def _sandbox(con: duckdb.DuckDBPyConnection, files: list[str], memory: int) -> None:
    """Open ``files`` (absolute paths) and nothing else, within ``memory`` bytes, then lock
    the settings."""
    con.execute("SET temp_directory = ''")  # no spill folder: it would be readable too
    con.execute("SET max_temp_directory_size = '0B'")
    con.execute(f"SET memory_limit = '{memory}B'")
    con.execute("SET allowed_paths = ?", [files])
    for setting in ("autoinstall_known_extensions", "autoload_known_extensions",
                    "enable_external_access"):
        con.execute(f"SET {setting} = false")
    con.execute("SET lock_configuration = true")


def connect(runs: list[Path], memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory, sandboxed DuckDB with views ``rows`` and (when any run has one)
    ``pareto``, holding at most ``memory_limit`` (see ``memory_bytes``). ValueError names a
    run's file that is not whole Parquet of the run's own schema."""
    for run in runs:
        check_dataset(Path(run))
    memory = memory_bytes(memory_limit)
    con = duckdb.connect(":memory:")
    rows = _files(runs, "results")
    fronts = _files(runs, "pareto.parquet")
    _sandbox(con, rows + fronts, memory)
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


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> pd.DataFrame:
    """``sql`` (the project's own, over ``connect``) as a frame; ValueError, one line, where
    DuckDB fails (a memory limit, a file unreadable past its metadata)."""
    try:
        return con.execute(sql, params).df()
    except duckdb.Error as err:
        raise ValueError(_failure(err)) from None


def run_query(sql: str, runs: list[Path], timeout_s: float | None = None,
              memory_limit: str | None = None) -> pd.DataFrame:
    """The result of a read-only ``sql`` over ``runs``, stopped (ValueError, one line) past
    ``timeout_s`` seconds (None: no limit) or ``memory_limit`` (see ``memory_bytes``).

    NOTE: the query runs in this process; the time limit is ``con.interrupt()`` from a timer
    thread (DuckDB "interrupt"), so a stopped query leaves no thread working and dies with
    its caller, where a child process would outlive a killed parent.
    """
    check_readonly(sql)
    if timeout_s is not None and not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ValueError(f"timeout_s={timeout_s}: must be > 0 and <= {MAX_TIMEOUT_S:,} s")
    con = connect(runs, memory_limit)
    timer = threading.Timer(timeout_s, con.interrupt) if timeout_s else None
    try:
        if timer:
            timer.start()
        return con.execute(sql).df()
    except duckdb.Error as err:
        raise ValueError(_failure(err, timeout_s, memory_limit)) from None
    finally:
        if timer:
            timer.cancel()
        con.close()


def _failure(err: duckdb.Error, timeout_s: float | None = None,
             memory_limit: str | None = None) -> str:
    """One line: "stopped: ..." at a limit, "refused: ..." where the sandbox stopped the
    query, else "query failed"."""
    line = str(err).splitlines()[0]
    if isinstance(err, duckdb.InterruptException):
        return (f"query stopped after timeout_s={timeout_s:g} s; set timeout_s= to allow "
                f"longer, or narrow the query")
    if isinstance(err, duckdb.OutOfMemoryException):
        limit = memory_limit or f"{memory_bytes(None) / 1e9:.1f}GB ({MEMORY_SHARE:.0%} of RAM)"
        return (f"query stopped: it needs more than memory_limit={limit}; set memory_limit= "
                f"higher, or narrow the query ({line})")
    table = re.search(r"Table with name (\S+) does not exist", line)
    if isinstance(err, duckdb.PermissionException) or "getenv" in line or (
            table and re.search(r"[/\\.]", table.group(1))):
        return f"refused: {line} ({_SANDBOX})"
    return f"query failed: {line}"
