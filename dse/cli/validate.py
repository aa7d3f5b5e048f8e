"""dse validate: the model against measured results (in-sample, leave-one-chip-out,
leave-one-vendor-out)."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig

from dse.cli.common import fail


def run(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dse.analysis import validate as val
    from dse.analysis.calibration import CV_KEYS, leave_one_out
    from dse.analysis.plots import predicted_vs_measured
    from dse.analysis.report_text import print_rows

    if cfg.cv not in (None, "all", *CV_KEYS):
        fail(f"cv must be null, all, {' or '.join(CV_KEYS)}; got {cfg.cv!r}")
    try:
        cases, unmapped = val.load_cases(cfg.data or val.DATA)
    except ValueError as err:
        fail(str(err))
    folds = {"in-sample": None, "leave-one-chip-out": "chip", "leave-one-vendor-out": "vendor"}
    wanted = {None: ["in-sample"], "all": list(folds), "chip": ["leave-one-chip-out"],
              "vendor": ["leave-one-vendor-out"]}[cfg.cv]
    frames = {kind: val.validate(cases) if folds[kind] is None
              else leave_one_out(cases, folds[kind]) for kind in wanted}
    kind, frame = next(reversed(frames.items())) if cfg.cv != "all" else (
        "leave-one-chip-out", frames["leave-one-chip-out"])
    print_rows(f"predicted vs measured ({kind})", [
        dict(id=r.id, chip=r.chip, workload=r.workload, regime=r.regime, metric=r.metric,
             measured=r.measured, predicted=r.predicted, error=f"{100 * r.error:+.0f}%")
        for r in frame.itertuples()])
    if unmapped:
        print_rows("rows that cannot be mapped (kept, not dropped)",
                   [dict(id=u.row_id, chip=u.chip_label, model=u.model, reason=u.reason)
                    for u in unmapped])
    table = val.regime_table(frames)
    print_rows("median absolute error", table)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    val.with_unmapped(frame, unmapped).to_parquet(run_dir / "validation.parquet")
    summary = val.summary(frame)
    (run_dir / "summary.json").write_text(json.dumps(
        dict(kind=kind, **summary, table=table), indent=2))
    predicted_vs_measured(frame, run_dir / "validation.png",
                          f"accel-dse vs measured results ({kind}): median error "
                          f"{100 * summary['overall']:.0f}%")
    print(f"-> {run_dir}/validation.parquet, validation.png, summary.json")
