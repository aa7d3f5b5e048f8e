"""dse calibrate: refit the global efficiency factors on measured results."""

from __future__ import annotations

from omegaconf import DictConfig

from dse.cli.common import fail


def run(cfg: DictConfig) -> None:
    import dataclasses

    from dse.analysis import validate as val
    from dse.analysis.calibration import fit
    from dse.analysis.report_text import print_rows
    from dse.evaluator.efficiency import DEFAULT

    try:
        cases, _ = val.load_cases(cfg.data or val.DATA)
    except ValueError as err:
        fail(str(err))
    if cfg.spread:
        from dse.analysis.calibration import fold_fits
        from dse.analysis.robust import save_spread

        print(f"-> {save_spread(fold_fits(cases, 'chip'))}: the leave-one-chip-out fits")
        return
    eff = fit(cases)
    before, after = val.summary(val.validate(cases)), val.summary(val.validate(cases, eff))
    print_rows("global efficiency factors", [
        dict(factor=f.name, current=getattr(DEFAULT, f.name), fitted=getattr(eff, f.name))
        for f in dataclasses.fields(eff)])
    print_rows("median absolute error", [
        dict(regime=k, current=f"{100 * before[k]:.1f}%", fitted=f"{100 * after.get(k, 0):.1f}%")
        for k in before])
