"""`dse <verb> key=value ...`: Hydra override grammar, one verb per pipeline stage."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from collections.abc import Callable

import hydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dse.cli_checks import check_command, one_line
from dse.presets import CONF_DIR
from dse.schema import register

__all__ = ["main"]

_USAGE = """usage: dse <verb> [key=value ...] [--json]

verbs:
  predict   one chip on one workload scenario: throughput, latency, cost, power
  explain   predict, plus the per-operator table (FLOP, bytes, intensity, time, bound)
  sweep     a design space x a niche's scenarios on Ray -> Parquet under outputs/
  search    Optuna Pareto search of a niche's design space (NSGA-II, TPE, random, QMC) on Ray
  query     read-only SQL (DuckDB) over a run's Parquet rows: dse query "SELECT ..." [run=...]
  rank      a niche's feasible candidates ranked, Pareto front marked, real chips placed
  report    PNG figures and one HTML page for a run (fronts, rooflines, niches, sensitivity)
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
  dse query "SELECT niche, count(*) FROM rows GROUP BY niche" run=all
  dse rank niche=hyperscale by=throughput_per_usd top=20
  dse explain run=outputs/<run> candidate=1234 scenario=llama3-70b-int4
"""


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _guarded(task: Callable[[DictConfig], None]) -> Callable[[DictConfig], None]:
    """``task`` with bad input (a ValueError, a file it cannot read or write, a config key
    that is not there) turned into one line and exit 2 instead of Hydra's traceback."""

    def run(cfg: DictConfig) -> None:
        try:
            task(cfg)
        except ValueError as err:
            _fail(str(err).splitlines()[0])
        except OSError as err:
            _fail(f"{err.filename or ''}: {err.strerror or err}".lstrip(": "))
        except OmegaConfBaseException as err:
            _fail(one_line(err))

    return run


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


def _json_safe(out: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _run_candidate(cfg: DictConfig) -> tuple[dict, object, dict]:
    """(chip, workload, scenario) of candidate ``cfg.candidate`` of run ``cfg.run``, on the
    run's niche scenario ``cfg.scenario_name`` (default: the niche's first)."""
    import dataclasses

    from dse.query import resolve_runs, run_query
    from dse.ranking import load_niche
    from hwspace.spec import nest_config

    run = resolve_runs(cfg.run)[0]
    name = OmegaConf.load(run / ".hydra" / "config.yaml").niche.name
    niche = load_niche(run, name)
    found = run_query(f"SELECT * FROM rows WHERE candidate_id = {int(cfg.candidate)} LIMIT 1",
                      [run])
    if found.empty:
        raise ValueError(f"run {run} has no candidate {cfg.candidate}")
    row = found.iloc[0]
    columns = list(found.columns)
    params = {c: row[c] for c in columns[columns.index("phase") + 1:columns.index("fits")]}
    chips = int(params.pop("chips", 1))
    wanted = cfg.scenario_name or niche.scenarios[0].name
    ns = next((n for n in niche.scenarios if n.name == wanted), None)
    if ns is None:
        raise ValueError(f"scenario_name={wanted!r}: the niche's scenarios are "
                         f"{', '.join(n.name for n in niche.scenarios)}")
    scenario = dict(dataclasses.asdict(ns.scenario), chips=chips, tpot_slo_s=ns.tpot_slo_s,
                    ttft_slo_s=ns.ttft_slo_s)
    chip = {**nest_config(params), "name": f"candidate {cfg.candidate} of {run.name}"}
    return chip, ns.workload, {k: v for k, v in scenario.items() if v is not None}


def _predict(cfg: DictConfig) -> None:
    from dse import api
    from dse.report_text import print_prediction, print_rows

    chip = cfg.chip_file or _plain(cfg.chip)  # a dict: load_chip names unknown fields
    workload = OmegaConf.to_object(cfg.workload)
    scenario = {k: v for k, v in _plain(cfg.scenario).items() if v is not None}
    scenario.update({k: v for k, v in _plain(cfg.system).items()
                     if v is not None or k == "max_num_seqs"})  # null: no scheduler cap
    if cfg.candidate is not None:
        try:
            chip, workload, scenario = _run_candidate(cfg)
        except ValueError as err:
            _fail(str(err))
    try:
        if cfg.explain:
            out, rows = api.explain(chip, workload, **scenario)
        else:
            out, rows = api.predict(chip, workload, **scenario), None
    except ValueError as err:
        _fail(str(err))
    if cfg.output == "json":
        doc = dict(out, operators=rows) if rows is not None else out
        print(json.dumps(_json_safe(doc), indent=2))
        return
    name = chip if isinstance(chip, str) else (chip["name"] if isinstance(chip, dict)
                                                 else chip.name)
    wname = workload if isinstance(workload, str) else workload.name
    title = f"{name} | {wname} | " + ", ".join(f"{k}={v}" for k, v in scenario.items())
    print_prediction(title, out)
    if rows is not None:
        print_rows("operators of the chosen split (per chip; time over all instances)", rows)


def _run_folder(cfg: DictConfig, verb: str) -> tuple[Path, DictConfig]:
    """(run folder, the config the run is made of): a new Hydra run folder and this config,
    or, with resume=<folder>, that folder and the config it saved."""
    from hydra.core.hydra_config import HydraConfig

    if not cfg.resume:
        return Path(HydraConfig.get().runtime.output_dir), cfg
    run_dir = Path(cfg.resume)
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.exists():
        _fail(f"resume={cfg.resume}: not a {verb} run folder (no .hydra/config.yaml)")
    base = OmegaConf.load(saved)
    if verb not in base:
        kind = next((k for k in ("sweep", "search") if k in base), None)
        _fail(f"resume={cfg.resume}: not a {verb} run folder"
              + (f" (a {kind} run: dse {kind} resume=...)" if kind else ""))
    return run_dir, base


def _sweep(cfg: DictConfig) -> None:
    from dse import sweep
    from dse.report_text import print_top

    run_dir, base = _run_folder(cfg, "sweep")
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


def _search(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dse.niche import parse_niche
    from dse.search import check_storage, make_search_job, run_search
    from dse.search_summary import print_front_summary
    from dse.workers import RayEvaluator, ray_session
    from hwspace.space import parse_space

    run_dir, base = _run_folder(cfg, "search")
    if cfg.resume and any(o.startswith("search.trials=")
                          for o in HydraConfig.get().overrides.task):
        base.search.trials = cfg.search.trials  # resume may extend the study
    s = base.search
    try:
        check_storage(s.storage)
        niche = parse_niche(_plain(base.niche))
        job = make_search_job(parse_space(_plain(base.space)), niche, s.trials, s.population,
                              s.sampler, s.seed)
        with ray_session(cfg.ray.address, cfg.ray.num_cpus):
            manifest = run_search(job, run_dir, RayEvaluator([niche]), storage=s.storage,
                                  resume=bool(cfg.resume))
    except ValueError as err:
        _fail(str(err))
    print(f"{manifest['trials']:,} trials ({manifest['rows']:,} rows), front of "
          f"{manifest['front']}, {manifest['seconds']:.1f} s -> {run_dir}")
    import pandas as pd

    front = pd.read_parquet(run_dir / "pareto.parquet")
    from dse.report_text import print_rows

    if not front.empty:
        free = [p.name for p in job.space.params if p.is_range or len(p.choices) > 1]
        shown = ["trial", *[c for c, _ in niche.objectives], *free, "peak_tflops",
                 "mem_bw_tb_s", "mem_capacity_gb", "bytes_per_flop"]
        print_rows(f"{niche.name}: best of the Pareto front",
                   front[shown].head(cfg.top).to_dict("records"))
    print_front_summary(niche.name, front)


_SQL: list[str] = []  # dse query's positional SQL (Hydra's override grammar cannot carry it)


def _query(cfg: DictConfig) -> None:
    from dse.query import resolve_runs, run_query
    from dse.report_text import print_rows

    sql = cfg.sql or (_SQL[0] if _SQL else None)
    if not sql:
        _fail('give the SQL: dse query "SELECT ... FROM rows" [run=<folder>|all] [out=<file>]')
    try:
        frame = run_query(sql, resolve_runs(cfg.run))
    except ValueError as err:
        _fail(str(err))
    if cfg.out:
        out = Path(cfg.out)
        if out.suffix not in (".csv", ".parquet"):
            _fail(f"out={cfg.out}: write .csv or .parquet")
        frame.to_csv(out, index=False) if out.suffix == ".csv" else frame.to_parquet(out)
        print(f"{len(frame):,} rows -> {out}")
        return
    print_rows(f"{len(frame):,} rows" + (f" (first {cfg.limit})" if len(frame) > cfg.limit
                                         else ""), frame.head(cfg.limit).to_dict("records"))


def _rank(cfg: DictConfig) -> None:
    from dse.query import resolve_runs, run_query
    from dse.ranking import load_niche, rank, reference_chips
    from dse.report_text import print_rows

    try:
        runs = resolve_runs(cfg.run)
        niches = run_query("SELECT DISTINCT niche, run FROM rows", runs)
        chosen = cfg.niche.name if cfg.get("niche") else None
        name = chosen or (niches["niche"].iat[0] if niches["niche"].nunique() == 1 else None)
        if name is None:
            raise ValueError(f"these runs hold niches {sorted(niches['niche'].unique())}; "
                             "choose one with niche=")
        mine = [Path(r) for r in niches.loc[niches["niche"] == name, "run"].unique()]
        if not mine:
            raise ValueError(f"no rows of niche {name!r} in {', '.join(map(str, runs))}")
        niche = load_niche(mine[0], name)
        by = cfg.by or niche.objectives[0][0]
        ranked = rank(mine, niche, by, top=0)
        sizes = run_query("SELECT DISTINCT chips FROM rows", mine)["chips"].astype(int).tolist()
        refs = reference_chips(niche, by, sorted(sizes), ranked) if cfg.references else None
    except ValueError as err:
        _fail(str(err))
    shown = ranked.head(cfg.top).reset_index()
    shown["candidate_id"] = shown["candidate_id"].str.rsplit(":", n=1).str[-1]
    shown["pareto"] = shown["pareto"].map({True: "*", False: ""})
    print_rows(f"{name}: top {len(shown)} of {len(ranked):,} feasible candidates by {by} "
               f"(* = Pareto front)", shown.to_dict("records"))
    if refs is not None:
        print_rows(f"real chips on {name}'s scenarios, by {by}: the rank each would take",
                   refs.to_dict("records"))


def _report(cfg: DictConfig) -> None:
    from dse.query import resolve_runs
    from dse.report import write_report

    try:
        runs = resolve_runs(cfg.run)
        out = Path(cfg.out) if cfg.out else (
            runs[0] / "report" if len(runs) == 1 else runs[0].parent / "report")
        page = write_report(runs, out, list(cfg.chips))
    except ValueError as err:
        _fail(str(err))
    print(f"-> {page} and its PNG files")


def _validate(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dse import validate as val
    from dse.calibration import CV_KEYS, leave_one_out
    from dse.plots import predicted_vs_measured
    from dse.report_text import print_rows

    if cfg.cv not in (None, "all", *CV_KEYS):
        _fail(f"cv must be null, all, {' or '.join(CV_KEYS)}; got {cfg.cv!r}")
    try:
        cases, unmapped = val.load_cases(cfg.data or val.DATA)
    except ValueError as err:
        _fail(str(err))
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
    "search": ("search", _search, []),
    "query": ("query", _query, []),
    "rank": ("rank", _rank, []),
    "report": ("report", _report, []),
    "validate": ("validate", _validate, []),
    "calibrate": ("calibrate", _calibrate, []),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_USAGE)
        return
    verb, rest = argv[0], argv[1:]
    _SQL.clear()
    if verb == "query" and rest and "=" not in rest[0].split(" ", 1)[0]:
        _SQL.append(rest.pop(0))
    if verb not in _VERBS:
        _fail(f"unknown verb {verb!r}; verbs: {', '.join(_VERBS)}")
    config_name, task, extra = _VERBS[verb]
    flags = {"--json": "output=json", "--explain": "explain=true"}
    overrides = [flags.get(a, a) for a in rest] + extra
    resume = [a.split("=", 1)[1] for a in rest if a.startswith("resume=")]
    if verb in ("sweep", "search") and resume and resume[0] not in ("", "null"):
        # Finish in the original folder; keep its saved config as it was.
        overrides += [f"hydra.run.dir={resume[0]}", "hydra.output_subdir=null"]
    register()
    try:
        check_command(verb, config_name, overrides)
    except ValueError as err:
        _fail(str(err))
    # Hydra's own flags (--multirun, --cfg job, ...) go first: argparse cannot read
    # overrides on both sides of them.
    hydra_flags = [a for a in overrides if a.startswith("-")]
    sys.argv = [f"dse {verb}", *hydra_flags, *[a for a in overrides if not a.startswith("-")]]
    hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(_guarded(task))()


if __name__ == "__main__":
    main()
