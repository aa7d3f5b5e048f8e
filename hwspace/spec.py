"""ChipArrays (one SI array per chip field) and the one friendly-units -> SI conversion.

Chips arrive either as ``ChipConfig`` objects (presets, user designs) or as flat columns of a
design space (``memory.stacks`` becomes column ``memory_stacks``). Both go through
``from_columns``, which validates every field at this edge and converts units once:
1 MB = 1e6 bytes, 1 GB = 1e9 bytes, TB/s = 1e12 bytes/s (DESIGN.md section 2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from collections.abc import Iterable, Mapping

import numpy as np

from hwspace.compute import COMPUTE_CLASSES, DEFAULT_VECTOR_RATIO, default_compute_units
from hwspace.config import DTYPE_SPEEDUP_RANGE, ChipConfig, LinksConfig, MemoryConfig
from hwspace.memory import derive_memory
from hwspace.tables import EXECUTION_MODELS, LINK_KIND_NAMES, MEMORY_TYPES, NODE_NAMES

__all__ = ["ChipArrays", "from_columns", "from_configs", "flatten_config", "nest_config",
           "FIELD_RANGES", "FIELD_META", "python_value"]

_NAN = float("nan")



def _field_meta() -> dict[str, dict]:
    """Metadata of every numeric chip field by flat column name (memory.stacks ->
    memory_stacks), read from the ChipConfig schema: its one source."""
    out = {}
    for group, schema in (("", ChipConfig), ("memory_", MemoryConfig), ("links_", LinksConfig)):
        for f in fields(schema):
            if "low" in f.metadata or "above" in f.metadata:
                out[f"{group}{f.name}"] = dict(f.metadata, nullable=f.default is None)
    for cls in COMPUTE_CLASSES[1:]:
        out[f"dtype_speedup_{cls}"] = dict(DTYPE_SPEEDUP_RANGE, nullable=False)
    return out


FIELD_META: dict[str, dict] = _field_meta()
# Allowed range of every numeric friendly-unit column: (low, high, nullable); a bound given
# as ``above`` in FIELD_META is exclusive.
FIELD_RANGES: dict[str, tuple[float, float, bool]] = {
    key: (float(m.get("low", m.get("above"))), float(m["high"]), m["nullable"])
    for key, m in FIELD_META.items()}

_DEFAULTS: dict[str, object] = {
    "sparsity_speedup": 1.0,
    "sram_bw_tb_s": _NAN,
    "vector_ratio": _NAN,
    "compute_units": _NAN,
    "memory_type": "none",
    "memory_stacks": 0,
    "memory_capacity_gb": _NAN,
    "memory_bandwidth_tb_s": _NAN,
    "links_kind": "nvlink",
    "links_count": 0,
    "links_gb_s_per_link": 0.0,
    "links_latency_us": 1.0,
    "tdp_w": _NAN,
    "flop_pj": _NAN,
    "die_area_mm2": _NAN,
    "unit_cost_usd": _NAN,
    "price_usd": _NAN,
    "price_includes_host": False,
    "dies": 1,
    "wafer_scale": False,
    "execution": "kernels",
    **{f"dtype_speedup_{c}": 0.0 for c in COMPUTE_CLASSES[1:]},
}
_REQUIRED = ("process_node", "macs", "clock_ghz", "sram_mb")


@dataclass(frozen=True)
class ChipArrays:
    """A struct of arrays, one entry per candidate chip, SI units. Every array is (n_cand,)
    except ``dtype_speedup`` (n_cand, len(COMPUTE_CLASSES)), 0 where a class is unsupported."""

    node_idx: np.ndarray
    macs: np.ndarray
    clock_hz: np.ndarray
    dtype_speedup: np.ndarray
    sparsity_speedup: np.ndarray
    sram_bytes: np.ndarray
    sram_bw_bytes_per_s: np.ndarray  # NaN: derive (hwspace.compute)
    vector_ratio: np.ndarray  # NaN: hwspace.compute.DEFAULT_VECTOR_RATIO
    compute_units: np.ndarray  # NaN given: hwspace.compute.default_compute_units
    mem_idx: np.ndarray
    mem_stacks: np.ndarray
    mem_capacity_bytes: np.ndarray
    mem_bw_bytes_per_s: np.ndarray
    link_kind_idx: np.ndarray  # into hwspace.tables.LINK_KIND_NAMES
    link_count: np.ndarray
    link_bw_bytes_per_s: np.ndarray  # per link, one direction
    link_latency_s: np.ndarray
    tdp_w: np.ndarray  # NaN: derive (hwspace.power)
    flop_pj: np.ndarray  # per bf16 FLOP; NaN: the process node's (hwspace.power)
    die_area_mm2: np.ndarray  # NaN: derive (hwspace.cost)
    unit_cost_usd: np.ndarray  # NaN: derive (hwspace.cost)
    price_usd: np.ndarray  # market price; NaN: none (the buyer view marks the cost up)
    price_includes_host: np.ndarray
    dies: np.ndarray
    wafer_scale: np.ndarray
    execution_idx: np.ndarray  # into hwspace.tables.EXECUTION_MODELS

    @property
    def n(self) -> int:
        return int(self.macs.shape[0])

    def take(self, idx: np.ndarray) -> ChipArrays:
        """The candidates at ``idx`` (an index or boolean array)."""
        return ChipArrays(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def flatten_config(chip: ChipConfig | Mapping) -> dict[str, object]:
    """A chip config as flat friendly columns: ``memory.stacks`` -> ``memory_stacks``."""
    data = asdict(chip) if isinstance(chip, ChipConfig) else dict(chip)
    flat: dict[str, object] = {}
    for key, value in data.items():
        if key == "dtype_speedup":
            _check_dtype_keys(value or {})
            for cls in COMPUTE_CLASSES[1:]:
                flat[f"dtype_speedup_{cls}"] = float((value or {}).get(cls, 0.0))
        elif isinstance(value, Mapping):
            for sub, sub_value in value.items():
                flat[f"{key}_{sub}"] = sub_value
        else:
            flat[key] = value
    return {k: (_NAN if v is None else v) for k, v in flat.items()}


def python_value(value: object) -> object:
    """A numpy scalar as the Python number or string it holds; anything else unchanged."""
    return value.item() if hasattr(value, "item") else value


def nest_config(flat: Mapping[str, object]) -> dict[str, object]:
    """Flat friendly columns (one candidate) -> a chip dict of DESIGN.md section 3: the
    inverse of ``flatten_config``. Numpy scalars become Python numbers, NaN null."""
    out: dict[str, object] = {}
    for key, value in flat.items():
        value = python_value(value)
        if isinstance(value, float) and math.isnan(value):
            value = None  # NaN is a column's null (flatten_config): the schema's null
        for prefix, group in (("dtype_speedup_", "dtype_speedup"), ("memory_", "memory"),
                              ("links_", "links")):
            if key.startswith(prefix):
                out.setdefault(group, {})[key[len(prefix):]] = value
                break
        else:
            out[key] = value
    if "dtype_speedup" in out:
        out["dtype_speedup"] = {"bf16": 1.0, **{k: v for k, v in out["dtype_speedup"].items() if v}}
    if "memory" in out:
        out["memory"] = _memory_as_chip(out["memory"])
    return out


def _memory_as_chip(memory: dict) -> dict:
    """A space candidate's memory as a chip states it (hwspace.config.chip_rules): a space may
    pair type none with stacks, or a type with 0 stacks; both mean no off-chip memory."""
    sized = memory.get("capacity_gb") is not None and memory.get("bandwidth_tb_s") is not None
    if memory.get("type", "none") == "none" or (not memory.get("stacks") and not sized):
        return {**memory, "type": "none", "stacks": 0, "capacity_gb": None,
                "bandwidth_tb_s": None}
    return memory


def _check_dtype_keys(speedups: Mapping) -> None:
    # fp16 math runs in the bf16 class (the same 16-bit datapath): accepted, at speedup 1.
    for key, value in speedups.items():
        if key not in (*COMPUTE_CLASSES, "fp16"):
            raise ValueError(f"dtype_speedup: unknown dtype {key!r}; allowed: "
                             f"{', '.join(COMPUTE_CLASSES)} (fp16 counts as bf16)")
        if key in ("bf16", "fp16") and float(value) != 1.0:
            raise ValueError(f"dtype_speedup.{key} is the bf16 reference class and must be 1, "
                             f"got {value}")


def from_configs(chips: Iterable[ChipConfig | Mapping]) -> ChipArrays:
    """Chip configs (dataclasses or plain dicts of section 3) -> ChipArrays."""
    rows = [flatten_config(c) for c in chips]
    if not rows:
        raise ValueError("chips: at least one chip is needed")
    keys = {k for row in rows for k in row}
    cols = {k: np.array([row.get(k, _DEFAULTS.get(k, _NAN)) for row in rows]) for k in keys}
    return from_columns(cols)


def _index_of(values: np.ndarray, allowed: tuple[str, ...], field: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        bad = (values < 0) | (values >= len(allowed))
        if bad.any():
            raise ValueError(f"{field}: index {values[bad][0]} out of range 0..{len(allowed) - 1}")
        return values.astype(np.int64)
    uniq, inverse = np.unique(values.astype(str), return_inverse=True)
    lookup = {name: i for i, name in enumerate(allowed)}
    for name in uniq:
        if name not in lookup:
            raise ValueError(f"{field}: unknown value {name!r}; allowed: {', '.join(allowed)}")
    return np.array([lookup[name] for name in uniq], dtype=np.int64)[inverse]


def _numeric(cols: Mapping, key: str, n: int) -> np.ndarray:
    raw = cols[key] if key in cols else _DEFAULTS[key]
    try:
        arr = np.broadcast_to(np.asarray(raw, dtype=float), (n,))
    except (TypeError, ValueError):
        raise ValueError(f"{_display_name(key)}: not a number: {raw!r}") from None
    low, high, nullable = FIELD_RANGES[key]
    nan = np.isnan(arr)
    below = (arr <= low) if "above" in FIELD_META[key] else (arr < low)
    bad = (nan & (not nullable)) | (~nan & (below | (arr > high)))
    if bad.any():
        value = arr[bad][0]
        name = _display_name(key)
        bracket = "(" if "above" in FIELD_META[key] else "["
        raise ValueError(f"{name} = {value:g} is out of range {bracket}{low:g}, {high:g}]")
    return arr


def _display_name(key: str) -> str:
    for prefix in ("memory_", "links_", "dtype_speedup_"):
        if key.startswith(prefix):
            return prefix[:-1] + "." + key[len(prefix):]
    return key


def from_columns(cols: Mapping[str, object]) -> ChipArrays:
    """Flat friendly-unit columns -> validated ChipArrays in SI units.

    Args:
        cols: column name -> scalar or array (n_cand,). ``process_node``, ``macs``,
            ``clock_ghz`` and ``sram_mb`` are required; the others default as in ChipConfig.

    Raises:
        ValueError: naming the field, the bad value and the allowed range.
    """
    for key in _REQUIRED:
        if key not in cols:
            raise ValueError(f"{key}: required field is missing")
    unknown = set(cols) - set(FIELD_RANGES) - set(_DEFAULTS) - set(_REQUIRED) - {"name"}
    if unknown:
        raise ValueError(f"unknown chip field(s): {', '.join(sorted(unknown))}")
    n = max(np.size(v) for v in cols.values())
    num = {key: _numeric(cols, key, n) for key in FIELD_RANGES}
    for key in ("memory_stacks", "links_count", "dies", "compute_units"):
        if np.any(num[key] != np.round(num[key]), where=~np.isnan(num[key])):
            raise ValueError(f"{_display_name(key)} must be a whole number")
    node_idx = _index_of(np.broadcast_to(cols["process_node"], (n,)), NODE_NAMES, "process_node")
    mem_raw = cols.get("memory_type", _DEFAULTS["memory_type"])
    mem_idx = _index_of(np.broadcast_to(mem_raw, (n,)), MEMORY_TYPES, "memory.type")
    link_kind_idx = _index_of(np.broadcast_to(cols.get("links_kind", "nvlink"), (n,)),
                              LINK_KIND_NAMES, "links.kind")
    execution_idx = _index_of(np.broadcast_to(cols.get("execution", "kernels"), (n,)),
                              EXECUTION_MODELS, "execution")
    capacity_gb, bandwidth_tb_s = derive_memory(
        mem_idx, num["memory_stacks"], num["memory_capacity_gb"], num["memory_bandwidth_tb_s"]
    )
    speedup = np.stack(
        [np.ones(n)] + [num[f"dtype_speedup_{c}"] for c in COMPUTE_CLASSES[1:]], axis=1
    )
    return ChipArrays(
        node_idx=node_idx,
        macs=num["macs"],
        clock_hz=num["clock_ghz"] * 1e9,
        dtype_speedup=speedup,
        sparsity_speedup=num["sparsity_speedup"],
        sram_bytes=num["sram_mb"] * 1e6,
        sram_bw_bytes_per_s=num["sram_bw_tb_s"] * 1e12,
        vector_ratio=np.where(np.isnan(num["vector_ratio"]), DEFAULT_VECTOR_RATIO,
                              num["vector_ratio"]),
        compute_units=np.where(np.isnan(num["compute_units"]),
                               default_compute_units(num["macs"]), num["compute_units"]),
        mem_idx=mem_idx,
        mem_stacks=num["memory_stacks"],
        mem_capacity_bytes=capacity_gb * 1e9,
        mem_bw_bytes_per_s=bandwidth_tb_s * 1e12,
        link_kind_idx=link_kind_idx,
        link_count=num["links_count"],
        link_bw_bytes_per_s=num["links_gb_s_per_link"] * 1e9,
        link_latency_s=num["links_latency_us"] * 1e-6,
        tdp_w=num["tdp_w"],
        flop_pj=num["flop_pj"],
        die_area_mm2=num["die_area_mm2"],
        unit_cost_usd=num["unit_cost_usd"],
        price_usd=num["price_usd"],
        price_includes_host=np.broadcast_to(
            np.asarray(cols.get("price_includes_host", False), bool), (n,)),
        dies=num["dies"],
        wafer_scale=np.broadcast_to(np.asarray(cols.get("wafer_scale", False), bool), (n,)),
        execution_idx=execution_idx,
    )
