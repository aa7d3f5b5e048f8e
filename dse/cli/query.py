"""dse query: read-only SQL over a run's rows, within a time and a memory limit."""

from __future__ import annotations

import re
from pathlib import Path

from omegaconf import DictConfig

from dse.cli.common import announce, fail, verbatim
from dse.pipeline.runs import whole_number

# The SQL of `dse query "<SQL>"` or `dse query sql=<SQL>`, as typed: taken out of the command
# line before Hydra, whose grammar cannot carry SQL and would resolve a ${...} in it.
SQL: list[str] = []
_SQL_KEY = re.compile(r"^\+{0,2}sql=")


def take_sql(rest: list[str]) -> list[str]:
    """``rest`` (the words after ``dse query``) without the SQL, which goes to ``SQL``
    verbatim: the first word that is no ``key=value`` and no flag, or a ``sql=`` word (one
    pair of outer quotes, Hydra's string quoting, dropped)."""
    SQL.clear()
    rest = list(rest)
    plain = [w for w in rest if not w.startswith("-") and "=" not in w.split(" ", 1)[0]]
    if plain:
        SQL.append(plain[0])
        rest.remove(plain[0])
    for word in [w for w in rest if _SQL_KEY.match(w)]:
        rest.remove(word)
        text = _SQL_KEY.sub("", word)
        quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""
        SQL[:] = [text[1:-1] if quoted else text]
    return rest


def run(cfg: DictConfig) -> None:
    from dse.analysis.query import resolve_runs, run_query
    from dse.analysis.report_text import print_rows

    sql = SQL[0] if SQL else verbatim(cfg, "sql")
    if not sql:
        fail('give the SQL: dse query "SELECT ... FROM rows" [run=<folder>|all] [out=<file>]')
    limit = whole_number("limit", cfg.limit)
    try:
        runs = resolve_runs(verbatim(cfg, "run"))
        frame = run_query(str(sql), runs, timeout_s=_seconds(cfg.timeout_s),
                          memory_limit=verbatim(cfg, "memory_limit"))
    except ValueError as err:
        fail(str(err))
    announce(runs)
    if cfg.out:
        out = Path(verbatim(cfg, "out"))
        if out.suffix not in (".csv", ".parquet"):
            fail(f"out={out}: write .csv or .parquet")
        frame.to_csv(out, index=False) if out.suffix == ".csv" else frame.to_parquet(out)
        print(f"{len(frame):,} rows -> {out}")
        return
    print_rows(f"{len(frame):,} rows" + (f" (first {limit})" if len(frame) > limit else ""),
               frame.head(limit).to_dict("records"))


def _seconds(value: object) -> float:
    """timeout_s as a number; ValueError (one line) for text, a bool or NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"timeout_s={value}: give a number of seconds > 0")
    return float(value)
