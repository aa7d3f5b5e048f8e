"""Every input of a composed config against its schema (dse.inputs): chip or chip_file,
workload, scenario, system, economics, space, niche, sweep, search, ray and the verb's own
settings. Plain data in, one ValueError line out; no Hydra, so `dse predict` checks its
config without importing it (dse.cli.direct)."""

from __future__ import annotations

import dataclasses

from dse import settings as st
from dse.inputs import build, shown
from dse.presets import load_chip, load_economics, load_engine, load_workload
from workloads.scenario import ScenarioConfig, family_of, make_scenario

__all__ = ["check_inputs"]

# verb -> (the schema of its own settings, the groups and sections it also holds)
_VERB_INPUTS = {
    "predict": (st.PredictSettings, ("chip", "workload", "scenario", "system", "economics",
                                     "engine")),
    "explain": (st.PredictSettings, ("chip", "workload", "scenario", "system", "economics",
                                     "engine")),
    "sweep": (st.RunSettings, ("sweep", "space", "niche", "ray")),
    "search": (st.RunSettings, ("search", "space", "niche", "ray")),
    "validate": (st.ValidateSettings, ()),
    "calibrate": (st.CalibrateSettings, ()),
}


def check_inputs(verb: str, cfg: dict) -> None:
    """Every input of a composed ``verb`` config against its schema (dse.inputs): one
    ValueError line naming the first bad field. Verbs that only read runs are checked by
    their own modules."""
    if verb not in _VERB_INPUTS:
        return
    schema, sections = _VERB_INPUTS[verb]
    known = {f.name for f in dataclasses.fields(schema)} | set(sections)
    for key in cfg:
        if key not in known:
            raise ValueError(f"{key}: unknown setting of dse {verb}; allowed: "
                             f"{', '.join(sorted(known))}")
    own = st.settings(schema, cfg)
    if "chip" in sections:
        _check_prediction(own, cfg)
    if "ray" in sections:
        build(st.RayConfig, cfg.get("ray", {}), "ray")
        _check_design(verb, cfg)


def _check_prediction(own: st.PredictSettings, cfg: dict) -> None:
    """Chip (or chip_file), workload, scenario and system of predict / explain."""
    if own.chip_file is None:
        load_chip(cfg["chip"])
    else:
        try:
            load_chip(own.chip_file)
        except ValueError as err:
            raise ValueError(f"chip_file = {shown(own.chip_file)}: {err}") from None
    workload = load_workload(cfg["workload"])
    load_economics(cfg["economics"])
    load_engine(cfg["engine"])
    build(st.SystemConfig, cfg["system"], "system")
    values = build(ScenarioConfig, cfg["scenario"], "scenario")
    make_scenario(family_of(workload), dataclasses.asdict(values))


def _check_design(verb: str, cfg: dict) -> None:
    """Space, niche and the sweep or search settings; a grid is refused up front by size."""
    from dse.pipeline.niche import parse_niche
    from hwspace.space import parse_space

    space = parse_space(cfg["space"])
    _check_pinned_splits(parse_niche(cfg["niche"]), space)
    if verb == "search":
        build(st.SearchConfig, cfg["search"], "search")
        return
    sweep = build(st.SweepConfig, cfg["sweep"], "sweep")
    if sweep.mode == "grid" and space.grid_size() > st.MAX_GRID:
        raise ValueError(f"sweep.mode = 'grid': space {space.name} has {space.grid_size():,} "
                         f"grid points; allowed: at most {st.MAX_GRID:,} (fewer num/step "
                         f"points, or sweep.mode=random)")


def _check_pinned_splits(niche, space) -> None:
    """A niche's pinned tp x pp divides at least one system size of the space (else every
    row is infeasible: a typo, not a design question)."""
    chips = next((p for p in space.params if p.name == "chips"), None)
    sizes = (1,) if chips is None else None if chips.is_range else chips.choices
    for ns in niche.scenarios:
        split = (ns.system_config.tp or 1) * (ns.system_config.pp or 1)
        if sizes is not None and split > 1 and all(int(c) % split for c in sizes):
            key = "tp" if ns.system_config.tp else "pp"
            raise ValueError(f"niche.scenarios.{ns.name}.{key} = "
                             f"{getattr(ns.system_config, key)}: tp x pp ({split}) divides none "
                             f"of the space's chips ({', '.join(str(c) for c in sizes)})")
