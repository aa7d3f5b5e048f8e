"""dse rank: a niche's feasible candidates ranked, the front marked, real chips placed."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from dse.cli.common import announce, fail, verbatim
from dse.pipeline.runs import whole_number


def run(cfg: DictConfig) -> None:
    from dse.analysis.query import resolve_runs, run_query
    from dse.analysis.ranking import load_niche, rank, reference_chips
    from dse.analysis.report_text import print_rows

    top = whole_number("top", cfg.top)
    robust_top = whole_number("robust_top", cfg.robust_top, low=2)
    robust_k = top if cfg.robust_k is None else whole_number("robust_k", cfg.robust_k)
    try:
        chosen = cfg.niche.name if cfg.get("niche") else None
        runs = resolve_runs(verbatim(cfg, "run"), niche=chosen)
        niches = run_query("SELECT DISTINCT niche, run FROM rows", runs)
        name = chosen or (niches["niche"].iat[0] if niches["niche"].nunique() == 1 else None)
        if name is None:
            raise ValueError(f"these runs hold niches {sorted(niches['niche'].unique())}; "
                             "choose one with niche=")
        mine = [Path(r) for r in niches.loc[niches["niche"] == name, "run"].unique()]
        if not mine:
            raise ValueError(f"no rows of niche {name!r} in {', '.join(map(str, runs))}")
        niche = load_niche(mine[0], name)
        by = verbatim(cfg, "by") or niche.objectives[0][0]
        ranked = rank(mine, niche, by, top=0)
        sizes = run_query("SELECT DISTINCT chips FROM rows", mine)["chips"].astype(int).tolist()
        refs = reference_chips(niche, by, sorted(sizes), ranked) if cfg.references else None
        robust = _robust(cfg, ranked, niche, by, mine, robust_top, robust_k) if cfg.robust \
            else None
    except ValueError as err:
        fail(str(err))
    announce(mine)
    shown = ranked.head(top).reset_index()
    shown["candidate_id"] = shown["candidate_id"].str.rsplit(":", n=1).str[-1]
    shown["pareto"] = shown["pareto"].map({True: "*", False: ""})
    print_rows(f"{name}: top {len(shown)} of {len(ranked):,} feasible candidates by {by} "
               f"(* = Pareto front)", shown.to_dict("records"))
    if refs is not None:
        print_rows(f"real chips on {name}'s scenarios, by {by}: the rank each would take",
                   refs.to_dict("records"))
    if robust is not None:
        robust["candidate_id"] = robust["candidate_id"].str.rsplit(":", n=1).str[-1]
        print_rows(f"{name}: how sure the ranking is: the first {len(robust)} re-evaluated "
                   f"with the factors of each leave-one-chip-out fit; rank interval and "
                   f"P(top {robust_k})", robust.to_dict("records"))


def _robust(cfg: DictConfig, ranked, niche, by: str, runs: list[Path], top: int, k: int):
    from dse.analysis.ranking import run_params
    from dse.analysis.robust import load_spread, robust_ranks

    sets = load_spread(cfg.robust_spread) if cfg.robust_spread else load_spread()
    return robust_ranks(ranked, niche, by, run_params(runs), sets, top=top, k=k)
