"""Runs that never mix and never lie.

A new sweep or search takes only a folder that holds no run, and takes its lock, before Hydra
writes its config there (so a refused run writes nothing); a run that stops (Ctrl-C, a full
disk, a dead worker, any error) says in its manifest why and how to resume; a reading verb says
in one line which run it read and, when the run is not whole, how many rows it holds of how
many expected; a Parquet file that is not one of the run's own is named, not read.
"""

from __future__ import annotations

import re
import signal
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from dse.pipeline.store import MANIFEST, RESULTS, RunStore, hold_lock, lock_held

__all__ = ["WRITERS", "whole_number", "claim_run_folder", "saved_config", "refuse_existing", "now",
           "started_at", "running_manifest", "stop_run", "read_manifest", "check_dataset",
           "describe_run", "run_line", "ctrl_c_kept"]

WRITERS = ("sweep", "search")  # the verbs that write a run folder
# Columns every result file of a run has, whatever its space and niche.
_REQUIRED = ("candidate_id", "niche", "scenario", "fits", "feasible")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _values(overrides: list[str]) -> dict[str, str]:
    """key -> value of ``key=value`` overrides as typed (``+``/``++`` dropped; last wins)."""
    out = {}
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and not o.startswith(("-", "~")):
            out[key.lstrip("+")] = value.strip("'\"")
    return out


def whole_number(key: str, value: object, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int; ValueError (one line: the setting, the value, what is allowed)
    unless it is a whole number in [low, high] (1e6 counts: Hydra reads it as a float)."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < low or (high is not None
                                                              and value > high):
        allowed = f"in [{low:,}, {high:,}]" if high is not None else f">= {low:,}"
        raise ValueError(f"{key}={value}: must be a whole number {allowed}")
    return int(value)


def claim_run_folder(verb: str, overrides: list[str]) -> list[str]:
    """Before Hydra runs ``verb``: ValueError (one line) when a new sweep or search would write
    into a folder that holds a run, or another process writes the folder; otherwise hold the
    folder's lock for the life of this process, so that no second run starts there. Returns
    ``overrides``, with Hydra's time-stamped run folder pinned (``hydra.run.dir=``) so that
    the folder checked and locked is the one Hydra writes."""
    if verb not in WRITERS:
        return overrides
    values = _values(overrides)
    resume = values.get("resume", "null")
    if resume not in ("", "null"):
        saved_config(verb, Path(resume))
        hold_lock(resume)
        return overrides
    storage = values.get("search.storage", "null") if verb == "search" else "null"
    if storage not in ("", "null"):
        from dse.pipeline.search import check_storage_free  # Optuna: only when a URL is given

        check_storage_free(storage)
    results = values.get("sweep.results_dir", "null") if verb == "sweep" else "null"
    if results not in ("", "null") and "${" not in results:
        _refuse_results_dir(verb, Path(results))
    if "--multirun" in overrides or "-m" in overrides:
        _refuse_sweep_dir(values.get("hydra.sweep.dir", ""))
        return overrides
    run_dir = values.get("hydra.run.dir") or _default_run_dir(verb, overrides)
    if "${" in run_dir:
        return overrides
    refuse_existing(RunStore(run_dir), verb)
    hold_lock(run_dir)
    return [*overrides, f"hydra.run.dir={run_dir}"] if "hydra.run.dir" not in values \
        else overrides


def _default_run_dir(verb: str, overrides: list[str]) -> str:
    """The run folder Hydra would make now (conf/<verb>.yaml's time-stamped hydra.run.dir)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from dse.presets import CONF_DIR

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(verb, [o for o in overrides if not o.startswith("-")],
                          return_hydra_config=True)
        return str(cfg.hydra.run.dir)
    except (HydraException, OmegaConfBaseException):
        return "${unknown}"  # Hydra will say what is wrong; no folder to check here


def _refuse_sweep_dir(sweep_dir: str) -> None:
    if sweep_dir and "${" not in sweep_dir and Path(sweep_dir).is_dir() and any(
            Path(sweep_dir).rglob(MANIFEST)):
        raise ValueError(f"hydra.sweep.dir={sweep_dir}: holds runs already; a new multirun "
                         f"would mix with them: choose an empty folder")


def _refuse_results_dir(verb: str, results: Path) -> None:
    taken = results.is_dir() and (any(results.glob("*.parquet"))
                                  or RunStore(results).holds_run())
    if taken:
        raise ValueError(f"sweep.results_dir={results}: holds results of a run already; a new "
                         f"{verb} would mix with them: continue that run with `dse {verb} "
                         f"resume=<its run folder>` or choose an empty folder")


def refuse_existing(store: RunStore, verb: str) -> None:
    """ValueError when ``store``'s folder holds a run: a new run there would mix with it."""
    if store.holds_run():
        raise ValueError(f"{store.run_dir}: holds a run already; a new {verb} would mix with "
                         f"it: continue it with `dse {verb} resume={store.run_dir}` or choose "
                         f"an empty folder")


def saved_config(verb: str, run_dir: Path) -> dict[str, Any]:
    """The config a ``verb`` run in ``run_dir`` saved (.hydra/config.yaml, unresolved);
    ValueError when ``run_dir`` is not such a run."""
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.exists():
        raise ValueError(f"resume={run_dir}: not a {verb} run folder (no .hydra/config.yaml)")
    try:
        base = yaml.safe_load(saved.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{saved}: not readable YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(base, dict) or verb not in base:
        kind = next((k for k in WRITERS if isinstance(base, dict) and k in base), None)
        raise ValueError(f"resume={run_dir}: not a {verb} run folder"
                         + (f" (a {kind} run: dse {kind} resume=...)" if kind else ""))
    return base


def now() -> str:
    """The time stamp of manifests: UTC, ISO 8601, to the millisecond."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def started_at(run: Path) -> datetime:
    """When ``run`` started (its manifest's ``started``; for a manifest without one, the
    manifest file's time), comparable across sweeps and searches."""
    stamp = read_manifest(run).get("started")
    if stamp:
        try:
            when = datetime.fromisoformat(str(stamp))
        except ValueError:
            raise ValueError(f"{run / MANIFEST}: started={stamp!r} is not an ISO 8601 "
                             f"time") from None
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.fromtimestamp((run / MANIFEST).stat().st_mtime, UTC)


def running_manifest(previous: dict[str, Any], resume: bool, **fields: Any) -> dict[str, Any]:
    """The manifest of a run (re)starting: ``previous`` (resumed) updated with ``fields``,
    status ``running``, the first start kept and an earlier stop's reason dropped."""
    manifest = dict(previous, **fields, status="running",
                    started=previous.get("started", now()))
    for key in ("reason", "resume", "stopped"):
        manifest.pop(key, None)
    if resume:
        manifest["resumed"] = now()
    return manifest


def stop_run(store: RunStore, manifest: dict[str, Any], verb: str, err: BaseException,
             progress: dict[str, Any]) -> NoReturn:
    """Record in the manifest that the run stopped (``interrupted`` by Ctrl-C, else
    ``failed``), why, and the command that resumes it; then say so in one line: on stderr
    and SystemExit(130) for Ctrl-C, else as a ValueError."""
    interrupted = isinstance(err, KeyboardInterrupt)
    reason = "Ctrl-C" if interrupted else _reason(err)
    resume = f"dse {verb} resume={store.run_dir}"
    manifest.update(status="interrupted" if interrupted else "failed", reason=reason,
                    resume=resume, stopped=now(), **progress)
    try:
        store.write_manifest(manifest)
    except OSError as why:  # a full disk: the line still says what happened
        reason += f" (and the manifest could not be updated: {why.strerror or why})"
    done = f"{manifest['rows']:,} of {manifest['rows_expected']:,} rows on disk"
    line = f"{verb} {manifest['status']}: {reason}; {done}; resume with: {resume}"
    if interrupted:
        print(line, file=sys.stderr)
        raise SystemExit(130) from None
    raise ValueError(line) from err


def _reason(err: BaseException) -> str:
    """``Type: first line`` of what went wrong; for an error raised in a Ray worker, of the
    worker's own exception (Ray's wrapper names only the task), without colour codes."""
    cause = getattr(err, "cause", None)  # ray.exceptions.RayTaskError
    err = cause if isinstance(cause, BaseException) else err
    text = _ANSI.sub("", str(err)).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def read_manifest(run: Path) -> dict[str, Any]:
    """``run``'s manifest; ValueError naming it when it is missing or not JSON."""
    return RunStore(run).read_manifest()


def _schema(path: Path) -> tuple[int, dict[str, pa.DataType | None]]:
    """(rows, column -> type) of a Parquet file; dictionary columns as their values' type and
    all-null columns as None, which match any type. ValueError naming a file that is not
    whole Parquet."""
    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0]}); "
                         f"move it out of {path.parent}") from None
    types = {}
    for field in schema:
        t = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        types[field.name] = None if pa.types.is_null(t) else (
            pa.string() if pa.types.is_large_string(t) else t)
    return meta.num_rows, types


def _mismatch(reference: dict, other: dict) -> str:
    """What ``other``'s columns lack, add or type otherwise than ``reference``'s ("" if
    nothing)."""
    missing = [c for c in reference if c not in other]
    extra = [c for c in other if c not in reference]
    retyped = [f"{c} is {other[c]}, not {reference[c]}" for c in reference
               if c in other and None not in (other[c], reference[c])
               and other[c] != reference[c]]
    parts = ([f"lacks {', '.join(missing[:5])}"] if missing else []) + (
        [f"adds {', '.join(extra[:5])}"] if extra else []) + retyped[:3]
    return "; ".join(parts)


def check_dataset(run: Path) -> int:
    """Rows of ``run``'s Parquet results; ValueError naming the first file that is not whole
    Parquet or not of the run's own schema (a foreign file, or one of another version)."""
    reference: tuple[Path, dict] | None = None
    rows = 0
    for path in sorted((Path(run) / RESULTS).glob("*.parquet")):
        n, types = _schema(path)
        missing = [c for c in _REQUIRED if c not in types]
        if missing:
            raise ValueError(f"{path}: not a dse result file (no column {', '.join(missing)}); "
                             f"move it out of {path.parent}")
        if reference is None:
            reference = (path, types)
        elif diff := _mismatch(reference[1], types):
            raise ValueError(f"{path}: another schema than {reference[0].name} ({diff}): a "
                             f"file of another run or version; move it out of {path.parent}")
        rows += n
    pareto = Path(run) / "pareto.parquet"
    if pareto.exists():
        _schema(pareto)
    return rows


def _kind_and_niches(run: Path, manifest: dict[str, Any]) -> tuple[str, list[str]]:
    """(sweep | search, niche names) from the manifest, or from the saved config of runs
    whose manifest predates these fields."""
    if "kind" in manifest or "job" in manifest:
        kind = manifest.get("kind", "sweep")
        niches = manifest["job"]["niches"] if kind == "sweep" else [manifest.get("niche")]
        return kind, [str(n) for n in niches]
    try:
        cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        cfg = {}
    kind = next((k for k in WRITERS if k in cfg), "run")
    return kind, [str((cfg.get("niche") or {}).get("name", "?"))]


def _expected(manifest: dict[str, Any]) -> int | None:
    if "rows_expected" in manifest:
        return int(manifest["rows_expected"])
    job = manifest.get("job")  # sweep manifests written before rows_expected
    return int(job["candidates"]) * len(job["scenarios"]) if job else None


def describe_run(run: Path) -> str:
    """``<folder> (kind, niche(s), status, rows)``; a run that is not whole gives its rows
    present of those expected, why it stopped and how to resume it."""
    manifest = read_manifest(run) if (run / MANIFEST).exists() else {}
    kind, niches = _kind_and_niches(run, manifest)
    status = str(manifest.get("status", f"unknown (no {MANIFEST})"))
    if status == "running" and not lock_held(run):
        status = "stopped (no process is writing it: it was killed)"
    rows, expected = check_dataset(run), _expected(manifest)
    head = f"{run} ({kind}, niche {', '.join(niches)}, "
    if status == "complete" and expected in (None, rows):
        return head + f"complete, {rows:,} rows)"
    of = f"{rows:,} of {expected:,} rows" if expected is not None else f"{rows:,} rows"
    why = f"; {manifest['reason']}" if manifest.get("reason") else ""
    stopped = status in ("interrupted", "failed") or status.startswith("stopped")
    resume = f"; resume with: dse {kind} resume={run}" if stopped else ""
    return head + f"{status}: {of}{why}{resume})"


def run_line(runs: list[Path]) -> str:
    """One line naming the runs a reading verb read, each with its status."""
    described = "; ".join(describe_run(Path(r)) for r in runs)
    return f"read run {described}" if len(runs) == 1 else (
        f"read {len(runs)} runs: {described}")


@contextmanager
def ctrl_c_kept(deferred: bool = False):
    """Run the body; yields a list that records each Ctrl-C (SIGINT) during it.

    A Ctrl-C raises KeyboardInterrupt as usual, or, ``deferred``, only records it: the body
    polls the list and stops at a safe point (raising inside Ray's completion callbacks
    can abort Ray's core worker: "Check failed: Tried to complete task that was not
    pending"). Either way it is raised again at the end of the body if nothing did: one
    delivered inside an at-fork callback while Ray starts its processes is printed as
    "Exception ignored" and lost, and the run then finished as if never interrupted."""
    seen: list[int] = []

    def interrupt(signum, frame):
        seen.append(signum)
        if not deferred:
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, interrupt)
    except ValueError:  # not the main thread: signals go to the main thread's handler
        yield seen
        return
    try:
        yield seen
        if seen:
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, previous)
