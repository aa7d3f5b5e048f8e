"""`dse <verb> key=value ...`: Hydra override grammar, one module per verb."""

from __future__ import annotations

import sys
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from dse.cli import calibrate, predict, query, rank, report, search, sweep, validate
from dse.cli.checks import check_command
from dse.cli.common import fail, guarded
from dse.cli.schema import register
from dse.pipeline.runs import claim_run_folder
from dse.presets import CONF_DIR

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
  dse explain run=outputs/<run> candidate=1234 scenario_name=llama3-70b-int4
"""


_VERBS: dict[str, tuple[str, Callable[[DictConfig], None], list[str]]] = {
    "predict": ("predict", predict.run, []),
    "explain": ("predict", predict.run, ["explain=true"]),
    "sweep": ("sweep", sweep.run, []),
    "search": ("search", search.run, []),
    "query": ("query", query.run, []),
    "rank": ("rank", rank.run, []),
    "report": ("report", report.run, []),
    "validate": ("validate", validate.run, []),
    "calibrate": ("calibrate", calibrate.run, []),
}


# Hydra's own flags (argparse would answer anything else with its multi-line usage).
_HYDRA_FLAGS = {"--multirun", "-m", "--cfg", "-c", "--resolve", "--package", "-p", "--info",
                "--help", "--hydra-help", "--version"}


_VALUED = {"--cfg": "--cfg", "-c": "--cfg", "--package": "--package", "-p": "--package",
           "--info": "--info"}


def _join_flag_values(args: list[str]) -> list[str]:
    """``--cfg job`` as ``--cfg=job``: its value is no override."""
    out: list[str] = []
    for a in args:
        if out and out[-1] in _VALUED and "=" not in a and not a.startswith("-"):
            out[-1] = f"{_VALUED[out[-1]]}={a}"
        else:
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_USAGE)
        return
    verb, rest = argv[0], _join_flag_values(argv[1:])
    rest = query.take_sql(rest) if verb == "query" else rest
    if verb not in _VERBS:
        fail(f"unknown verb {verb!r}; verbs: {', '.join(_VERBS)}")
    config_name, task, extra = _VERBS[verb]
    flags = {"--json": "output=json", "--explain": "explain=true"}
    unknown = [a for a in rest if a.startswith("-") and a not in flags
               and a.split("=", 1)[0] not in _HYDRA_FLAGS]
    if unknown:
        fail(f"{unknown[0]}: unknown flag; allowed: {', '.join(flags)}, --multirun, --cfg job")
    overrides = [flags.get(a, a) for a in rest] + extra
    resume = [a.split("=", 1)[1] for a in rest if a.startswith("resume=")]
    if verb in ("sweep", "search") and resume and resume[0] not in ("", "null"):
        # Finish in the original folder; keep its saved config as it was.
        overrides += [f"hydra.run.dir={resume[0]}", "hydra.output_subdir=null"]
    register()
    try:
        check_command(verb, config_name, overrides)
        overrides = claim_run_folder(verb, overrides)
    except ValueError as err:
        fail(str(err).splitlines()[0])
    except (TypeError, KeyError, AttributeError, RecursionError) as err:
        # A check that met input of a shape no schema foresaw: still one line, no traceback.
        fail(f"input not understood ({type(err).__name__}: {str(err)[:200]})")
    # Hydra's own flags (--multirun, --cfg job, ...) go first: argparse cannot read
    # overrides on both sides of them.
    hydra_flags = [a for a in overrides if a.startswith("-")]
    sys.argv = [f"dse {verb}", *hydra_flags, *[a for a in overrides if not a.startswith("-")]]
    app = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")
    app(guarded(task))()

