"""Resolve chips, workloads and economic views given as a preset name, a dict, a YAML path or
a config object.

Presets are the YAML files of conf/chip, conf/workload and conf/economics; each names its
schema in its defaults list for Hydra, which this loader skips: it checks the file against the
schema with dse.inputs.build, as the CLI checks its composed config, so both read the files the
same way.
Files from users load without YAML aliases and under MAX_FILE_BYTES.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dse.evaluator.engine import EngineConfig
from dse.inputs import build, shown
from hwspace.config import ChipConfig
from hwspace.cost import EconomicsConfig
from workloads.config import CNNConfig, TransformerConfig
from workloads.ops import Plan
from workloads.scenario import Scenario, build_plan

__all__ = ["CONF_DIR", "load_chip", "load_workload", "load_economics", "load_engine", "load_plan",
           "preset_names", "to_config", "yaml_problem", "read_yaml", "MAX_FILE_BYTES"]

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


# Validated presets by name: conf/ does not change while a process runs, and reading and
# checking a preset again costs more than the evaluation (DESIGN.md section 7: predict()
# at >= 2,000 calls/s). Callers treat configs as read-only.
_PRESET_CHIPS: dict[str, ChipConfig] = {}
_PRESET_WORKLOADS: dict[str, TransformerConfig | CNNConfig] = {}
_PRESET_ECONOMICS: dict[str, EconomicsConfig] = {}
_PRESET_ENGINES: dict[str, EngineConfig] = {}


def preset_names(group: str) -> list[str]:
    """Names of the presets in conf/<group>, sorted."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


MAX_FILE_BYTES = 1_000_000  # a chip or workload YAML: presets are ~2 kB


class _NoAliasLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses anchors and aliases: a file of nested aliases (a
    "billion laughs" bomb) would expand to gigabytes; no chip or workload needs one."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(problem="YAML anchors and aliases (&, *) are not "
                                       "allowed", problem_mark=mark)
        return super().compose_node(parent, index)


def read_yaml(path: Path, where: str) -> Any:
    """The plain data of YAML file ``path``: no aliases, at most MAX_FILE_BYTES; ValueError
    (one line, naming ``where`` and the file) otherwise."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ValueError(f"{where} = {str(path)!r}: not a file")
        if size > MAX_FILE_BYTES:
            raise ValueError(f"{where} = {str(path)!r}: {size:,} bytes; allowed: at most "
                             f"{MAX_FILE_BYTES:,}")
        with path.open(encoding="utf-8") as stream:  # a stream: errors name the file
            return yaml.load(stream, Loader=_NoAliasLoader)
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: {yaml_problem(err)}") from None
    except RecursionError:
        raise ValueError(f"{where} = {str(path)!r}: nested too deeply to be a chip or a "
                         f"workload") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{where} = {str(path)!r}: cannot read it "
                         f"({getattr(err, 'strerror', None) or type(err).__name__})") from None


def _read(spec: Any, group: str) -> tuple[dict, list]:
    """(fields, defaults list) from a preset name, a YAML path or a mapping."""
    if isinstance(spec, Mapping):
        data = dict(spec)
        return data, data.pop("defaults", [])
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise ValueError(f"{group} = {shown(spec)}: allowed: a preset name "
                         f"({', '.join(preset_names(group)[:4])}, ...), a mapping or a YAML path")
    path = Path(str(spec))
    if path.suffix not in (".yaml", ".yml"):
        path = CONF_DIR / group / f"{spec}.yaml"
        if "/" in str(spec) or not path.exists():
            raise ValueError(
                f"{group}: unknown preset {shown(spec)}; available: "
                f"{', '.join(preset_names(group))}")
    elif not path.exists():
        raise ValueError(f"{group}: no such file {str(path)!r}")
    data = read_yaml(path, group)
    if not isinstance(data, dict):
        raise ValueError(f"{group}: {str(path)!r} is not a mapping")
    return data, data.pop("defaults", [])


def yaml_problem(err: yaml.YAMLError) -> str:
    """One line: the file, line and column (1-based) and what the YAML parser objects to."""
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return f"YAML error: {str(err).splitlines()[0]}"
    return (f"{mark.name}: YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: "
            f"{err.problem}")


def to_config(data: Mapping, schema: type, group: str):
    """``data`` checked against ``schema`` (dse.inputs.build): unknown, missing or bad fields
    become a ValueError naming the field."""
    return build(schema, data, group)


def load_chip(chip: Any) -> ChipConfig:
    """A ChipConfig from a preset name (conf/chip), a dict of DESIGN.md section 3, a YAML
    path or a ChipConfig."""
    if isinstance(chip, ChipConfig):  # built in Python: its ranges are unchecked so far
        return build(ChipConfig, chip, "chip")
    if isinstance(chip, str) and chip in _PRESET_CHIPS:
        return _PRESET_CHIPS[chip]
    cfg = to_config(_read(chip, "chip")[0], ChipConfig, "chip")
    if isinstance(chip, str) and chip in preset_names("chip"):
        _PRESET_CHIPS[chip] = cfg
    return cfg


def load_workload(workload: Any) -> TransformerConfig | CNNConfig:
    """A workload config from a preset name (conf/workload), a dict, a YAML path or a
    config object; ``cnn_schema`` in the defaults list or ``family: cnn`` selects the CNN
    schema."""
    if isinstance(workload, (TransformerConfig, CNNConfig)):
        return build(type(workload), workload, "workload")
    if isinstance(workload, str) and workload in _PRESET_WORKLOADS:
        return _PRESET_WORKLOADS[workload]
    data, defaults = _read(workload, "workload")
    is_cnn = data.get("family") == "cnn" or "cnn_schema" in defaults
    cfg = to_config(data, CNNConfig if is_cnn else TransformerConfig, "workload")
    if isinstance(workload, str) and workload in preset_names("workload"):
        _PRESET_WORKLOADS[workload] = cfg
    return cfg


def load_economics(economics: Any, where: str = "economics") -> EconomicsConfig:
    """An EconomicsConfig from a preset name (conf/economics: builder, buyer, retail), a
    mapping of its fields, a YAML path or an EconomicsConfig; ``where`` names it in errors."""
    if isinstance(economics, str) and economics in _PRESET_ECONOMICS:
        return _PRESET_ECONOMICS[economics]
    data = economics if isinstance(economics, EconomicsConfig) else _read(economics,
                                                                         "economics")[0]
    cfg = build(EconomicsConfig, data, where)
    if isinstance(economics, str) and economics in preset_names("economics"):
        _PRESET_ECONOMICS[economics] = cfg
    return cfg


def load_engine(engine: Any, where: str = "engine") -> EngineConfig:
    """An EngineConfig from a preset name (conf/engine: vllm, trtllm, sglang, llamacpp,
    optimum-habana), a mapping of its fields, a YAML path or an EngineConfig; ``where``
    names it in errors."""
    if isinstance(engine, str) and engine in _PRESET_ENGINES:
        return _PRESET_ENGINES[engine]
    data = engine if isinstance(engine, EngineConfig) else _read(engine, "engine")[0]
    cfg = build(EngineConfig, data, where)
    if isinstance(engine, str) and engine in preset_names("engine"):
        _PRESET_ENGINES[engine] = cfg
    return cfg


def load_plan(cfg: TransformerConfig | CNNConfig, sc: Scenario) -> Plan:
    """The plan of ``sc`` on ``cfg``, with the draft workload preset ``sc.draft`` names."""
    draft = None
    if isinstance(sc.draft, str):
        try:
            draft = load_workload(sc.draft)
        except ValueError as err:
            raise ValueError(f"scenario.draft: {err}") from None
        if not isinstance(draft, TransformerConfig) or draft.kind != "decoder":
            raise ValueError(f"scenario.draft = {sc.draft!r} is not a decoder LLM")
    return build_plan(cfg, sc, draft)
