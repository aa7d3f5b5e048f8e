"""One validator for every input schema: each dataclass field states its range, choices and
unit in ``metadata`` beside its default, each schema may have one cross-field rule, and
``build`` checks a plain mapping against both (type, bool for a number, finiteness, range,
choices, text length, unknown and missing keys). Bad input is one ValueError line: the
dotted field, the value given and what is allowed (DESIGN.md section 8).

Metadata keys: ``low``/``high`` (inclusive), ``above`` (exclusive lower bound), ``below``
(exclusive upper bound), ``choices``, ``words`` (strings a number field also takes, such as
batch ``"max"``), ``whole`` (an integer held in an ``Any`` field), ``unit``, ``keys`` and
``values`` (a dict field: its allowed keys, and the metadata of each value), ``schema`` (a
dataclass a mapping given to an ``Any`` field is built as: a length or its distribution).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from omegaconf import MISSING

from dse.evaluator.engine import EngineConfig, engine_rules
from hwspace.config import ChipConfig, chip_rules
from hwspace.cost import EconomicsConfig, economics_rules
from workloads.cnn import (LAYER_SCHEMAS, MobileNetLayers, ResNetLayers, VGGLayers,
                           layer_rules, size_rules)
from workloads.config import CNNConfig, TransformerConfig, transformer_rules
from workloads.scenario import LengthDistConfig, length_rules

__all__ = ["build", "check_value", "field_problem", "register_rule", "schema_fields",
           "MAX_TEXT", "shown"]

MAX_TEXT = 256  # characters of any one string setting: names, paths, URLs
_RULES: dict[type, Callable[[Any, str], None]] = {}


def register_rule(schema: type, rule: Callable[[Any, str], None]) -> None:
    """Make ``rule(obj, where)`` the cross-field check of ``schema`` (raises ValueError)."""
    _RULES[schema] = rule


def shown(value: Any) -> str:
    """``value`` as one short line (repr, at most 60 characters)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


@cache
def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def _required(f: dataclasses.Field) -> bool:
    return (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING) or \
        f.default == MISSING


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


@cache
def schema_fields(schema: type) -> dict[str, tuple[dataclasses.Field, Any, bool]]:
    """name -> (field, type, required) of ``schema``, computed once per schema."""
    hints = _hints(schema)
    return {f.name: (f, hints[f.name], _required(f)) for f in dataclasses.fields(schema)}


def build(schema: type, data: Any, where: str) -> Any:
    """An instance of dataclass ``schema`` from the plain mapping ``data``, every field
    checked against its metadata and the schema's rule; ValueError names ``where.field``."""
    if isinstance(data, schema):
        data = dataclasses.asdict(data)
    known = schema_fields(schema)
    if not isinstance(data, Mapping):
        raise ValueError(f"{where or 'input'} = {shown(data)}: expected a mapping of settings "
                         f"({', '.join(known)})")
    for key in data:
        if key not in known:
            raise ValueError(f"{_join(where, key)}: unknown setting; allowed: "
                             f"{', '.join(known)}")
    values = {}
    for name, (f, tp, required) in known.items():
        given = name in data and not (isinstance(data[name], str) and data[name] == MISSING)
        if given:
            values[name] = check_value(_join(where, name), data[name], tp, f.metadata,
                                       f.default == "")
        elif required:
            raise ValueError(f"{_join(where, name)}: required setting is missing")
        else:
            values[name] = _default(f)
    obj = schema(**values)
    if schema in _RULES:
        _RULES[schema](obj, where)
    return obj


def check_value(path: str, value: Any, tp: Any, meta: Mapping, may_be_empty: bool = False) -> Any:
    """``value`` checked and converted to type ``tp`` under ``meta``; ValueError otherwise."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        tp = next(a for a in args if a is not type(None))
        args = typing.get_args(tp)
    if value is None and tp is Any and not meta:
        return None
    if value is None:
        raise ValueError(f"{path} = null: a value is required ({_allowed(tp, meta)})")
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if "schema" in meta and (isinstance(value, Mapping) or dataclasses.is_dataclass(value)):
        return build(meta["schema"], value, path)
    if typing.get_origin(tp) is dict:
        return _dict(path, value, args[1], meta)
    if typing.get_origin(tp) is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{path} = {shown(value)}: expected a list")
        return [check_value(f"{path}[{i}]", v, args[0], meta) for i, v in enumerate(value)]
    if tp is Any and not meta:
        return _any(path, value)
    return _scalar(path, value, tp, meta, may_be_empty)


def _any(path: str, value: Any) -> Any:
    """Free-form data (a CNN's layer list): only text length is checked here."""
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError(f"{path}: text of {len(value):,} characters; allowed: at most "
                         f"{MAX_TEXT}")
    return value


def _dict(path: str, value: Any, value_tp: Any, meta: Mapping) -> dict:
    if not isinstance(value, Mapping):
        raise ValueError(f"{path} = {shown(value)}: expected a mapping")
    keys = meta.get("keys")
    out = {}
    for key, item in value.items():
        if keys is not None and key not in keys:
            raise ValueError(f"{_join(path, key)}: unknown key; allowed: {', '.join(keys)}")
        out[key] = check_value(_join(path, key), item, value_tp, meta.get("values", {}))
    return out


def _scalar(path: str, value: Any, tp: Any, meta: Mapping, may_be_empty: bool) -> Any:
    if isinstance(value, str) and value in meta.get("words", ()):
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{path} = {shown(value)}: allowed: true or false")
        return value
    if tp is str:
        return _text(path, value, meta, may_be_empty)
    whole = tp is int or meta.get("whole", False)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or (whole and value != int(value)):
        raise ValueError(f"{path} = {shown(value)}: allowed: {_allowed(tp, meta)}")
    number = int(value) if whole else float(value)
    if not _in_range(number, meta) or ("choices" in meta and number not in meta["choices"]):
        raise ValueError(f"{path} = {shown(value)}: allowed: {_allowed(tp, meta)}")
    return number


def _text(path: str, value: Any, meta: Mapping, may_be_empty: bool) -> str:
    choices = meta.get("choices")
    if not isinstance(value, str) or (choices is not None and value not in choices):
        allowed = ", ".join(map(str, choices)) if choices is not None else "text"
        raise ValueError(f"{path} = {shown(value)}: allowed: {allowed}")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{path}: text of {len(value):,} characters; allowed: at most "
                         f"{MAX_TEXT}")
    if not value.strip() and not may_be_empty:
        raise ValueError(f"{path} = {shown(value)}: allowed: non-empty text")
    return value


def _in_range(value: float, meta: Mapping) -> bool:
    return (value >= meta.get("low", -math.inf) and value > meta.get("above", -math.inf)
            and value <= meta.get("high", math.inf) and value < meta.get("below", math.inf))


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _allowed(tp: Any, meta: Mapping) -> str:
    """What a field takes, in words: 'a whole number in [1, 1,048,576] chips'."""
    if "choices" in meta:
        return ", ".join(map(str, meta["choices"]))
    if tp is bool:
        return "true or false"
    if tp is str:
        return "text"
    kind = "a whole number" if tp is int or meta.get("whole") else "a finite number"
    low = (f"[{_number(meta['low'])}" if "low" in meta else
           f"({_number(meta['above'])}" if "above" in meta else "")
    high = (f"{_number(meta['high'])}]" if "high" in meta else
            f"{_number(meta['below'])})" if "below" in meta else "")
    span = f" in {low}, {high}" if low and high else (
        f" >= {low[1:]}" if low.startswith("[") else f" > {low[1:]}" if low else
        f" <= {high[:-1]}" if high else "")
    words = "".join(f" or {w!r}" for w in meta.get("words", ()))
    unit = f" {meta['unit']}" if "unit" in meta else ""
    schema = (f" or a mapping of {', '.join(schema_fields(meta['schema']))}"
              if "schema" in meta else "")
    return f"{kind}{span}{unit}{words}{schema}"


def _cnn_rules(cfg: CNNConfig, where: str) -> None:
    """A CNN's layer list against its arch's schema, then the image through its layers."""
    layers = build(LAYER_SCHEMAS[cfg.arch], cfg.layers, f"{where}.layers")
    cfg.layers = dataclasses.asdict(layers)
    size_rules(cfg, where)


for _schema, _rule in ((ChipConfig, chip_rules), (TransformerConfig, transformer_rules),
                       (CNNConfig, _cnn_rules), (ResNetLayers, layer_rules),
                       (MobileNetLayers, layer_rules), (VGGLayers, layer_rules),
                       (EconomicsConfig, economics_rules), (LengthDistConfig, length_rules),
                       (EngineConfig, engine_rules)):
    register_rule(_schema, _rule)


def field_problem(schema: type, name: str, value: Any, path: str) -> str | None:
    """One line saying why ``value`` does not fit field ``name`` of ``schema`` (for type errors
    another parser found first, such as OmegaConf's); None if ``name`` is not a field."""
    found = [f for f in dataclasses.fields(schema) if f.name == name]
    if not found:
        return None
    tp, meta = _hints(schema)[name], found[0].metadata
    try:
        check_value(path, value, tp, meta)
    except ValueError as err:
        return str(err)
    bare = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
    return f"{path} = {shown(value)}: allowed: {_allowed(bare, meta)}"
