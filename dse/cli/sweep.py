"""dse sweep: a design space x a niche on Ray, then the best candidates."""

from __future__ import annotations

from omegaconf import DictConfig

from dse.cli.common import fail, plain, run_folder
from dse.pipeline.runs import whole_number


def run(cfg: DictConfig) -> None:
    from dse.analysis.ranking import ranking_view, sweep_top
    from dse.analysis.report_text import aggregate_note, print_table
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
    niches = {n.name: n for n in job.niches}
    for name, result in sweep_top(job, manifest["results_dir"], top).items():
        niche, by = niches[name], niches[name].objectives[0][0]
        frame, deciding = ranking_view(result["top"], niche, by, result["params"])
        print_table(f"{name}: top {len(frame)} of {result['feasible']:,} feasible candidates "
                    f"({result['candidates']:,} evaluated) by {by}; "
                    f"* = Pareto front", frame, decisive=deciding,
                    note=aggregate_note([ns.name for ns in niche.scenarios]),
                    wide=bool(cfg.wide))
