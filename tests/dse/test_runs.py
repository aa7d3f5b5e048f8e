"""Runs never mix and never lie: a new run refuses a folder that holds a run (and writes
nothing), a run that stops says so in its manifest with the reason and the resume command,
reading verbs name the run they read and say when it is not whole, foreign Parquet files are
named. Real run folders, real flock, real Ray and a real full file system (tmpfs)."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from dse.analysis.query import resolve_runs, run_query
from dse.cli import main
from dse.pipeline.runs import claim_run_folder, describe_run, run_line
from dse.pipeline.niche import parse_niche
from dse.pipeline.search import LocalEvaluator, make_search_job, run_search
from dse.pipeline.store import LOCK, lock_held
from hwspace.space import parse_space


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI run in this process."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def copy_of(small_runs, tmp_path):
    """copy_of("sweep" | "search") -> a private copy of that small run to alter."""

    def _copy(which: str) -> Path:
        _, sweep, search = small_runs
        return Path(shutil.copytree({"sweep": sweep, "search": search}[which],
                                    tmp_path / "outputs" / which))

    return _copy


@pytest.mark.parametrize("verb, where", [
    ("sweep", "hydra.run.dir={sweep}"), ("sweep", "hydra.run.dir={search}"),
    ("sweep", "sweep.results_dir={sweep}/results"), ("search", "hydra.run.dir={search}"),
    ("search", "hydra.run.dir={sweep}")])
def test_a_new_run_into_a_folder_that_holds_a_run_refuses_and_writes_nothing(
        small_runs, capsys, verb, where):
    _, sweep, search = small_runs
    where = where.format(sweep=sweep, search=search)
    folder = Path(where.split("=", 1)[1])
    folder = folder.parent if folder.name == "results" else folder
    before = _snapshot(folder)
    code, out, err = _main(capsys, verb, "space=demo" if verb == "sweep" else "search.trials=10",
                           where)
    assert code == 2 and err.count("\n") == 1, err
    assert str(folder) in err and f"dse {verb} resume=" in err, err
    assert _snapshot(folder) == before  # .hydra/config.yaml included: the old run resumes


def test_a_multirun_into_a_folder_that_holds_runs_refuses_and_writes_nothing(small_runs,
                                                                             capsys):
    root, _, _ = small_runs
    before = _snapshot(root)
    code, _, err = _main(capsys, "search", "niche=edge_vision,local_llm", "--multirun",
                         f"hydra.sweep.dir={root}")
    assert code == 2 and err == (f"error: hydra.sweep.dir={root}: holds runs already; a new "
                                 f"multirun would mix with them: choose an empty folder\n")
    assert _snapshot(root) == before


def test_the_time_stamped_run_folder_is_pinned_and_locked_before_hydra(tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = claim_run_folder("sweep", ["space=demo", "niche=edge_vision"])
    pinned = overrides[-1].split("=", 1)[1]
    assert overrides[:-1] == ["space=demo", "niche=edge_vision"]
    assert re.fullmatch(r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d_sweep_edge_vision", pinned)
    assert lock_held(tmp_path / pinned)  # a second start in the same second is refused


def test_a_folder_whose_lock_is_held_is_refused_before_hydra_writes_its_config(tmp_path,
                                                                               capsys):
    # The first sweep has taken the folder and its lock but written no manifest yet.
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("first: run\n")
    with open(run / LOCK, "a+") as first:
        fcntl.flock(first, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, _, err = _main(capsys, "sweep", "space=demo", f"hydra.run.dir={run}")
    assert code == 2 and "another dse process is writing this run folder" in err, err
    assert (run / ".hydra" / "config.yaml").read_text() == "first: run\n"
    assert sorted(p.name for p in run.iterdir()) == [".hydra", LOCK]


def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -rm for a private tmpfs")
def test_a_disk_full_sweep_is_failed_with_its_reason_and_the_reading_verbs_say_so(tmp_path):
    # A 100 KiB tmpfs in a private mount namespace holds ~6 of the 12 chunks (16 KB each).
    disk, copy = tmp_path / "disk", tmp_path / "copy"
    disk.mkdir()
    sweep = [sys.executable, "-m", "dse.cli", "sweep", "space=demo", "niche=edge_vision",
             "sweep.mode=grid", "sweep.chunk_size=8", "ray.num_cpus=1",
             f"hydra.run.dir={disk}/run"]
    script = (f"mount -t tmpfs -o size=100k tmpfs {disk} && {' '.join(sweep)} "
              f"> {tmp_path}/out 2> {tmp_path}/err; echo $? > {tmp_path}/rc; "
              f"cp -r {disk}/run {copy}")
    subprocess.run(["unshare", "-rm", "sh", "-c", script], check=True, timeout=300)
    err = (tmp_path / "err").read_text().strip().splitlines()[-1]
    assert (tmp_path / "rc").read_text().strip() == "2", err
    assert err.startswith("error: sweep failed: OSError") and "No space left" in err
    assert f"resume with: dse sweep resume={disk}/run" in err
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "No space left" in manifest["reason"]
    assert manifest["resume"] == f"dse sweep resume={disk}/run"
    rows = run_query("SELECT count(*) AS n FROM rows", [copy])["n"].item()
    assert 0 < rows < 288
    assert f"failed: {rows:,} of 288 rows; OSError" in describe_run(copy)


def test_ctrl_c_while_ray_starts_leaves_the_run_interrupted(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "dse.cli", "sweep", "space=demo",
                             "niche=edge_vision", "sweep.mode=grid", "ray.num_cpus=1",
                             f"hydra.run.dir={run}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (run / "manifest.json").exists():  # written just before Ray starts
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"sweep interrupted: Ctrl-C; 0 of 288 rows on disk; resume with: dse sweep " \
           f"resume={run}" in err and "Traceback" not in err
    manifest = json.loads((run / "manifest.json").read_text())
    assert (manifest["status"], manifest["reason"]) == ("interrupted", "Ctrl-C")


def test_reading_verbs_name_the_run_they_read(small_runs, capsys, monkeypatch, tmp_path):
    _, sweep, search = small_runs
    monkeypatch.chdir(tmp_path)
    line = f"read run {sweep} (sweep, niche edge_vision, complete, 288 rows)\n"
    for argv in (["query", "SELECT count(*) AS n FROM rows", f"run={sweep}"],
                 ["rank", f"run={sweep}", "references=false", "top=3"],
                 ["explain", f"run={sweep}", "candidate=7"]):
        code, out, err = _main(capsys, *argv)
        assert code == 0 and err == line, (argv, err)
        assert str(sweep) not in out or argv[0] == "explain"  # stdout stays the data
    code, _, err = _main(capsys, "query", "SELECT 1", f"run={search}")
    assert err == f"read run {search} (search, niche edge_vision, complete, 360 rows)\n"


def test_an_incomplete_run_is_named_with_rows_present_of_expected(copy_of, capsys):
    run = copy_of("sweep")
    (run / "results" / "chunk-000002.parquet").unlink()
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(status="interrupted", reason="Ctrl-C", rows_expected=288)
    (run / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = _main(capsys, "query", "SELECT count(*) AS n FROM rows", f"run={run}")
    assert code == 0
    assert err == (f"read run {run} (sweep, niche edge_vision, interrupted: 240 of 288 rows; "
                   f"Ctrl-C; resume with: dse sweep resume={run})\n")


def test_a_run_left_running_by_a_killed_process_is_told_apart_from_a_live_one(copy_of):
    run = copy_of("sweep")
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(dict(manifest, status="running",
                                                       rows_expected=576)))
    assert "stopped (no process is writing it: it was killed): 288 of 576 rows" \
        in describe_run(run)
    with open(run / LOCK, "a+") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert "running: 288 of 576 rows)" in describe_run(run)


def test_newest_run_orders_sweeps_and_searches_by_start_time(small_runs):
    root, sweep, search = small_runs
    # "sweep" sorts after "search" by name; the search started later.
    assert json.loads((search / "manifest.json").read_text())["started"]
    assert resolve_runs(None, root) == [search]
    assert "2 runs" in run_line(resolve_runs("all", root))


def _foreign(path: Path) -> None:
    pq.write_table(pa.table({"x": [1, 2]}), path)


def _old_schema(path: Path) -> None:
    table = pq.read_table(path.with_name("chunk-000000.parquet"))
    table = table.set_column(table.schema.get_field_index("candidate_id"), "candidate_id",
                             pa.array([str(v) for v in table["candidate_id"].to_pylist()]))
    pq.write_table(table, path)


@pytest.mark.parametrize("name, spoil, problem", [
    ("chunk-000001.parquet", lambda p: p.write_bytes(p.read_bytes()[:500]),
     "not a readable Parquet file"),
    ("chunk-000001.parquet", lambda p: p.write_bytes(bytes(range(256)) * 8),
     "not a readable Parquet file"),
    ("stray.parquet", _foreign, "not a dse result file (no column candidate_id"),
    ("chunk-000001.parquet", _old_schema, "another schema than chunk-000000.parquet "
                                          "(candidate_id is string, not int64)"),
])
def test_a_corrupt_or_foreign_parquet_file_is_named_in_one_line(copy_of, capsys, name, spoil,
                                                                 problem):
    run = copy_of("sweep")
    path = run / "results" / name
    spoil(path)
    for argv in (["query", "SELECT count(*) FROM rows", f"run={run}"],
                 ["rank", f"run={run}", "references=false"]):
        code, out, err = _main(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith(f"error: {path}: {problem}"), err
        assert "Traceback" not in err and out == ""


def _edge_search(compose_conf, trials: int):
    cfg = compose_conf("search", ["niche=edge_vision"])
    niche = parse_niche(OmegaConf.to_container(cfg.niche, resolve=True))
    space = parse_space(OmegaConf.to_container(cfg.space, resolve=True))
    return make_search_job(space, niche, trials, 10, "nsga2", 0), LocalEvaluator(niche)


def test_a_reused_optuna_storage_is_one_line_and_resume_continues_it(compose_conf, tmp_path,
                                                                     capsys):
    url = f"sqlite:///{tmp_path}/study.db"
    first, second = tmp_path / "first", tmp_path / "second"
    job, evaluate = _edge_search(compose_conf, 20)
    run_search(job, first, evaluate, storage=url, show_progress=False)
    job, evaluate = _edge_search(compose_conf, 40)
    with pytest.raises(ValueError) as err:
        run_search(job, second, evaluate, storage=url, show_progress=False)
    assert str(err.value) == (f"search.storage={url}: holds the study of another search "
                              f"({first}): continue it with `dse search resume={first}` or "
                              f"give another storage")
    assert not (second / "manifest.json").exists()
    code, _, cli_err = _main(capsys, "search", f"search.storage={url}",
                             f"hydra.run.dir={tmp_path}/third")
    assert code == 2 and cli_err == f"error: {err.value}\n"
    assert not (tmp_path / "third").exists()  # refused before Hydra: nothing written
    done = run_search(job, first, evaluate, storage=url, resume=True, show_progress=False)
    assert done["trials"] == 40 and done["status"] == "complete"


@pytest.mark.parametrize("argv, message", [
    (["rank", "top=-3"], "top=-3: must be a whole number >= 1"),
    (["rank", "top=0"], "top=0: must be a whole number >= 1"),
    (["rank", "top=2.5"], "top=2.5: must be a whole number >= 1"),
    (["rank", "top=true"], "top=True: must be a whole number >= 1"),
    (["rank", "robust=true", "robust_top=1"], "robust_top=1: must be a whole number >= 2"),
    (["rank", "robust_k=-1"], "robust_k=-1: must be a whole number >= 1"),
    (["query", "SELECT 1", "limit=-3"], "limit=-3: must be a whole number >= 1"),
    (["query", "SELECT 1", "timeout_s=0"], "timeout_s=0"),
    (["query", "SELECT 1", "timeout_s=abc"], "timeout_s=abc: give a number of seconds"),
    (["query", "SELECT 1", "timeout_s=nan"], "timeout_s=nan"),
    (["query", "SELECT 1", "timeout_s=inf"], "timeout_s=inf"),
    (["query", "SELECT 1", "memory_limit=lots"], "memory_limit=lots: give a size such as 2GB"),
    (["query", "SELECT 1", "memory_limit=1KB"], "memory_limit=1KB: must be between 64MB"),
    (["query", "SELECT 1", "memory_limit=1PB"], "memory_limit=1PB: give a size"),
    (["query", "SELECT 1", "run=${oc.env:HOME}"], "run: ${...} interpolation is not allowed"),
    (["sweep", "space=demo", "sweep.seed=abc"],
     "sweep.seed = 'abc': allowed: a whole number in [0,"),
    (["sweep", "space=demo", "sweep.seed=-1"], "sweep.seed = -1: allowed: a whole number in [0,"),
    (["sweep", "space=demo", "sweep.chunk_size=2.5"],
     "sweep.chunk_size = 2.5: allowed: a whole number"),
    (["sweep", "space=demo", "ray.num_cpus=-2"], "ray.num_cpus = -2: allowed: a whole number"),
    (["sweep", "space=demo", "sweep.max_in_flight=0"], "sweep.max_in_flight = 0: allowed"),
    (["sweep", "space=demo", "top=-3"], "top = -3: allowed: a whole number in [1,"),
    (["search", "search.seed=abc"], "search.seed = 'abc': allowed: a whole number in [0,"),
    (["search", "search.population=2.5"], "search.population = 2.5: allowed: a whole number"),
    (["search", "ray.num_cpus=0"], "ray.num_cpus = 0: allowed: a whole number in [1,"),
])
def test_run_settings_out_of_range_are_one_line(small_runs, capsys, monkeypatch, tmp_path,
                                                argv, message):
    _, sweep, _ = small_runs
    monkeypatch.chdir(tmp_path)
    reads = argv[0] in ("query", "rank") and not any(a.startswith("run=") for a in argv)
    argv = argv + ([f"run={sweep}"] if reads else [])
    code, out, err = _main(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert out == ""


def test_a_failed_search_records_why_and_resumes(compose_conf, tmp_path):
    run = tmp_path / "run"
    (run / "pareto.parquet").mkdir(parents=True)  # the front cannot be written: a real OSError
    job, evaluate = _edge_search(compose_conf, 20)
    with pytest.raises(ValueError) as err:
        run_search(job, run, evaluate, show_progress=False)
    assert str(err.value).startswith("search failed: IsADirectoryError: ")
    assert str(err.value).endswith(f"; 60 of 60 rows on disk; resume with: dse search "
                                   f"resume={run}")
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["started"]
    assert manifest["resume"] == f"dse search resume={run}"
    (run / "pareto.parquet").rmdir()
    assert "failed: 60 of 60 rows; IsADirectoryError" in describe_run(run)
    done = run_search(job, run, evaluate, resume=True, show_progress=False)
    assert done["status"] == "complete" and "reason" not in done
