"""Sweeps on real Ray: row counts, agreement with predict, a two-node cluster on loopback,
a killed worker, an interrupted and resumed run, and bad spaces rejected before Ray starts."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dse.api import predict
from dse.cli.schema import register
from dse.evaluator.model import OUTPUTS
from dse.pipeline.sweep import make_job, read_rows, run_sweep
from dse.presets import CONF_DIR
from hwspace.spec import nest_config

register()
KEYS = ["candidate_id", "niche", "scenario"]


def _conf(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="sweep", overrides=overrides)
    return (OmegaConf.to_container(cfg.space, resolve=True),
            OmegaConf.to_container(cfg.niche, resolve=True))


def _cli(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dse.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _dataset(run_dir: Path) -> pd.DataFrame:
    return read_rows(run_dir / "results").to_pandas().sort_values(KEYS).reset_index(drop=True)


def _assert_complete(run_dir: Path, candidates: int, scenarios: int) -> pd.DataFrame:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rows = _dataset(run_dir)
    assert manifest["status"] == "complete"
    assert manifest["rows"] == len(rows) == candidates * scenarios
    assert not rows.duplicated(KEYS).any()
    assert sorted(rows["candidate_id"].unique()) == list(range(candidates))
    return rows


def test_demo_grid_sweep_writes_every_row_once_and_agrees_with_predict(tmp_path):
    space, niche = _conf(["space=demo", "niche=local_llm"])
    job = make_job(space, [niche], "grid", None, 0, chunk_size=40)
    manifest = run_sweep(job, tmp_path / "run", num_cpus=2, show_progress=False)
    rows = _assert_complete(tmp_path / "run", 96, 2)
    assert manifest["chunks_done"] == 3 and manifest["version"]
    scenarios = {ns.name: ns for ns in job.niches[0].scenarios}
    for _, row in rows.sample(8, random_state=1).iterrows():
        ns = scenarios[row["scenario"]]
        chip = nest_config({c: row[c] for c in job.space.columns if c != "chips"})
        out = predict({**chip, "name": "row"}, ns.workload, chips=int(row["chips"]),
                      economics=job.niches[0].economics,
                      tpot_slo_s=ns.tpot_slo_s, ttft_slo_s=ns.ttft_slo_s,
                      **dataclasses.asdict(ns.scenario))
        for key in OUTPUTS:
            if isinstance(out[key], float) and math.isnan(out[key]):
                assert math.isnan(row[key]), key
            elif isinstance(out[key], float):
                assert row[key] == pytest.approx(out[key], rel=1e-9), key
            else:
                assert row[key] == out[key], key


def test_bad_spaces_fail_before_any_ray_work():
    for override, message in [
        ("space.params.macs.high=10", "space.macs.low = 32768: allowed: <= high (10)"),
        ("+space.params.warp_drive=3", "unknown parameter 'warp_drive'"),
        ("space.params.memory.type=[hbm3,hbm9]", "space.memory.type: 'hbm9' is not allowed"),
        ("space.params.sram_mb=[]", "space.sram_mb: choices is empty"),
    ]:
        start = time.perf_counter()
        res = _cli("sweep", "space=demo", override, "hydra.run.dir=/tmp/dse-never-written")
        assert res.returncode == 2, res.stderr
        assert message in res.stderr
        assert "Traceback" not in res.stderr and "Ray" not in res.stderr + res.stdout
        assert time.perf_counter() - start < 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Ray 2.5x+ authenticates clients with a token by default; a loopback test cluster opts out
# (RAY_AUTH_MODE=disabled) so the head, the worker node and the driver need not share one.
_NO_AUTH = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def _ray_nodes(address: str) -> int:
    res = subprocess.run(["ray", "status", f"--address={address}"], capture_output=True,
                         text=True, timeout=60, env=_NO_AUTH)
    return sum(1 for line in res.stdout.splitlines() if line.strip().startswith("1 node_"))


@pytest.mark.cluster
@pytest.mark.slow
def test_two_node_cluster_on_loopback_gives_the_local_dataset(tmp_path):
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    head = subprocess.Popen(["ray", "start", "--head", f"--port={port}",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                             *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=_NO_AUTH)
    worker = None
    try:
        deadline = time.time() + 120
        while _ray_nodes(address) < 1 and time.time() < deadline:
            time.sleep(1)
        worker = subprocess.Popen(["ray", "start", f"--address={address}",
                                   "--node-ip-address=127.0.0.1", *common],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=_NO_AUTH)
        while _ray_nodes(address) < 2 and time.time() < deadline:
            time.sleep(1)
        assert _ray_nodes(address) == 2, "the two-node cluster did not come up"
        args = ["sweep", "space=demo", "niche=local_llm", "sweep.mode=grid",
                "sweep.chunk_size=16"]
        on_cluster = _cli(*args, f"ray.address={address}", f"hydra.run.dir={tmp_path}/cluster",
                          env=_NO_AUTH)
        assert on_cluster.returncode == 0, on_cluster.stderr
        manifest = json.loads((tmp_path / "cluster/manifest.json").read_text())
        assert manifest["ray"].startswith(f"ray cluster at {address}")
        local = _cli(*args, f"hydra.run.dir={tmp_path}/local")
        assert local.returncode == 0, local.stderr
        pd.testing.assert_frame_equal(_assert_complete(tmp_path / "cluster", 96, 2),
                                      _assert_complete(tmp_path / "local", 96, 2))
        # The search runs on the same cluster (Search issue).
        search = _cli("search", "search.trials=200", "search.population=50",
                      f"ray.address={address}", f"hydra.run.dir={tmp_path}/search",
                      env=_NO_AUTH)
        assert search.returncode == 0, search.stderr
        found = json.loads((tmp_path / "search/manifest.json").read_text())
        assert found["status"] == "complete" and found["trials"] == 200
    finally:
        for proc in (worker, head):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
        for proc in (worker, head):
            if proc is not None:
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()


# A sweep long enough to interfere with: the hyperscale niche (batch by capacity under a TPOT
# SLO) in 60 chunks of 100 random candidates.
_SAMPLES, _CHUNKS = 6000, 60
_LONG = ["sweep", "space=hyperscale", "niche=hyperscale", "sweep.mode=random",
         f"sweep.samples={_SAMPLES}", "sweep.chunk_size=100", "ray.num_cpus=2"]


def _task_workers() -> list[int]:
    """PIDs of Ray workers running our chunk task (Ray titles them ray::<function>)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()
            if line.split(maxsplit=1)[-1].startswith("ray::_evaluate")]


@pytest.mark.slow
def test_killed_worker_is_retried_and_the_dataset_is_complete(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "dse.cli", *_LONG, f"hydra.run.dir={run}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.time() + 300
    while killed is None and proc.poll() is None and time.time() < deadline:
        pids = _task_workers()
        if pids and len(list((run / "results").glob("chunk-*.parquet"))) >= 1:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=600)
    assert killed is not None, "no worker was caught running a chunk"
    assert proc.returncode == 0, err
    _assert_complete(run, _SAMPLES, 2)


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_gaps_or_duplicates(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "dse.cli", *_LONG, f"hydra.run.dir={run}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(list((run / "results").glob("chunk-*.parquet"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"resume with: dse sweep resume={run}" in err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    done = len(list((run / "results").glob("chunk-*.parquet")))
    assert 2 <= done < _CHUNKS
    _dataset(run)  # every chunk on disk is a complete Parquet file

    resumed = _cli("sweep", f"resume={run}")
    assert resumed.returncode == 0, resumed.stderr
    _assert_complete(run, _SAMPLES, 2)
