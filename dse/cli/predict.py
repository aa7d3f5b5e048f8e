"""dse predict / dse explain: one chip on one workload scenario, optionally per operator."""

from __future__ import annotations

import contextlib
import json
import math
import sys

from omegaconf import DictConfig, OmegaConf

from dse.cli.common import announce, fail, json_safe, plain


def _run_candidate(cfg: DictConfig) -> tuple[dict, object, dict, object]:
    """(chip, workload, scenario, economics) of candidate ``cfg.candidate`` of run
    ``cfg.run``, on the run's niche scenario ``cfg.scenario_name`` (default: the niche's
    first), in the niche's economic view (its rows' costs)."""

    from dse.analysis.query import newest_run, resolve_runs, run_query
    from dse.analysis.ranking import load_niche
    from hwspace.spec import nest_config

    run = resolve_runs(cfg.run)[0] if cfg.run else newest_run(
        scenario=cfg.scenario_name, candidate=int(cfg.candidate))
    name = OmegaConf.load(run / ".hydra" / "config.yaml").niche.name
    niche = load_niche(run, name)
    found = run_query(f"SELECT * FROM rows WHERE candidate_id = {int(cfg.candidate)} LIMIT 1",
                      [run])
    if found.empty:
        raise ValueError(f"run {run} has no candidate {cfg.candidate}")
    announce([run])
    row = found.iloc[0]
    columns = list(found.columns)
    params = {c: row[c] for c in columns[columns.index("phase") + 1:columns.index("fits")]}
    chips = int(params.pop("chips", 1))
    wanted = cfg.scenario_name or niche.scenarios[0].name
    ns = next((n for n in niche.scenarios if n.name == wanted), None)
    if ns is None:
        raise ValueError(f"scenario_name={wanted!r}: the niche's scenarios are "
                         f"{', '.join(n.name for n in niche.scenarios)}")
    chip = {**nest_config(params), "name": f"candidate {cfg.candidate} of {run.name}"}
    return chip, ns.workload, ns.predict_inputs(chips), niche.economics


def _warn_cut_batch(out: dict) -> None:
    """One line on stderr where the system serves fewer sequences than asked."""
    asked = out.get("batch_asked")
    if isinstance(asked, float) and math.isfinite(asked) and out["batch"] < asked:
        print(f"warning: batch {asked:g} asked, {out['batch']:g} served "
              f"({out['batch_limit'] or 'capacity'})", file=sys.stderr)


# The settings a serve title names: batch, training and speculation keys do not apply.
_SERVE_TITLE = ("phase", "request_rate", "trace", "prompt_len", "gen_len", "n_requests",
                "weights", "activations", "kv_cache", "chips", "ttft_slo_s", "tpot_slo_s",
                "max_num_seqs")
# Units of the serve outputs (dse.serving.SERVE_OUTPUTS) by the end of their names.
_SERVE_UNITS = (("_per_usd", "req/s/USD"), ("_per_w", "req/s/W"), ("throughput_per_s", "tok/s"),
                ("_per_s", "req/s"), ("_s", "s"), ("_usd", "USD"), ("_w", "W"))


def _print_served(title: str, out: dict) -> None:
    """The SLO figures of phase serve, one row each with its unit."""
    from dse.analysis.report_text import print_rows

    def unit(key: str) -> str:
        return next((u for end, u in _SERVE_UNITS if key.endswith(end)), "")

    print_rows(title, [dict(output=k, value=v, unit=unit(k)) for k, v in out.items()])


# numba's array library asks for a BLAS when numba first compiles or loads a kernel
# (numba/np/arraymath.py _check_blas: import scipy.linalg.cython_blas), and importing
# scipy.linalg costs 0.15-0.45 s, a third of `dse predict` (issue 20): scipy's array-API layer
# imports numpy.f2py. No evaluator kernel calls a BLAS (tests/dse/test_cli_direct.py checks
# dse/evaluator and dse/serving.py for np.dot, matmul and np.linalg), so this process tells
# numba there is none, as numba itself does where scipy is missing.
_BLAS = "scipy.linalg.cython_blas"


@contextlib.contextmanager
def _numba_without_blas():
    blocked = _BLAS not in sys.modules and "numba.np.arraymath" not in sys.modules
    if blocked:
        sys.modules[_BLAS] = None  # importlib: "import of ... halted", an ImportError
    try:
        yield
    finally:
        if blocked and sys.modules.get(_BLAS, "") is None:
            del sys.modules[_BLAS]  # later imports of scipy.linalg work as before


def run(cfg: DictConfig) -> None:
    from dse import api

    # Every input was checked against its schema before Hydra ran (dse.cli.checks); api
    # resolves them again into the evaluator's objects.
    chip = cfg.chip_file or plain(cfg.chip)
    workload = OmegaConf.to_object(cfg.workload)
    scenario = {k: v for k, v in plain(cfg.scenario).items() if v is not None}
    scenario.update({k: v for k, v in plain(cfg.system).items()
                     if v is not None or k == "max_num_seqs"})  # null: no scheduler cap
    economics = plain(cfg.economics)
    # system.max_num_seqs and scenario.max_num_batched_tokens are the engine's unless given
    # (conf/config.yaml): passed as given, they win over it in api.predict.
    engine = plain(cfg.engine)
    if cfg.candidate is not None:
        try:
            chip, workload, scenario, economics = _run_candidate(cfg)
        except ValueError as err:
            fail(str(err))
    try:
        with _numba_without_blas():
            if cfg.explain:
                out, rows = api.explain(chip, workload, economics=economics, engine=engine,
                                        **scenario)
            else:
                out, rows = api.predict(chip, workload, economics=economics, engine=engine,
                                        **scenario), None
    except ValueError as err:
        fail(str(err))
    _warn_cut_batch(out)
    if cfg.output == "json":
        doc = dict(out, operators=rows) if rows is not None else out
        print(json.dumps(json_safe(doc), indent=2))
        return
    from dse.analysis.report_text import print_prediction, print_rows  # rich: text only

    name = chip if isinstance(chip, str) else (chip["name"] if isinstance(chip, dict)
                                                 else chip.name)
    wname = workload if isinstance(workload, str) else workload.name
    serving = scenario.get("phase") == "serve"
    shown = {k: v for k, v in scenario.items() if not serving or k in _SERVE_TITLE}
    title = f"{name} | {wname} | engine={engine['name']} | " + ", ".join(
        f"{k}={v}" for k, v in shown.items())
    if serving:
        _print_served(title, out)
    else:
        print_prediction(title, out)
    if rows is not None:
        print_rows("operators of the chosen split (per chip; time over all instances)", rows)
