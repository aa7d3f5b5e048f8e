"""A command line checked before Hydra runs its verb: unknown presets and flags, overrides
that do not compose, every input of the composed config against its schema (dse.inputs:
chip or chip_file, workload, scenario, system, space, niche, sweep, search, ray and the verb's
own settings), a grid's size, folders that cannot be written. Each problem becomes one
ValueError line naming the setting, its value and what is allowed (DESIGN.md section 8),
never Hydra's search-path dump or OmegaConf's multi-line one."""

from __future__ import annotations

import dataclasses
import tempfile
import typing
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (ConfigAttributeError, ConfigKeyError, OmegaConfBaseException,
                              ValidationError)

from dse import settings as st
from dse.cli.input_checks import check_inputs
from dse.evaluator.engine import EngineConfig
from dse.inputs import field_problem
from dse.presets import CONF_DIR, preset_names, yaml_problem
from hwspace.config import ChipConfig
from hwspace.cost import EconomicsConfig
from workloads.config import CNNConfig, TransformerConfig
from workloads.scenario import ScenarioConfig

__all__ = ["check_command", "check_inputs", "one_line"]

_GROUPS = ("chip", "workload", "niche", "space", "search", "cluster", "economics", "engine")
# Settings that name a place the verb writes to (query's out= is a file, report's a folder).
_PLACES = ("out", "sweep.results_dir", "hydra.run.dir", "hydra.sweep.dir")
_RUN_FOLDER_VERBS = ("sweep", "search", "validate")  # Hydra makes a run folder under cwd


def check_command(verb: str, config_name: str, overrides: list[str]) -> DictConfig | None:
    """ValueError (one line) for the first problem of ``overrides`` of ``verb``; otherwise
    the composed config (the verb can run on it: Hydra need not compose it again), or None
    where an override sweeps (the config checked holds only its first value)."""
    try:
        parsed = OverridesParser.create().parse_overrides(
            [o for o in overrides if not o.startswith("-")])
    except HydraException as err:
        raise ValueError(f"bad override: {str(err).splitlines()[0]}") from None
    first = []
    for o in parsed:
        _check_literal(o)
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [
            o.get_value_element_as_str()]
        if o.key_or_group in _GROUPS and not o.is_delete():
            _check_presets(o.key_or_group, values)
        first.append(o.input_line if not o.is_sweep_override()
                     else f"{o.get_key_element()}={values[0]}")
    _check_switches(config_name, parsed)
    cfg = _check_compose(config_name, first)
    check_inputs(verb, OmegaConf.to_container(cfg, resolve=True))
    places = {o.key_or_group: _text(o) for o in parsed
              if o.key_or_group in _PLACES and not o.is_sweep_override()}
    if verb in _RUN_FOLDER_VERBS and not places.keys() & {"hydra.run.dir", "hydra.sweep.dir"}:
        places["the current folder"] = "."
    for key, value in places.items():
        if value not in ("null", ""):
            _check_writable(key, value, is_file=(verb == "query" and key == "out"))
    address = next((_text(o) for o in parsed
                    if o.key_or_group == "ray.address"), "null")
    if address not in ("null", "", "auto"):
        from dse.pipeline.workers import check_port  # imports Ray: only when an address is given

        check_port(address)  # a refused port fails before Hydra makes a run folder
    return None if any(o.is_sweep_override() for o in parsed) else cfg


# Sections whose fields are typed by a schema (the first schema that has the field wins).
_SECTIONS = {"chip": (ChipConfig,), "workload": (TransformerConfig, CNNConfig),
             "scenario": (ScenarioConfig,), "system": (st.SystemConfig,),
             "economics": (EconomicsConfig,), "engine": (EngineConfig,),
             "sweep": (st.SweepConfig,), "search": (st.SearchConfig,), "ray": (st.RayConfig,)}
_VERB_SCHEMAS = {"predict": st.PredictSettings, "calibrate": st.CalibrateSettings,
                 "validate": st.ValidateSettings}


def _check_literal(o) -> None:
    """A value is the user's text: no ${...} interpolation (it would read the environment or
    other settings); Hydra's own settings keep theirs."""
    if not o.key_or_group.startswith("hydra.") and "${" in o.input_line.split("=", 1)[-1]:
        raise ValueError(f"{o.key_or_group}: ${{...}} interpolation is not allowed in a value; "
                         f"give the value itself")


def _check_switches(config_name: str, parsed) -> None:
    """A true/false setting given as anything else: OmegaConf would read 2 or 'yes' as true."""
    for o in parsed:
        if o.is_sweep_override() or o.is_delete():
            continue
        *path, name = o.key_or_group.split(".")
        schemas = _SECTIONS.get(path[0], ()) if path else (_VERB_SCHEMAS.get(config_name),)
        for schema in schemas:
            for part in path[1:]:
                schema = _nested(schema, part)
            if schema is not None and _is_switch(schema, name) and not isinstance(o.value(),
                                                                                   bool):
                raise ValueError(field_problem(schema, name, o.value(), o.key_or_group))


def _nested(schema, name: str):
    found = [f for f in dataclasses.fields(schema) if f.name == name] if schema else []
    kind = typing.get_type_hints(schema).get(name) if found else None
    return kind if dataclasses.is_dataclass(kind) else None


def _is_switch(schema, name: str) -> bool:
    return typing.get_type_hints(schema).get(name) is bool


def _text(o) -> str:
    """An override's value as the user meant it (Hydra's string form escapes ':')."""
    value = o.value()
    return "null" if value is None else str(value)


def _check_presets(group: str, values: list[str]) -> None:
    names = preset_names(group)
    for value in values:
        if value != "null" and "${" not in value and value not in names:
            raise ValueError(f"{group}={value}: no such {group} preset; available: "
                             f"{', '.join(names)}")


def _compose(config_name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


# OmegaConf lets a plain ValueError out for some overrides (a key under a list).
_COMPOSE_ERRORS = (HydraException, OmegaConfBaseException, yaml.YAMLError, ValueError)


def _check_compose(config_name: str, overrides: list[str]):
    try:
        return _compose(config_name, overrides)
    except _COMPOSE_ERRORS as err:
        line = one_line(err, config_name, overrides)
        if not any(o.split("=", 1)[0].lstrip("+~") in line for o in overrides):
            line = f"{_culprit(config_name, overrides)}: {line}"
        raise ValueError(line) from None


def _culprit(config_name: str, overrides: list[str]) -> str:
    """The first override that makes the composition fail (or all of them)."""
    for k in range(1, len(overrides) + 1):
        try:
            _compose(config_name, overrides[:k])
        except _COMPOSE_ERRORS:
            return overrides[k - 1]
    return " ".join(overrides)


def _causes(err: BaseException) -> list[BaseException]:
    out = [err]
    while (nxt := out[-1].__cause__ or out[-1].__context__) is not None and nxt not in out:
        out.append(nxt)
    return out


def one_line(err: BaseException, config_name: str = "", overrides: list[str] = ()) -> str:
    """One line for a composition error: a YAML file's line and column, an unknown key with
    the keys allowed beside it, a bad value with its key, or the first line of the message."""
    for cause in _causes(err):
        if isinstance(cause, yaml.YAMLError):
            return yaml_problem(cause)
        if isinstance(cause, MissingConfigException) and cause.options:
            names = [o for o in cause.options if not o.endswith("schema")]
            return f"{str(cause).splitlines()[0]}; available: {', '.join(names)}"
        key = getattr(cause, "full_key", None)
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and key:
            return _unknown_key(key, config_name, overrides)
        schema = getattr(cause, "object_type", None)
        if isinstance(cause, ValidationError) and key and dataclasses.is_dataclass(schema):
            line = field_problem(schema, str(cause.key), cause.value, key)
            if line:
                return line
        if isinstance(cause, OmegaConfBaseException) and key:
            return f"{key}: {str(cause.msg if hasattr(cause, 'msg') else cause).splitlines()[0]}"
    return str(err).strip().splitlines()[0]


def _unknown_key(key: str, config_name: str, overrides: list[str]) -> str:
    parent, _, name = key.rpartition(".")
    names = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    others = [o for o, k in zip(overrides, names, strict=True)
              if not (key.startswith(k) or k.startswith(key))]
    try:
        node = OmegaConf.select(_compose(config_name, others), parent)
        allowed = ", ".join(str(k) for k in node) if hasattr(node, "keys") else ""
    except _COMPOSE_ERRORS:
        allowed = ""
    where = parent or "the config"
    return f"{key}: {where} has no setting {name!r}" + (f"; allowed: {allowed}" if allowed
                                                        else "")


def _check_writable(key: str, value: str, is_file: bool) -> None:
    """The nearest existing folder of ``value`` (its parent, for a file) takes a file."""
    path = Path(value).expanduser()
    path = path.parent if is_file else path
    there = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    label = key if key.startswith("the ") else f"{key}={value}"
    if is_file and there != path:
        raise ValueError(f"{label}: folder {path} does not exist")
    if not there.is_dir():
        raise ValueError(f"{label}: {there} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=there):
            pass
    except OSError as err:
        raise ValueError(f"{label}: cannot write in {there} ({err.strerror})") from None
