"""dse query is a sandbox: the runs' own Parquet files through the views rows and pareto,
nothing else on the machine, no writes, no extensions, no settings changed."""

from __future__ import annotations

import pytest

from dse.analysis.query import connect, resolve_runs, run_query
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
