"""`dse <verb> key=value ...`: Hydra override grammar, one verb per pipeline stage."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from collections.abc import Callable

import hydra
from omegaconf import DictConfig, OmegaConf

from dse.presets import CONF_DIR
from dse.schema import register

__all__ = ["main"]

_USAGE = """usage: dse <verb> [key=value ...] [--json]

verbs:
  predict   one chip on one workload scenario: throughput, latency, cost, power
  explain   predict, plus the per-operator table (FLOP, bytes, intensity, time, bound)
  sweep     a design space x a niche's scenarios on Ray -> Parquet under outputs/
  validate  the model against measured results of real chips (cv=chip: leave-one-chip-out)
  calibrate refit the global efficiency factors on measured results

examples:
  dse predict chip=h100 workload=llama2-70b scenario.phase=decode scenario.batch=64 system.chips=8
  dse predict chip=a100 workload=gpt2 scenario.phase=decode --json
  dse explain chip=groq-lpu workload=llama2-7b scenario.phase=decode system.chips=64
  dse sweep space=demo niche=local_llm sweep.mode=grid
  dse sweep space=hyperscale niche=hyperscale sweep.samples=1000000 ray.address=auto
  dse sweep resume=outputs/2026-11-24/10-00-00_sweep_local_llm
  dse validate cv=chip
"""


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


def _json_safe(out: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _predict(cfg: DictConfig) -> None:
    from dse import api
    from dse.report_text import print_prediction, print_rows

    chip = cfg.chip_file or OmegaConf.to_object(cfg.chip)
    scenario = {k: v for k, v in _plain(cfg.scenario).items() if v is not None}
    scenario.update({k: v for k, v in _plain(cfg.system).items() if v is not None})
    try:
        if cfg.explain:
            out, rows = api.explain(chip, OmegaConf.to_object(cfg.workload), **scenario)
        else:
            out, rows = api.predict(chip, OmegaConf.to_object(cfg.workload), **scenario), None
    except ValueError as err:
        _fail(str(err))
    if cfg.output == "json":
        doc = dict(out, operators=rows) if rows is not None else out
        print(json.dumps(_json_safe(doc), indent=2))
        return
    name = chip if isinstance(chip, str) else chip.name
    title = f"{name} | {cfg.workload.name} | " + ", ".join(f"{k}={v}" for k, v in scenario.items())
    print_prediction(title, out)
    if rows is not None:
        print_rows("operators of the chosen split (per chip; time over all instances)", rows)


def _sweep(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dse import sweep
    from dse.report_text import print_top

    if cfg.resume:
        run_dir = Path(cfg.resume)
        saved = run_dir / ".hydra" / "config.yaml"
        if not saved.exists():
            _fail(f"resume={cfg.resume}: not a sweep run folder (no .hydra/config.yaml)")
        base = OmegaConf.load(saved)
    else:
        run_dir, base = Path(HydraConfig.get().runtime.output_dir), cfg
    try:
        job = sweep.make_job(_plain(base.space), [_plain(base.niche)], base.sweep.mode,
                             base.sweep.samples, base.sweep.seed, base.sweep.chunk_size)
        manifest = sweep.run_sweep(job, run_dir, address=cfg.ray.address,
                                   num_cpus=cfg.ray.num_cpus, results_dir=base.sweep.results_dir,
                                   resume=bool(cfg.resume), max_in_flight=cfg.sweep.max_in_flight)
    except ValueError as err:
        _fail(str(err))
    print(f"{manifest['rows']:,} rows in {manifest['chunks_done']} chunks, "
          f"{manifest['seconds']:.1f} s -> {manifest['results_dir']}")
    for name, result in sweep.top_table(job, manifest["results_dir"], cfg.top).items():
        print_top(name, result, [c for c, _ in job.niches[0].objectives])


def _validate(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dse import validate as val
    from dse.calibration import leave_one_chip_out
    from dse.plots import predicted_vs_measured
    from dse.report_text import print_rows

    if cfg.cv not in (None, "chip"):
        _fail(f"cv must be null or chip, got {cfg.cv!r}")
    try:
        cases, unmapped = val.load_cases(cfg.data or val.DATA)
    except ValueError as err:
        _fail(str(err))
    frame = leave_one_chip_out(cases) if cfg.cv == "chip" else val.validate(cases)
    kind = "leave-one-chip-out" if cfg.cv == "chip" else "calibrated factors"
    print_rows(f"predicted vs measured ({kind})", [
        dict(id=r.id, chip=r.chip, workload=r.workload, regime=r.regime, metric=r.metric,
             measured=r.measured, predicted=r.predicted, error=f"{100 * r.error:+.0f}%")
        for r in frame.itertuples()])
    if unmapped:
        print_rows("rows that cannot be mapped (kept, not dropped)",
                   [dict(id=u.row_id, chip=u.chip_label, model=u.model, reason=u.reason)
                    for u in unmapped])
    summary = val.summary(frame)
    print_rows("median absolute error", [dict(regime=k, error=f"{100 * v:.1f}%",
                                              rows=int((frame["regime"] == k).sum())
                                              if k != "overall" else len(frame))
                                         for k, v in summary.items()])
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    rows = pd_concat_unmapped(frame, unmapped)
    rows.to_parquet(run_dir / "validation.parquet")
    (run_dir / "summary.json").write_text(json.dumps(dict(kind=kind, **summary), indent=2))
    predicted_vs_measured(frame, run_dir / "validation.png",
                          f"accel-dse vs measured results ({kind}): median error "
                          f"{100 * summary['overall']:.0f}%")
    print(f"-> {run_dir}/validation.parquet, validation.png, summary.json")


def pd_concat_unmapped(frame, unmapped):
    import pandas as pd

    extra = pd.DataFrame([dict(id=u.row_id, chip=u.chip_label, workload=u.model,
                               reason=u.reason) for u in unmapped])
    return pd.concat([frame.assign(reason=""), extra], ignore_index=True)


def _calibrate(cfg: DictConfig) -> None:
    import dataclasses

    from dse import validate as val
    from dse.calibration import fit
    from dse.efficiency import DEFAULT
    from dse.report_text import print_rows

    try:
        cases, _ = val.load_cases(cfg.data or val.DATA)
    except ValueError as err:
        _fail(str(err))
    eff = fit(cases)
    before, after = val.summary(val.validate(cases)), val.summary(val.validate(cases, eff))
    print_rows("global efficiency factors", [
        dict(factor=f.name, current=getattr(DEFAULT, f.name), fitted=getattr(eff, f.name))
        for f in dataclasses.fields(eff)])
    print_rows("median absolute error", [
        dict(regime=k, current=f"{100 * before[k]:.1f}%", fitted=f"{100 * after.get(k, 0):.1f}%")
        for k in before])


_VERBS: dict[str, tuple[str, Callable[[DictConfig], None], list[str]]] = {
    "predict": ("predict", _predict, []),
    "explain": ("predict", _predict, ["explain=true"]),
    "sweep": ("sweep", _sweep, []),
    "validate": ("validate", _validate, []),
    "calibrate": ("calibrate", _calibrate, []),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_USAGE)
        return
    verb, rest = argv[0], argv[1:]
    if verb not in _VERBS:
        _fail(f"unknown verb {verb!r}; verbs: {', '.join(_VERBS)}")
    config_name, task, extra = _VERBS[verb]
    flags = {"--json": "output=json", "--explain": "explain=true"}
    overrides = [flags.get(a, a) for a in rest] + extra
    resume = [a.split("=", 1)[1] for a in rest if a.startswith("resume=")]
    if resume and resume[0] not in ("", "null"):
        # Finish in the original folder; keep its saved config as it was.
        overrides += [f"hydra.run.dir={resume[0]}", "hydra.output_subdir=null"]
    register()
    sys.argv = [f"dse {verb}", *overrides]
    hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(task)()


if __name__ == "__main__":
    main()
