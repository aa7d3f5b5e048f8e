"""dse validate: the model against measured results (in-sample, leave-one-chip-out,
leave-one-vendor-out): the summary first, progress while the folds are fitted."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from dse.cli.common import fail

# Validation kind -> the case attribute each fold holds out (None: fitted factors, no fold).
_FOLDS = {"in-sample": None, "leave-one-chip-out": "chip", "leave-one-vendor-out": "vendor"}
_WANTED = {None: ["in-sample"], "all": list(_FOLDS), "chip": ["leave-one-chip-out"],
           "vendor": ["leave-one-vendor-out"]}


def run(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dse.analysis import validate as val
    from dse.analysis.calibration import CV_KEYS
    from dse.analysis.plots import predicted_vs_measured

    if cfg.cv not in (None, "all", *CV_KEYS):
        fail(f"cv must be null, all, {' or '.join(CV_KEYS)}; got {cfg.cv!r}")
    try:
        cases, unmapped = val.load_cases(cfg.data or val.DATA)
    except ValueError as err:
        fail(str(err))
    frames = _validations(cases, _WANTED[cfg.cv])
    kind = "leave-one-chip-out" if cfg.cv == "all" else _WANTED[cfg.cv][0]
    frame, table = frames[kind], val.regime_table(frames)
    summary = val.summary(frame)
    _print_summary(kind, frame, summary, table, unmapped, cfg.show_unmapped)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    val.with_unmapped(frame, unmapped).to_parquet(run_dir / "validation.parquet")
    (run_dir / "summary.json").write_text(json.dumps(
        dict(kind=kind, **summary, table=table), indent=2))
    predicted_vs_measured(frame, run_dir / "validation.png",
                          f"accel-dse vs measured results ({kind}): median error "
                          f"{100 * summary['overall']:.0f}%")
    print(f"-> {run_dir}/validation.parquet, validation.png, summary.json")


def _validations(cases: list, kinds: list[str]) -> dict:
    """kind -> the predicted-vs-measured frame of each validation in ``kinds``, with a rich
    progress bar on stderr (the folds of a cross-validation take minutes)."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    from dse.analysis import validate as val
    from dse.analysis.calibration import leave_one_out

    steps = {k: 1 if _FOLDS[k] is None else len({getattr(c, _FOLDS[k]) for c in cases})
             for k in kinds}
    frames = {}
    with Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("validate", total=sum(steps.values()))
        for kind in kinds:
            bar.update(task, description=kind)
            if _FOLDS[kind] is None:
                frames[kind] = val.validate(cases)
                bar.advance(task)
                continue
            frames[kind] = leave_one_out(cases, _FOLDS[kind], on_fold=lambda held, k=kind: (
                bar.update(task, advance=1, description=f"{k}: {held} held out")))
    return frames


def _print_summary(kind: str, frame, summary: dict, table: list, unmapped: list,
                   show_unmapped: bool) -> None:
    """The headline and the per-regime table first, then the rows; the unmapped rows only
    when asked for (they are always in validation.parquet, with their reason)."""
    from dse.analysis.report_text import print_rows

    chips = frame["chip"].nunique()
    print(f"{len(frame):,} measured rows over {chips} chips: median absolute error "
          f"{100 * summary['overall']:.1f}% ({kind}); {len(unmapped):,} rows not mapped")
    print_rows("median absolute error", table)
    print_rows(f"predicted vs measured ({kind})", [
        dict(id=r.id, chip=r.chip, workload=r.workload, regime=r.regime, metric=r.metric,
             measured=r.measured, predicted=r.predicted, error=f"{100 * r.error:+.0f}%")
        for r in frame.itertuples()])
    if unmapped and show_unmapped:
        print_rows("rows that cannot be mapped (kept, not dropped)",
                   [dict(id=u.row_id, chip=u.chip_label, model=u.model, reason=u.reason)
                    for u in unmapped])
    elif unmapped:
        print(f"{len(unmapped):,} rows cannot be mapped: show_unmapped=true lists them; "
              f"validation.parquet holds them with their reason")
