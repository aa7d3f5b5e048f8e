"""dse query: read-only SQL over a run's rows."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from dse.cli.common import fail

# The positional SQL of `dse query "<SQL>"` (Hydra's override grammar cannot carry it).
SQL: list[str] = []


def run(cfg: DictConfig) -> None:
    from dse.analysis.query import resolve_runs, run_query
    from dse.analysis.report_text import print_rows

    sql = cfg.sql or (SQL[0] if SQL else None)
    if not sql:
        fail('give the SQL: dse query "SELECT ... FROM rows" [run=<folder>|all] [out=<file>]')
    try:
        frame = run_query(sql, resolve_runs(cfg.run))
    except ValueError as err:
        fail(str(err))
    if cfg.out:
        out = Path(cfg.out)
        if out.suffix not in (".csv", ".parquet"):
            fail(f"out={cfg.out}: write .csv or .parquet")
        frame.to_csv(out, index=False) if out.suffix == ".csv" else frame.to_parquet(out)
        print(f"{len(frame):,} rows -> {out}")
        return
    print_rows(f"{len(frame):,} rows" + (f" (first {cfg.limit})" if len(frame) > cfg.limit
                                         else ""), frame.head(cfg.limit).to_dict("records"))
