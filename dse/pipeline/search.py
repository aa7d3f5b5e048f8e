"""dse search: an Optuna multi-objective search of a niche's design space, on Ray.

The space's ranges become Optuna distributions once; each generation is asked as a batch,
evaluated as vectorised chunks, told with its constraints (``trial.set_constraint``: <= 0
feasible; infeasible trials are kept), and written as Parquet rows (the sweep's columns plus
``trial`` and ``generation``). The study lives in a journal file in the run folder (or any
Optuna storage URL), so ``dse search resume=<run folder>`` continues it.

What optuna-dashboard shows: the objectives by name (``study.set_metric_names``), each
trial's constraints as the list it reads (system attribute ``constraints``; the names in the
study's user attribute ``constraint_names``), and only real objective values: a design
that misses a constraint but runs is told its values (COMPLETE, infeasible); one whose
objective does not exist (a scenario it cannot run) is told PRUNED with its constraints.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from dse import __version__
from dse.pipeline.niche import Niche, candidate_scores, score_columns
from dse.pipeline.pareto import hypervolume_2d, minimised, pareto_mask, reference_point
from dse.pipeline.rows import evaluate_rows
from dse.pipeline.runs import (
    ctrl_c_kept,
    now,
    refuse_existing,
    running_manifest,
    stop_run,
    whole_number,
)
from dse.pipeline.store import JOURNAL, RunStore, chunk_path, write_chunk
from dse.pipeline.workers import RayEvaluator, ray_session
from hwspace.derived import headline
from hwspace.space import Space
from hwspace.spec import python_value

__all__ = ["SAMPLERS", "FINISHED", "SearchJob", "make_search_job", "distributions",
           "run_search", "check_storage", "check_storage_free", "LocalEvaluator", "front_table",
           "open_studies", "constraint_names"]

Evaluate = Callable[[dict[str, np.ndarray], np.ndarray], pa.Table]
STUDY = "dse-search"
# Trials a study holds for good: COMPLETE (feasible or not) and PRUNED (no objective value).
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
CONSTRAINTS_KEY = "constraints"  # optuna-dashboard reads a trial's constraints here, as a list


def _nsga2(seed: int | None, population: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)


SAMPLERS: dict[str, Callable[[int | None, int], optuna.samplers.BaseSampler]] = {
    "nsga2": _nsga2,
    "tpe": lambda seed, _: optuna.samplers.TPESampler(seed=seed, multivariate=True),
    "random": lambda seed, _: optuna.samplers.RandomSampler(seed=seed),
    "qmc": lambda seed, _: _qmc(seed),
}


def _qmc(seed: int | None) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():  # chosen explicitly: Optuna's "experimental" note is noise
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, scramble=True,
                                          warn_independent_sampling=False)


@dataclass(frozen=True)
class SearchJob:
    space: Space
    niche: Niche
    trials: int  # total trials of the study
    population: int  # trials asked, evaluated and told together (a generation)
    sampler: str
    seed: int | None = 0


def make_search_job(space: Space, niche: Niche, trials: int, population: int, sampler: str,
                    seed: int | None) -> SearchJob:
    """A validated job: every setting error surfaces here, before Ray or Optuna start."""
    if sampler not in SAMPLERS:
        raise ValueError(f"search.sampler: unknown {sampler!r}; allowed: {', '.join(SAMPLERS)}")
    trials = whole_number("search.trials", trials)
    population = whole_number("search.population", population)
    seed = None if seed is None else whole_number("search.seed", seed, low=0)
    if not distributions(space):
        raise ValueError(f"space {space.name}: every parameter is fixed; nothing to search")
    return SearchJob(space, niche, trials, population, sampler, seed)


def distributions(space: Space) -> dict[str, BaseDistribution]:
    """Optuna distributions of the space's free parameters (the fixed ones are constants)."""
    out: dict[str, BaseDistribution] = {}
    for p in space.params:
        if p.is_range:
            kind = IntDistribution if p.integer else FloatDistribution
            low, high = (int(p.low), int(p.high)) if p.integer else (p.low, p.high)
            step = None if p.step is None else (int(p.step) if p.integer else p.step)
            out[p.name] = kind(low, high, log=p.log, step=step) if step else kind(
                low, high, log=p.log)
        elif len(p.choices) > 1:
            out[p.name] = CategoricalDistribution([python_value(c) for c in p.choices])
    return out


def _columns(space: Space, trials: list[optuna.trial.BaseTrial]) -> dict[str, np.ndarray]:
    cols = {}
    for p in space.params:
        if p.name in trials[0].params:
            cols[p.name] = np.array([t.params[p.name] for t in trials])
        else:
            cols[p.name] = np.repeat(np.asarray(p.choices[:1]), len(trials))
    return cols


class LocalEvaluator:
    """Evaluates candidates in this process (small searches, benchmarks)."""

    def __init__(self, niche: Niche):
        self._niches = (niche,)

    def __call__(self, params: dict[str, np.ndarray], ids: np.ndarray) -> pa.Table:
        return evaluate_rows(params, ids, self._niches)


def check_storage(url: str | None) -> None:
    """ValueError unless ``url`` is None (a journal file in the run folder) or an Optuna
    storage URL whose database driver is installed; checked before Ray starts."""
    if url is None:
        return
    try:
        make_url(str(url)).get_dialect()
    except (ArgumentError, NoSuchModuleError, ImportError) as err:
        raise ValueError(f"search.storage={url!r}: not a usable Optuna storage URL "
                         f"(e.g. sqlite:///study.db, postgresql://host/db; null: a journal "
                         f"file in the run folder): {str(err).splitlines()[0]}") from None


def check_storage_free(url: str) -> None:
    """ValueError when the storage at ``url`` holds the study of a search already (a new
    search there would end in Optuna's DuplicatedStudyError); names that search's folder."""
    check_storage(url)
    try:
        owner = optuna.load_study(study_name=STUDY, storage=url).user_attrs.get("run_dir")
    except KeyError:  # no such study: the storage is free
        return
    except (SQLAlchemyError, ImportError) as err:
        raise ValueError(f"search.storage={url!r}: cannot open it: "
                         f"{str(err).splitlines()[0]}") from None
    raise ValueError(f"search.storage={url}: holds the study of another search"
                     + (f" ({owner}): continue it with `dse search resume={owner}`"
                        if owner else "") + " or give another storage")


def _storage(url: str | None, run_dir: Path):
    if url:
        return url
    return JournalStorage(JournalFileBackend(str(run_dir / JOURNAL)))


def open_studies(job: SearchJob, run_dir: Path, storage: str | None,
                 resume: bool) -> tuple[optuna.Study, optuna.Study]:
    """(study of record, working study). The record lives in the journal file or the given
    storage; the sampler asks and tells in an in-memory copy, and each finished generation
    is appended to the record (one write per trial instead of one per parameter and
    constraint)."""
    directions = ["maximize" if d == "max" else "minimize" for _, d in job.niche.objectives]
    check_storage(storage)
    where = _storage(storage, run_dir)
    try:
        record = optuna.create_study(study_name=STUDY, storage=where, directions=directions,
                                     load_if_exists=resume)
    except DuplicatedStudyError:
        check_storage_free(storage)
    except (SQLAlchemyError, ImportError) as err:
        raise ValueError(f"search.storage={storage!r}: cannot open it: "
                         f"{str(err).splitlines()[0]}") from None
    if "run_dir" not in record.user_attrs:
        record.set_user_attr("run_dir", str(run_dir))
    record.set_user_attr("constraint_names", constraint_names(job.niche))
    work = optuna.create_study(directions=directions,
                               sampler=SAMPLERS[job.sampler](job.seed, job.population))
    for study in (record, work):
        _name_metrics(study, [c for c, _ in job.niche.objectives])
    work.add_trials(record.get_trials(deepcopy=False, states=FINISHED))
    return record, work


def _name_metrics(study: optuna.Study, names: list[str]) -> None:
    with warnings.catch_warnings():  # stable since Optuna 3.2; its "experimental" note is noise
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(names)


def constraint_names(niche: Niche) -> list[str]:
    """The niche's constraints (candidate_scores' columns, each <= 0 feasible) in the order
    a trial's ``constraints`` list holds them: ``fits``, then each scenario's own."""
    names = {"fits": None}
    for ns in niche.scenarios:
        names.update(dict.fromkeys(ns.constraints))
    return list(names)


def _tell(study: optuna.Study, niche: Niche, trials: list, scores: pd.DataFrame) -> None:
    """Tell each trial its constraints and its real objective values: COMPLETE where every
    objective is finite (feasible or not), else PRUNED. PRUNED, not FAIL: TPE ranks PRUNED
    trials by their constraint violation (optuna samplers/_tpe/sampler.py _split_trials) and
    ignores FAIL ones; NSGA-II reads COMPLETE trials only; Pareto fronts hold COMPLETE only."""
    objectives = [c for c, _ in niche.objectives]
    for trial in trials:
        row = scores.loc[trial.number]
        for key in constraint_names(niche):
            trial.set_constraint(key, float(row[key]))
        values = [float(row[c]) for c in objectives]
        if np.isfinite(values).all():
            study.tell(trial, values)
        else:
            study.tell(trial, state=TrialState.PRUNED)


def _for_record(trial: optuna.trial.FrozenTrial, names: list[str]) -> optuna.trial.FrozenTrial:
    """``trial`` with its constraints as the one list optuna-dashboard reads (system
    attribute ``constraints``), which Optuna's samplers read too (``FrozenTrial.constraints``).

    NOTE: ``trial.set_constraint`` stores one attribute per name, which optuna-dashboard
    (through 2026-08, ``_serializer.py``) does not read; ``constraints_func``, which writes
    the list, is deprecated since Optuna 5.0 and taken by NSGA-II and TPE only."""
    copy = deepcopy(trial)
    prefix = f"{CONSTRAINTS_KEY}:"
    kept = {k: v for k, v in trial.system_attrs.items() if not k.startswith(prefix)}
    copy.system_attrs = {**kept, CONSTRAINTS_KEY: [trial.constraints[n] for n in names]}
    return copy


def _recover(record: optuna.Study, job: SearchJob, store: RunStore, evaluate: Evaluate) -> None:
    """After an interruption, trials the record holds without rows are evaluated again
    (deterministic) and written; trials that never reached the record are simply lost."""
    have = _rows_on_disk(store)
    missing = [t for t in record.get_trials(deepcopy=False, states=FINISHED)
               if t.number not in have]
    by_gen: dict[int, list] = {}
    for t in missing:
        by_gen.setdefault(t.number // job.population, []).append(t)
    for gen, trials in sorted(by_gen.items()):
        _write(store, job, evaluate, trials, gen, suffix=f"r{trials[0].number}")


def _rows_on_disk(store: RunStore) -> set[int]:
    return {int(x) for f in store.results_dir.glob("chunk-*.parquet")
            for x in pq.read_table(f, columns=["trial"])["trial"].to_pylist()}


def _evaluate(job: SearchJob, evaluate: Evaluate, trials: list, gen: int) -> pa.Table:
    ids = np.array([t.number for t in trials], dtype=np.int64)
    table = evaluate(_columns(job.space, trials), ids)
    return table.append_column("trial", table["candidate_id"]).append_column(
        "generation", pa.array(np.full(table.num_rows, gen, np.int64)))


def _write(store: RunStore, job: SearchJob, evaluate: Evaluate, trials: list, gen: int,
           suffix: str = "", table: pa.Table | None = None) -> None:
    table = table if table is not None else _evaluate(job, evaluate, trials, gen)
    write_chunk(chunk_path(store.results_dir, gen, suffix), table)


@dataclass
class _Front:
    """Running feasible Pareto front of the study, for the progress display."""

    directions: list[str]
    points: np.ndarray = None  # (n, 2) minimised objectives of feasible trials
    seen: int = 0
    feasible: int = 0

    def add(self, scores: pd.DataFrame, columns: list[str]) -> None:
        ok = scores[scores["feasible"]]
        f = minimised(ok[columns].to_numpy(float), self.directions)
        f = f[np.isfinite(f).all(axis=1)]
        self.points = f if self.points is None else np.vstack([self.points, f])
        self.points = self.points[pareto_mask(self.points)] if len(self.points) else self.points
        self.seen += len(scores)
        self.feasible += len(ok)

    def hypervolume(self) -> float:
        if self.points is None or not len(self.points):
            return 0.0
        return hypervolume_2d(self.points, reference_point(self.directions, self.points))


def run_search(job: SearchJob, run_dir: str | Path, evaluate: Evaluate | None = None, *,
               storage: str | None = None, resume: bool = False, show_progress: bool = True,
               address: str | None = None, num_cpus: int | None = None) -> dict[str, Any]:
    """Ask, evaluate, tell and write generations until the study holds ``job.trials`` trials;
    then write the feasible Pareto front (pareto.parquet) and the manifest. ``evaluate``
    None: on Ray (``address``, ``num_cpus`` as ``ray_session``), started inside the run, so
    that Ctrl-C while Ray starts is recorded too.

    Raises:
        ValueError: a new search into a folder that holds a run or into a storage that holds
            a study already; a search that failed (its manifest says ``failed``, why, and how
            to resume).
        SystemExit(130): on Ctrl-C, after recording the run as interrupted.
    """
    if num_cpus is not None:
        whole_number("ray.num_cpus", num_cpus)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = RunStore(run_dir)
    with store.lock():
        if not resume:
            refuse_existing(store, "search")
        return _run_search(job, store, evaluate, storage, resume, show_progress,
                           (address, num_cpus))


@contextmanager
def _evaluator(evaluate: Evaluate | None, niche: Niche,
               ray_at: tuple[str | None, int | None]) -> Iterator[Evaluate]:
    if evaluate is not None:
        yield evaluate
        return
    with ray_session(*ray_at):
        yield RayEvaluator([niche])


def _run_search(job: SearchJob, store: RunStore, evaluate: Evaluate | None,
                storage: str | None, resume: bool, show_progress: bool,
                ray_at: tuple[str | None, int | None]) -> dict[str, Any]:
    run_dir = store.run_dir
    store.prepare()
    previous = store.read_manifest() if resume else {}
    record, study = open_studies(job, run_dir, storage, resume)
    manifest = running_manifest(
        previous, resume, version=__version__, kind="search", space=job.space.name,
        niche=job.niche.name, sampler=job.sampler, seed=job.seed, population=job.population,
        trials_target=job.trials, rows_expected=job.trials * len(job.niche.scenarios),
        storage=storage or str(run_dir / JOURNAL))
    store.write_manifest(manifest)
    start = time.perf_counter()
    try:
        with ctrl_c_kept(), _evaluator(evaluate, job.niche, ray_at) as ev:
            if resume:
                _recover(record, job, store, ev)
            gen = _generations(job, store, record, study, ev, show_progress)
        pareto = front_table(record, job)
        pareto.to_parquet(run_dir / "pareto.parquet")
    except (Exception, KeyboardInterrupt) as err:
        stop_run(store, manifest, "search", err, dict(
            trials=len(record.get_trials(deepcopy=False)), rows=store.rows_any(),
            seconds=previous.get("seconds", 0) + time.perf_counter() - start))
    manifest.update(status="complete", trials=len(record.get_trials(deepcopy=False)),
                    generations=gen, rows=store.rows_any(), front=len(pareto),
                    seconds=previous.get("seconds", 0) + time.perf_counter() - start,
                    finished=now())
    store.write_manifest(manifest)
    return manifest


def _generations(job: SearchJob, store: RunStore, record: optuna.Study, study: optuna.Study,
                 evaluate: Evaluate, show_progress: bool) -> int:
    """Ask, evaluate, tell and write generations until the study is full; the number of
    generations after the last."""
    dists = distributions(job.space)
    columns = [c for c, _ in job.niche.objectives]
    names = constraint_names(job.niche)
    front = _Front([d for _, d in job.niche.objectives])
    gen = -(-len(study.get_trials(deepcopy=False)) // job.population)  # g: trials g*pop...
    start = time.perf_counter()
    bar = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[info]}"), disable=not show_progress)
    with bar:
        count = len(study.get_trials(deepcopy=False))
        task = bar.add_task("search", total=job.trials, completed=count, info="")
        while (n := min(job.population, job.trials - count)) > 0:
            trials = [study.ask(dists) for _ in range(n)]
            table = _evaluate(job, evaluate, trials, gen)
            scores = candidate_scores(table.select(score_columns(job.niche)).to_pandas(),
                                      job.niche)
            _tell(study, job.niche, trials, scores)
            done = study.get_trials(deepcopy=False)
            record.add_trials([_for_record(done[t.number], names) for t in trials])
            _write(store, job, evaluate, trials, gen, table=table)
            front.add(scores, columns)
            rate = front.seen / max(time.perf_counter() - start, 1e-9)
            count += n
            bar.update(task, completed=count, info=(
                f"gen {gen}  {rate:,.0f} evals/s  feasible {front.feasible / front.seen:.0%}  "
                f"front {len(front.points)}  HV {front.hypervolume():.3g}"))
            gen += 1
    return gen


def front_table(study: optuna.Study, job: SearchJob) -> pd.DataFrame:
    """The feasible Pareto front: trial, objectives, the design's parameters and what they
    imply (peak bf16 TFLOP/s, memory bandwidth and capacity, bytes per FLOP)."""
    best = [t for t in study.best_trials
            if all(v <= 0 for v in t.constraints.values())]
    if not best:
        return pd.DataFrame(columns=["trial", *[c for c, _ in job.niche.objectives]])
    cols = _columns(job.space, best)
    frame = pd.DataFrame({"trial": [t.number for t in best]})
    for k, (column, _) in enumerate(job.niche.objectives):
        frame[column] = [t.values[k] for t in best]
    frame = frame.assign(**cols, **headline(cols))
    return frame.sort_values(job.niche.objectives[0][0],
                             ascending=job.niche.objectives[0][1] == "min")
