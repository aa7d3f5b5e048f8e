"""`dse predict` and `dse explain` without Hydra: the config Hydra would compose, built from
the same files by the same OmegaConf merges and updates, for plain command lines only.

Importing Hydra and one composition cost 0.35 s of predict's 1 s (issue 20). A plain line
holds ``key=value`` overrides whose values Hydra's grammar reads as one int, decimal float,
bool, null or unquoted word (hydra/grammar/OverrideLexer.g4, hydra-core 1.3), and group
choices among the presets. Anything else (a sweep, ``+key``, quotes, an interpolation, a
value the schema would convert, a problem the checks find) returns None: Hydra composes it
again and words the error, so every error line stays Hydra's path's (dse.cli.checks).
"""

from __future__ import annotations

import re
from io import StringIO

from omegaconf import DictConfig, OmegaConf

from dse.cli.input_checks import check_inputs
from dse.cli.schema import PREDICT_SCHEMAS
from dse.presets import CONF_DIR, preset_names

__all__ = ["compose_plain", "plain_value", "NOT_PLAIN"]

NOT_PLAIN = object()  # a value outside the plain subset: Hydra reads it
_KEY = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", re.ASCII)
_INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)?\.[0-9]+")
# Hydra's INT and FLOAT tokens in full (underscores, exponents, inf, nan, "1."): those beyond
# _INT and _FLOAT go to Hydra, never read as a word.
_DIGITS = r"(?:0|[1-9](?:_?[0-9])*)"
_POINT = rf"(?:{_DIGITS}\.|{_DIGITS}?\.[0-9](?:_?[0-9])*)"
_NUMBER = re.compile(rf"[+-]?(?:{_DIGITS}|{_POINT}|(?:{_DIGITS}|{_POINT})[eE][+-]?[0-9](?:_?"
                     rf"[0-9])*|inf|nan)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9_./-]+", re.ASCII)
_WORDS = {"true": True, "false": False, "null": None}
# The groups predict's defaults list selects (conf/config.yaml).
_GROUPS = ("scenario", "system", "chip", "workload", "economics", "engine")


class _NotPlain(Exception):
    """The command line, or a config it names, is outside what this module composes."""


def plain_value(text: str):
    """``text`` as Hydra's override parser reads it, or NOT_PLAIN."""
    if text.lower() in _WORDS:
        return _WORDS[text.lower()]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _NUMBER.fullmatch(text) or not _WORD.fullmatch(text):
        return NOT_PLAIN
    return text


def compose_plain(verb: str, config_name: str, overrides: list[str]) -> DictConfig | None:
    """The config Hydra would compose for ``overrides`` of ``verb``, its inputs checked
    (dse.cli.input_checks); None where Hydra must compose it (see the module's note)."""
    if verb not in ("predict", "explain"):
        return None
    try:
        cfg = _compose(config_name, overrides)
        check_inputs(verb, OmegaConf.to_container(cfg, resolve=True))
    except Exception:  # noqa: BLE001 - any problem: Hydra's path finds it and words it
        return None
    return cfg


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    choices, updates = _split(overrides)
    cfg = OmegaConf.create()
    for node in _primary(config_name, choices):
        cfg = OmegaConf.merge(cfg, node)
    if choices:
        raise _NotPlain(f"no group {next(iter(choices))} in {config_name}")
    # As Hydra's ConfigLoaderImpl: struct mode, then each override as OmegaConf.update.
    OmegaConf.set_struct(cfg, True)
    for key, value in updates:
        OmegaConf.update(cfg, key, value, merge=True)
        got = OmegaConf.select(cfg, key)
        widened = type(value) is int and type(got) is float  # FloatNode: 2 -> 2.0
        if not ((type(got) is type(value) or widened) and got == value):
            raise _NotPlain(f"{key}: the schema converts {value!r} to {got!r}")
    return cfg


def _split(overrides: list[str]) -> tuple[dict[str, str], list[tuple[str, object]]]:
    """({group: preset}, [(key, value)]) of plain ``key=value`` overrides, each key once."""
    choices, updates = {}, []
    for o in overrides:
        key, sep, text = o.partition("=")
        value = plain_value(text)
        if not sep or not _KEY.fullmatch(key) or value is NOT_PLAIN:
            raise _NotPlain(o)
        if key in _GROUPS:
            if value not in preset_names(key):
                raise _NotPlain(o)
            choices[key] = value
        else:
            updates.append((key, value))
    keys = [*choices, *(k for k, _ in updates)]
    if len(set(keys)) != len(keys):
        raise _NotPlain("a key given twice")
    return choices, updates


def _primary(name: str, choices: dict[str, str]):
    """The configs conf/<name>.yaml merges, in its defaults list's order (Hydra's)."""
    node = _load(CONF_DIR / f"{name}.yaml")
    defaults = OmegaConf.to_container(node.pop("defaults", []))
    node.pop("hydra", None)  # Hydra's own settings: compose drops them
    if "_self_" not in defaults:
        raise _NotPlain(f"{name}.yaml: no _self_")
    for entry in defaults:
        if entry == "_self_":
            yield node
        elif isinstance(entry, str) and _KEY.fullmatch(entry):
            yield from _primary(entry, choices)
        elif isinstance(entry, dict) and len(entry) == 1:
            (group, option), = entry.items()
            if group.startswith("override hydra/"):
                continue  # Hydra's logging: not part of the composed config
            if group not in _GROUPS:
                raise _NotPlain(f"{name}.yaml: group {group}")
            yield OmegaConf.create({group: _option(group, choices.pop(group, option))})
        else:
            raise _NotPlain(f"{name}.yaml: default {entry!r}")


def _option(group: str, option: str) -> DictConfig:
    """Preset ``option`` of ``group`` merged onto the schema its defaults list names."""
    if (group, option) in PREDICT_SCHEMAS:
        return OmegaConf.structured(PREDICT_SCHEMAS[group, option])
    node = _load(CONF_DIR / group / f"{option}.yaml")
    defaults = OmegaConf.to_container(node.pop("defaults", []))
    if len(defaults) != 2 or defaults[1] != "_self_" or (group, defaults[0]) not in \
            PREDICT_SCHEMAS:
        raise _NotPlain(f"{group}/{option}.yaml: defaults {defaults}")
    return OmegaConf.merge(OmegaConf.structured(PREDICT_SCHEMAS[group, defaults[0]]), node)


def _load(path) -> DictConfig:
    text = path.read_text(encoding="utf-8")
    if "@package" in text:  # a header that moves the config: Hydra places it
        raise _NotPlain(f"{path}: @package")
    node = OmegaConf.load(StringIO(text))
    if not isinstance(node, DictConfig):
        raise _NotPlain(f"{path}: not a mapping")
    return node
