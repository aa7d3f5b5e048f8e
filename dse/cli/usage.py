"""What `dse --help`, `dse <verb> --help` and shell completion print: each verb's job, its
groups and keys with their defaults, and the examples (tests/test_readme_examples.py runs
every one of them)."""

from __future__ import annotations

import dataclasses
import re
import textwrap
import typing

from omegaconf import OmegaConf

from dse import settings as st
from dse.presets import CONF_DIR, preset_names
from workloads.scenario import ScenarioConfig

__all__ = ["VERBS", "EXAMPLES", "overview", "verb_help", "completion_script"]

VERBS = {
    "predict": "one chip on one workload scenario: throughput, latency, cost, power",
    "explain": "predict, plus the per-operator table (FLOP, bytes, intensity, time, bound)",
    "sweep": "a design space x a niche's scenarios on Ray -> Parquet under outputs/",
    "search": "Optuna Pareto search of a niche's design space (NSGA-II, TPE, random, QMC) on "
              "Ray",
    "query": 'read-only SQL (DuckDB) over a run\'s Parquet rows: dse query "SELECT ..." '
             "[run=...]",
    "rank": "a niche's feasible candidates ranked, Pareto front marked, real chips placed",
    "report": "PNG figures and one HTML page for a run (fronts, rooflines, niches, "
              "sensitivity)",
    "validate": "the model against measured results of real chips (cv=chip: "
                "leave-one-chip-out)",
    "calibrate": "refit the global efficiency factors on measured results",
}

# Each runs as written, in this order, on a fresh folder (tests/test_readme_examples.py).
EXAMPLES = [
    "dse predict chip=h100 workload=llama2-70b scenario.phase=decode scenario.batch=64 "
    "system.chips=8",
    "dse predict chip=a100 workload=gpt2 scenario.phase=decode --json",
    "dse explain chip=groq-lpu workload=llama2-7b scenario.phase=decode system.chips=64",
    "dse sweep space=demo niche=local_llm sweep.mode=grid",
    "dse sweep space=hyperscale niche=hyperscale sweep.samples=1000000 ray.address=auto",
    "dse sweep resume=outputs/2026-11-24/10-00-00_sweep_local_llm",
    "dse search niche=hyperscale search=tpe search.trials=5000",
    "dse validate cv=chip",
    'dse query "SELECT niche, count(*) FROM rows GROUP BY niche" run=all',
    "dse rank niche=hyperscale by=throughput_per_usd top=20",
    "dse explain candidate=12 scenario_name=llama3-70b-int4",
    "dse report",
]

# Sections whose keys a schema types (its field metadata gives the allowed values).
_SCHEMAS = {"scenario": ScenarioConfig, "system": st.SystemConfig, "sweep": st.SweepConfig,
            "search": st.SearchConfig, "ray": st.RayConfig}
_VERB_SCHEMAS = {"predict": st.PredictSettings, "sweep": st.RunSettings,
                 "search": st.RunSettings, "validate": st.ValidateSettings,
                 "calibrate": st.CalibrateSettings}
# Groups whose option is a whole preset: help names the option, not its contents.
_PRESET_GROUPS = ("chip", "workload", "space", "niche")
_COMMENT = re.compile(r"^(\w+):[^#]*#\s*(.+)$")


def overview() -> str:
    """`dse --help`: the verbs, the examples and how to get more."""
    verbs = "\n".join(f"  {v:<9} {text}" for v, text in VERBS.items())
    examples = "\n".join(f"  {e}" for e in EXAMPLES)
    return (f"usage: dse <verb> [key=value ...] [--json]\n\nverbs:\n{verbs}\n\nexamples:\n"
            f"{examples}\n\n"
            "dse <verb> --help: the verb's groups and keys with their defaults\n"
            "shell completion: eval \"$(dse --completion bash)\" (bash; zsh after "
            "bashcompinit)\n")


def verb_help(verb: str, config_name: str, extra: list[str]) -> str:
    """`dse <verb> --help`: what the verb does, then its groups and keys with defaults."""
    cfg = _composed(config_name, extra)
    choices = {g: c for g, c in cfg.hydra.runtime.choices.items()
               if not g.startswith("hydra") and not str(c).endswith("schema")}
    groups = [textwrap.fill(f"{g:<9} [{_shown(c)}] " + ", ".join(
        n for n in preset_names(g) if not n.endswith("schema")), 100, initial_indent="  ",
        subsequent_indent=" " * 12, break_on_hyphens=False) for g, c in choices.items()]
    comments = _yaml_comments(config_name)
    schema = _VERB_SCHEMAS.get(config_name)
    keys = []
    for key, value in _flat(OmegaConf.to_container(cfg, resolve=False)):
        section, _, name = key.rpartition(".")
        hint = comments.get(key) or _hint(_SCHEMAS.get(section) if section else schema, name)
        keys.append(f"  {key}={_shown(value)}" + (f"  # {hint}" if hint else ""))
    examples = [f"  {e}" for e in EXAMPLES if e.split()[1] == verb]
    parts = [f"dse {verb}: {VERBS[verb]}",
             f"usage: dse {verb} [key=value ...] [--multirun] [--cfg job|hydra|all]"]
    parts += ["examples:\n" + "\n".join(examples)] if examples else []
    parts += ["groups (group=option; [the default]):\n" + "\n".join(groups)] if groups else []
    parts += ["keys (key=default):\n" + "\n".join(keys),
              f"Hydra's own flags: dse {verb} --hydra-help"]
    return "\n\n".join(parts) + "\n"


def _composed(config_name: str, extra: list[str]):
    from hydra import compose, initialize_config_dir

    from dse.cli.schema import register

    register()  # the YAML names its schema first in its defaults
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name, extra, return_hydra_config=True)
    return cfg


def _flat(node: dict, prefix: str = "") -> list[tuple[str, object]]:
    """(dotted key, default) of every setting, preset groups and Hydra's own left out."""
    out = []
    for key, value in node.items():
        if not prefix and key in ("hydra", *_PRESET_GROUPS):
            continue
        if isinstance(value, dict) and value:
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _shown(value: object) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)


def _yaml_comments(config_name: str) -> dict[str, str]:
    """key -> the comment beside a top-level key of conf/<config_name>.yaml."""
    lines = (CONF_DIR / f"{config_name}.yaml").read_text().splitlines()
    return {m.group(1): m.group(2) for m in map(_COMMENT.match, lines) if m}


def _hint(schema: type | None, name: str) -> str:
    """What a schema field allows: its choices, range and unit, from its metadata."""
    if schema is None:
        return ""
    field = next((f for f in dataclasses.fields(schema) if f.name == name), None)
    if field is None:
        return ""
    meta = field.metadata
    kind = typing.get_type_hints(schema)[name]
    parts = [" | ".join(map(str, meta["choices"]))] if "choices" in meta else []
    low = meta.get("low", meta.get("above"))
    high = meta.get("high", meta.get("below"))
    if low is not None or high is not None:
        parts.append(f"{'>' if 'above' in meta else ''}{_num(low)}..{_num(high)}")
    parts += [" or ".join(map(repr, meta["words"]))] if "words" in meta else []
    parts += [meta["unit"]] if "unit" in meta else []
    parts += ["true | false"] if kind is bool else []
    return ", ".join(p for p in parts if p)


def _num(value: object) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


_BASH = """_dse_complete()
{
    local word=${COMP_WORDS[COMP_CWORD]}
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W "VERBS" -- "$word"))
        return
    fi
    local choices
    choices=$(COMP_POINT=$COMP_POINT COMP_LINE=$COMP_LINE \\
              dse "${COMP_WORDS[1]}" -sc query=bash 2>/dev/null)
    COMPREPLY=($(compgen -o nospace -o default -W "$choices" -- "$word"))
}
COMP_WORDBREAKS=${COMP_WORDBREAKS//=}
complete -o nospace -o default -F _dse_complete dse
"""


def completion_script(shell: str) -> str:
    """The bash script that completes `dse <verb> key=value`: verbs first, then Hydra's
    completion of the verb's config (Hydra's own script completes one app, not verbs)."""
    if shell != "bash":
        raise ValueError(f"--completion {shell}: allowed: bash (zsh: bashcompinit, then the "
                         f"bash script)")
    return _BASH.replace("VERBS", " ".join(VERBS))
