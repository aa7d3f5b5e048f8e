"""dse query is a sandbox: the runs' own Parquet files through the views rows and pareto,
nothing else on the machine, no writes, no extensions, no settings changed, SQL taken as
typed (no ${...} interpolation), and every query within a time and a memory limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from dse.analysis.query import MEMORY_SHARE, connect, memory_bytes, resolve_runs, run_query
from dse.cli import main

HOSTILE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd', sep = ':')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM read_json('/etc/passwd')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM glob('**/*.yaml')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'elsewhere.parquet'",
    "FROM read_parquet('/usr/**/*.parquet')",
    "SELECT getenv('HOME')",
    "SELECT * FROM read_csv('https://example.com/x.csv')",
    "EXPLAIN ANALYZE COPY (SELECT 42) TO 'x.csv'",
    "explain analyse select 1",
    "/* hidden */ EXPLAIN (ANALYZE) SELECT 1",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET allowed_directories = ['/']",
    "INSTALL httpfs",
    "LOAD httpfs",
    "COPY (SELECT 42) TO 'x.csv'",
    "ATTACH 'x.db' AS x",
    "CREATE TABLE t AS SELECT 1",
    "SELECT 1; DROP VIEW rows",
    "PRAGMA enable_profiling",
    "CALL duckdb_secrets()",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_sql_is_refused_in_one_line_and_writes_nothing(small_runs, sql, tmp_path,
                                                               monkeypatch, capsys):
    _, sweep, _ = small_runs
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["query", sql, f"run={sweep}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "refused" in err or "bad SQL" in err, err
    assert "root:" not in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_run_file_other_than_its_parquet_is_closed_too(small_runs):
    _, sweep, _ = small_runs
    for path in (sweep / "manifest.json", sweep / ".hydra" / "config.yaml"):
        with pytest.raises(ValueError, match="refused"):
            run_query(f"SELECT * FROM read_text('{path}')", [sweep])


def test_views_rows_and_pareto_work_over_one_run_and_over_all(small_runs):
    root, sweep, search = small_runs
    assert run_query("SELECT count(*) AS n FROM rows", [sweep])["n"].item() == 96 * 3
    every = resolve_runs("all", root)
    assert set(every) == {sweep, search}
    by_run = run_query("SELECT run, count(*) AS n FROM rows GROUP BY run", every)
    assert dict(zip(by_run["run"], by_run["n"], strict=True)) == {
        str(sweep.resolve()): 96 * 3, str(search.resolve()): 120 * 3}
    front = run_query("SELECT count(*) AS n FROM pareto", every)["n"].item()
    assert front > 0
    plan = run_query("EXPLAIN SELECT * FROM rows", [sweep])
    assert len(plan) >= 1


def test_the_sandbox_is_locked_for_internal_callers_too(small_runs):
    _, sweep, _ = small_runs
    con = connect([sweep])
    assert con.execute("SELECT current_setting('enable_external_access')").fetchone()[0] \
        is False
    with pytest.raises(Exception, match="locked"):
        con.execute("SET enable_external_access = true")


@pytest.mark.parametrize("argv", [
    ["query", "SELECT '${oc.env:HOME}' AS x"],
    ["query", "sql=SELECT '${oc.env:HOME}' AS x"],
    ["query", "sql=\"SELECT '${oc.env:HOME}' AS x\""],
    ["query", "sql=SELECT 1 AS a, '${hydra:runtime.cwd}' AS x"],
    ["query", "limit=5", "SELECT '${oc.env:HOME}' AS x"],
])
def test_sql_is_taken_verbatim_never_interpolated(small_runs, argv, capsys, monkeypatch,
                                                  tmp_path):
    _, sweep, _ = small_runs
    monkeypatch.setenv("HOME", "/home/secret-home")
    monkeypatch.chdir(tmp_path)
    main([*argv, f"run={sweep}"])
    out = capsys.readouterr().out
    assert "secret-home" not in out and str(tmp_path) not in out
    assert "${oc.env:HOME}" in out or "${hydra:runtime.cwd}" in out


# A nested-loop join of 10^12 pairs: seconds of CPU per 10^9, little memory.
_LONG = "SELECT count(*) AS n FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = 7"
_RECURSIVE = ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) "
              "SELECT count(*) FROM t")
# 4 * 10^10 sorted pairs: far more than any memory limit.
_HUGE = "SELECT a.range AS i, b.range AS j FROM range(200000) a, range(200000) b ORDER BY i DESC"


@pytest.mark.parametrize("sql", [_LONG, _RECURSIVE])
def test_a_query_past_its_time_limit_stops_and_leaves_nothing_running(small_runs, sql):
    _, sweep, _ = small_runs
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^query stopped after timeout_s=1 s; set timeout_s="):
        run_query(sql, [sweep], timeout_s=1)
    assert time.perf_counter() - start < 5
    cpu = time.process_time()
    time.sleep(0.5)  # no DuckDB thread keeps working after the query was stopped
    assert time.process_time() - cpu < 0.1


def test_a_query_past_its_memory_limit_stops_in_one_line(small_runs):
    _, sweep, _ = small_runs
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^query stopped: it needs more than "
                                         r"memory_limit=100MB; set memory_limit="):
        run_query(_HUGE, [sweep], timeout_s=30, memory_limit="100MB")
    assert time.perf_counter() - start < 10


def test_the_default_limits_hold_and_the_cli_process_ends_at_its_limit(small_runs, tmp_path):
    _, sweep, _ = small_runs
    con = connect([sweep])
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.close()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_bytes(None) == int(ram * MEMORY_SHARE) and MEMORY_SHARE == 0.25
    assert limit.endswith("GiB") and float(limit.split()[0]) * 2**30 <= 0.26 * ram
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "dse.cli", "query", _RECURSIVE, f"run={sweep}",
                          "timeout_s=1"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("error: query stopped after timeout_s=1 s")
    assert time.perf_counter() - start < 15
