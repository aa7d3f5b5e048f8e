"""dse report: PNG figures, an HTML page and an interactive Pareto page for a run."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from dse.cli.common import announce, fail, verbatim


def run(cfg: DictConfig) -> None:
    from dse.analysis.query import resolve_runs
    from dse.analysis.report import write_report

    try:
        runs = resolve_runs(verbatim(cfg, "run"))
        out = Path(verbatim(cfg, "out")) if cfg.out else (
            runs[0] / "report" if len(runs) == 1 else runs[0].parent / "report")
        page = write_report(runs, out, list(cfg.chips))
    except ValueError as err:
        fail(str(err))
    announce(runs)
    print(f"-> {page}, {page.with_name('interactive.html').name} and their PNG files")
