"""dse sweep: a design space x a niche on Ray, then the best candidates."""

from __future__ import annotations

from omegaconf import DictConfig

from dse.cli.common import fail, plain, run_folder
from dse.pipeline.runs import whole_number


def run(cfg: DictConfig) -> None:
    from dse.analysis.ranking import sweep_top
    from dse.analysis.report_text import print_top
    from dse.pipeline import sweep

    top = whole_number("top", cfg.top)
    run_dir, base = run_folder(cfg, "sweep")
    try:
        job = sweep.make_job(plain(base.space), [plain(base.niche)], base.sweep.mode,
                             base.sweep.samples, base.sweep.seed, base.sweep.chunk_size)
        manifest = sweep.run_sweep(job, run_dir, address=cfg.ray.address,
                                   num_cpus=cfg.ray.num_cpus, results_dir=base.sweep.results_dir,
                                   resume=bool(cfg.resume), max_in_flight=cfg.sweep.max_in_flight)
    except ValueError as err:
        fail(str(err))
    print(f"{manifest['rows']:,} rows in {manifest['chunks_done']} chunks, "
          f"{manifest['seconds']:.1f} s -> {manifest['results_dir']}")
    for name, result in sweep_top(job, manifest["results_dir"], top).items():
        print_top(name, result, [c for c, _ in job.niches[0].objectives])
