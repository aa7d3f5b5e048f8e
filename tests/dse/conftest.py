"""Small real run folders (Parquet, saved config, manifest), built in-process without Ray so
tests of query, rank, report and bad input start in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dse.pipeline.niche import parse_niche
from dse.pipeline.rows import evaluate_rows
from dse.pipeline.search import LocalEvaluator, make_search_job, run_search
from dse.pipeline.store import RunStore
from dse.pipeline.sweep import make_job
from dse.pipeline.workers import chunk_candidates
from hwspace.space import parse_space


def _save_config(cfg, run: Path) -> None:
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml", resolve=True)


def _sweep_run(compose_conf, run: Path) -> Path:
    cfg = compose_conf("sweep", ["space=demo", "niche=edge_vision", "sweep.mode=grid"])
    plain = OmegaConf.to_container(cfg, resolve=True)
    job = make_job(plain["space"], [plain["niche"]], "grid", None, 0, chunk_size=40)
    store = RunStore(run)
    store.prepare()
    for chunk in range(job.n_chunks):
        store.write_chunk(chunk, evaluate_rows(*chunk_candidates(job, chunk), job.niches))
    _save_config(cfg, run)
    store.write_manifest(dict(status="complete", started="2026-01-01T00:00:00",
                              rows=store.rows()))
    return run


def _search_run(compose_conf, run: Path) -> Path:
    cfg = compose_conf("search", ["niche=edge_vision"])
    niche = parse_niche(OmegaConf.to_container(cfg.niche, resolve=True))
    job = make_search_job(parse_space(OmegaConf.to_container(cfg.space, resolve=True)), niche,
                          120, 60, "nsga2", 0)
    run_search(job, run, LocalEvaluator(niche), show_progress=False)
    _save_config(cfg, run)
    return run


@pytest.fixture(scope="session")
def small_runs(compose_conf, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(outputs root, a 96-candidate edge_vision grid sweep, a 120-trial edge_vision search)."""
    root = tmp_path_factory.mktemp("project") / "outputs"
    sweep = _sweep_run(compose_conf, root / "2026-01-01" / "sweep")
    search = _search_run(compose_conf, root / "2026-01-01" / "search")
    return root, sweep, search
