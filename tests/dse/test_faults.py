"""Faults by an outsider's method, on real processes and real signals: kill -9 of the sweep
driver then two resumes at once (the second refuses: the run's lock file), SIGINT of a search
then resume. Each leaves no duplicate key and no partial Parquet file."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dse.pipeline.store import LOCK
from dse.pipeline.sweep import read_rows

pytestmark = pytest.mark.slow

_SWEEP = ["sweep", "space=hyperscale", "niche=hyperscale", "sweep.mode=random",
          "sweep.samples=6000", "sweep.chunk_size=100", "ray.num_cpus=2"]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dse.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_chunks(run: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while len(list((run / "results").glob("chunk-*.parquet"))) < n:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.05)


def _locked(run: Path) -> bool:
    with open(run / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _assert_whole(run: Path, keys: list[str], n_keys: int) -> None:
    assert not list(run.rglob("*.tmp"))
    for f in (run / "results").glob("*.parquet"):
        pq.read_metadata(f)  # every file on disk is a complete Parquet file
    rows = read_rows(run / "results", columns=keys).to_pandas()
    assert not rows.duplicated(keys).any()
    assert rows[keys[0]].nunique() == n_keys


def test_kill_9_of_the_driver_then_two_resumes_at_once(tmp_path):
    run = tmp_path / "run"
    first = _start(*_SWEEP, f"hydra.run.dir={run}")
    _wait_for_chunks(run, 2, first)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=60)
    assert json.loads((run / "manifest.json").read_text())["status"] == "running"

    resume = _start("sweep", f"resume={run}")
    deadline = time.time() + 60
    while not _locked(run):
        assert resume.poll() is None and time.time() < deadline
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "dse.cli", "sweep", f"resume={run}"],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 2
    assert "another dse process is writing this run folder" in second.stderr
    assert "Traceback" not in second.stderr
    _, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err
    assert json.loads((run / "manifest.json").read_text())["status"] == "complete"
    _assert_whole(run, ["candidate_id", "scenario"], 6000)


def test_sigint_of_a_search_then_resume(tmp_path):
    run = tmp_path / "run"
    args = ["search", "niche=edge_vision", "search.trials=3000", "search.population=100",
            "ray.num_cpus=2"]
    search = _start(*args, f"hydra.run.dir={run}")
    _wait_for_chunks(run, 2, search)
    search.send_signal(signal.SIGINT)
    _, err = search.communicate(timeout=120)
    assert search.returncode == 130, err
    assert f"resume with: dse search resume={run}" in err and "Traceback" not in err
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"

    resumed = subprocess.run([sys.executable, "-m", "dse.cli", "search", f"resume={run}"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "manifest.json").read_text())["trials"] == 3000
    _assert_whole(run, ["trial", "scenario"], 3000)
