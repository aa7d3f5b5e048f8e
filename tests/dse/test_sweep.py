"""Sweeps on real Ray: row counts, agreement with predict, a cluster that stays on loopback,
a killed worker, an interrupted and resumed run, and bad spaces rejected before Ray starts."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
                      **ns.scenario.inputs())
        for key in OUTPUTS:
            if isinstance(out[key], float) and math.isnan(out[key]):
                assert math.isnan(row[key]), key
            elif isinstance(out[key], float):
                assert row[key] == pytest.approx(out[key], rel=1e-9), key
            else:
                assert row[key] == out[key], key


def test_bad_spaces_fail_before_any_ray_work():
    for override, message in [
        ("space.params.macs.high=10", "space.macs.low = 8192: allowed: <= high (10)"),
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


# docs/cluster.md's loopback recipe: the node's IP resolves to 127.0.0.1 (so every process of
# the cluster listens there only) and no token (Ray 2.5x+ asks for one by default; nothing off
# this machine can connect).
_LOOPBACK = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


def _head_up(address: str) -> bool:
    res = subprocess.run(["ray", "status", f"--address={address}"], capture_output=True,
                         text=True, timeout=60, env=_LOOPBACK)
    return res.returncode == 0


def _tree(pid: int) -> set[int]:
    """``pid`` and every process below it."""
    table = [line.split() for line in subprocess.run(
        ["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout.splitlines()]
    found = {pid}
    while grown := {int(p) for p, pp in table if int(pp) in found} - found:
        found |= grown
    return found


def _listening(pids: set[int]) -> list[str]:
    """Local addresses (``ss -ltnp``) of the TCP sockets that ``pids`` listen on."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines()
            if {int(p) for p in re.findall(r"pid=(\d+)", line)} & pids]


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to see the sockets")
def test_loopback_cluster_binds_127_0_0_1_and_gives_the_local_dataset(tmp_path):
    port = _free_port()
    address = f"127.0.0.1:{port}"
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must be short
    head = subprocess.Popen(["ray", "start", "--head", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--include-dashboard=false",
                             "--disable-usage-stats", f"--temp-dir={temp}", "--num-cpus=2",
                             "--block"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_LOOPBACK)
    try:
        deadline = time.time() + 120
        while not _head_up(address) and time.time() < deadline:
            time.sleep(1)
        assert _head_up(address), "the loopback cluster did not come up"
        args = ["sweep", "space=demo", "niche=local_llm", "sweep.mode=grid",
                "sweep.chunk_size=16"]
        on_cluster = _cli(*args, f"ray.address={address}", f"hydra.run.dir={tmp_path}/cluster",
                          env=_LOOPBACK)
        assert on_cluster.returncode == 0, on_cluster.stderr
        # Looked at once a job has run: the GCS listens first and the raylet and agents a while
        # later, so right after start-up a loaded machine shows the GCS alone.
        sockets = _listening(_tree(head.pid))
        assert len(sockets) >= 3, sockets  # the GCS, the raylet's two, the agents
        assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]")
                   for a in sockets), sockets
        manifest = json.loads((tmp_path / "cluster/manifest.json").read_text())
        assert manifest["ray"].startswith(f"ray cluster at {address}")
        local = _cli(*args, f"hydra.run.dir={tmp_path}/local")
        assert local.returncode == 0, local.stderr
        pd.testing.assert_frame_equal(_assert_complete(tmp_path / "cluster", 96, 2),
                                      _assert_complete(tmp_path / "local", 96, 2))
        # The search runs on the same cluster (Search issue).
        search = _cli("search", "search.trials=200", "search.population=50",
                      f"ray.address={address}", f"hydra.run.dir={tmp_path}/search",
                      env=_LOOPBACK)
        assert search.returncode == 0, search.stderr
        found = json.loads((tmp_path / "search/manifest.json").read_text())
        assert found["status"] == "complete" and found["trials"] == 200
    finally:
        cluster = _tree(head.pid)
        head.send_signal(signal.SIGTERM)  # by process id: never `ray stop` (every Ray here)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(temp, ignore_errors=True)  # the session's logs and sockets
    time.sleep(2)
    alive = subprocess.run(["ps", "-o", "pid=", "-p", ",".join(map(str, cluster))],
                           capture_output=True, text=True).stdout.split()
    assert not alive, f"processes of the stopped cluster still run: {alive}"


# Two nodes on one machine, each its own raylet and object store under one GCS, all on
# 127.0.0.1: Ray's own multi-node test harness (ray.cluster_utils.Cluster, "Cluster utility
# for testing" in Ray's docs), started with the loopback environment above. `ray start
# --address` cannot add the second node: with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 it refuses
# ("Multi-node Ray clusters are not supported on Windows and OSX"), and without it it rewrites
# 127.0.0.1 to the machine's routable address (docs/cluster.md). The head takes no tasks, so
# every chunk runs on the second node and its rows travel back to the driver.
_TWO_NODES = """
import sys, ray
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args=dict(
    num_cpus=0, include_dashboard=False, temp_dir=sys.argv[1]))
worker = cluster.add_node(num_cpus=2)
cluster.wait_for_nodes()
raylets = [n.all_processes["raylet"][0].process.pid for n in (cluster.head_node, worker)]
print(cluster.address, *raylets, flush=True)
sys.stdin.read()  # up until the test closes stdin
cluster.shutdown()
"""


def _ray_workers(pids: set[int]) -> list[str]:
    """Titles of the Ray worker processes among ``pids``: ``ray::_evaluate...`` while a chunk
    runs, ``ray::IDLE`` after; the node's agents (``ray::DashboardAgent``...) are not."""
    out = subprocess.run(["ps", "-o", "args=", "-p", ",".join(map(str, pids))],
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if line.startswith("ray::") and not line.split()[0].endswith("Agent")]


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to see the sockets")
def test_two_node_loopback_cluster_sweeps_on_its_second_node(tmp_path):
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # Ray's socket paths must be short
    owner = subprocess.Popen([sys.executable, "-c", _TWO_NODES, temp], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=_LOOPBACK)
    try:
        address, head_raylet, worker_raylet = owner.stdout.readline().split()
        args = ["sweep", "space=demo", "niche=local_llm", "sweep.mode=grid",
                "sweep.chunk_size=16"]
        log = tmp_path / "sweep.err"  # a file, not a pipe: a full pipe would stop the sweep
        sweep = subprocess.Popen([sys.executable, "-m", "dse.cli", *args,
                                  f"ray.address={address}", f"hydra.run.dir={tmp_path}/two"],
                                 stdout=subprocess.DEVNULL, stderr=log.open("w"), env=_LOOPBACK)
        # A job's workers end with the job: watched while the sweep runs.
        seen = {"head": set(), "worker": set()}
        while sweep.poll() is None:
            for node, raylet in (("head", head_raylet), ("worker", worker_raylet)):
                seen[node].update(_ray_workers(_tree(int(raylet))))
            time.sleep(0.2)
        assert sweep.returncode == 0, log.read_text()
        # Every chunk ran in workers of the second node's raylet, none on the head's.
        assert seen["worker"] and not seen["head"], seen
        sockets = _listening(_tree(owner.pid))
        assert len(sockets) >= 5, sockets  # the GCS, each node's raylet and object manager
        assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]")
                   for a in sockets), sockets
        local = _cli(*args, f"hydra.run.dir={tmp_path}/local")
        assert local.returncode == 0, local.stderr
        pd.testing.assert_frame_equal(_assert_complete(tmp_path / "two", 96, 2),
                                      _assert_complete(tmp_path / "local", 96, 2))
    finally:
        cluster = _tree(owner.pid)
        owner.stdin.close()  # Cluster.shutdown() ends both nodes; by process id otherwise
        try:
            owner.wait(timeout=120)
        except subprocess.TimeoutExpired:
            owner.kill()
        shutil.rmtree(temp, ignore_errors=True)
    time.sleep(2)
    alive = subprocess.run(["ps", "-o", "pid=", "-p", ",".join(map(str, cluster))],
                           capture_output=True, text=True).stdout.split()
    assert not alive, f"processes of the stopped cluster still run: {alive}"


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
