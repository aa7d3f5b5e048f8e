"""dse rank: a niche's feasible candidates ranked, the front marked, real chips placed."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from dse.cli.common import announce, fail, verbatim
from dse.inputs import check_value
from dse.pipeline.runs import whole_number


def run(cfg: DictConfig) -> None:
    from dse.analysis.query import resolve_runs, run_query
    from dse.analysis.ranking import load_niche, rank, reference_chips, run_params

    top = whole_number("top", cfg.top)
    for key in ("wide", "per_scenario"):
        check_value(key, cfg[key], bool, {})
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
        params = run_params(mine)
        sizes = run_query("SELECT DISTINCT chips FROM rows", mine)["chips"].astype(int).tolist()
        refs = reference_chips(niche, by, sorted(sizes), ranked) if cfg.references else None
        robust = _robust(cfg, ranked, niche, by, params, robust_top, robust_k) if cfg.robust \
            else None
    except ValueError as err:
        fail(str(err))
    announce(mine)
    _print(cfg, mine, niche, by, ranked.head(top), len(ranked), params)
    if refs is not None:
        _print_references(niche, by, refs, bool(cfg.wide))
    if robust is not None:
        from dse.analysis.report_text import print_table

        robust["candidate_id"] = robust["candidate_id"].str.rsplit(":", n=1).str[-1]
        print_table(f"{name}: how sure the ranking is: the first {len(robust)} re-evaluated "
                    f"with the factors of each leave-one-chip-out fit; rank interval and "
                    f"P(top {robust_k})", robust, decisive=3, wide=bool(cfg.wide))


def _print(cfg: DictConfig, runs: list[Path], niche, by: str, shown, feasible: int,
           params: list[str]) -> None:
    """The ranking (each scenario's rows too with per_scenario=true), labelled with what
    its scores are."""
    from dse.analysis.ranking import ranking_view, scenario_rows
    from dse.analysis.report_text import aggregate_note, print_table

    names = [ns.name for ns in niche.scenarios]
    frame, deciding = ranking_view(shown, niche, by, params)
    print_table(f"{niche.name}: top {len(frame)} of {feasible:,} feasible candidates by "
                f"{by} (* = Pareto front)", frame, decisive=deciding,
                note=aggregate_note(names), wide=bool(cfg.wide))
    if cfg.per_scenario and len(shown):
        rows = scenario_rows(runs, niche, list(shown.index))
        print_table(f"{niche.name}: the top {len(frame)} on each scenario", rows,
                    decisive=3 + len(niche.objectives),
                    note=f"one row per scenario, not aggregated ({len(names)} scenarios)",
                    wide=bool(cfg.wide))


def _print_references(niche, by: str, refs, wide: bool) -> None:
    from dse.analysis.report_text import aggregate_note, print_table

    refs = refs.rename(columns={"value": by})[["chip", "rank", by, "violation", "chips"]]
    refs = refs.astype({"rank": "Int64", "chips": "Int64"})  # whole numbers, - where none
    print_table(f"real chips on {niche.name}'s scenarios, by {by}: the rank each "
                f"would take", refs, decisive=4,
                note=aggregate_note([ns.name for ns in niche.scenarios]), wide=wide)


def _robust(cfg: DictConfig, ranked, niche, by: str, params: list[str], top: int, k: int):
    from dse.analysis.robust import load_spread, robust_ranks

    sets = load_spread(cfg.robust_spread) if cfg.robust_spread else load_spread()
    return robust_ranks(ranked, niche, by, params, sets, top=top, k=k)
