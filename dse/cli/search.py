"""dse search: Optuna Pareto search of a niche on Ray, then its front."""

from __future__ import annotations

from omegaconf import DictConfig

from dse.cli.common import fail, plain, run_folder
from dse.pipeline.runs import whole_number


def run(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from dse.analysis.search_summary import print_front_summary
    from dse.pipeline.niche import parse_niche
    from dse.pipeline.search import check_storage, make_search_job, run_search
    from hwspace.space import parse_space

    top = whole_number("top", cfg.top)
    run_dir, base = run_folder(cfg, "search")
    if cfg.resume and any(o.startswith("search.trials=")
                          for o in HydraConfig.get().overrides.task):
        base.search.trials = cfg.search.trials  # resume may extend the study
    s = base.search
    try:
        check_storage(s.storage)
        niche = parse_niche(plain(base.niche))
        job = make_search_job(parse_space(plain(base.space)), niche, s.trials, s.population,
                              s.sampler, s.seed)
        manifest = run_search(job, run_dir, storage=s.storage, resume=bool(cfg.resume),
                              address=cfg.ray.address, num_cpus=cfg.ray.num_cpus)
    except ValueError as err:
        fail(str(err))
    print(f"{manifest['trials']:,} trials ({manifest['rows']:,} rows), front of "
          f"{manifest['front']}, {manifest['seconds']:.1f} s -> {run_dir}")
    import pandas as pd

    front = pd.read_parquet(run_dir / "pareto.parquet")
    if not front.empty:
        _print_front(run_dir, niche, top, bool(cfg.wide))
    print_front_summary(niche.name, front)


def _print_front(run_dir, niche, top: int, wide: bool) -> None:
    """The front's designs by the first objective, as dse rank shows them (id = trial)."""
    from dse.analysis.ranking import rank, ranking_view, run_params
    from dse.analysis.report_text import aggregate_note, print_table

    by = niche.objectives[0][0]
    ranked = rank([run_dir], niche, by, top=0)
    members = ranked[ranked["pareto"]]
    frame, deciding = ranking_view(members.head(top), niche, by, run_params([run_dir]))
    print_table(f"{niche.name}: {len(frame)} of the {len(members)} designs of the Pareto front "
                f"by {by} (id = trial, # = rank among the feasible)", frame,
                decisive=deciding, note=aggregate_note([ns.name for ns in niche.scenarios]),
                wide=wide)
