"""Design spaces: chip-spec parameters that are fixed, a list of choices, or a range.

Plain data and numpy only: the sweep enumerates a space in chunks (grid by mixed-radix index,
random by a per-chunk seed), and the search turns the same ranges into Optuna distributions.
Parameters are chip-spec paths (``memory.stacks``) or ``chips`` (chips per system); columns
use underscores (``memory_stacks``), the names ``hwspace.spec.from_columns`` reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from collections.abc import Mapping

import numpy as np

from hwspace.config import MAX_CHIPS
from hwspace.spec import FIELD_META, FIELD_RANGES
from hwspace.tables import EXECUTION_MODELS, LINK_KIND_NAMES, MEMORY_TYPES, NODE_NAMES

__all__ = ["Param", "Space", "parse_space", "SYSTEM_PARAMS"]

# Integer-valued parameters: values are rounded and ranges step by whole numbers.
_INTEGER = {"macs", "memory_stacks", "links_count", "dies", "chips"}
_CATEGORICAL = {"process_node": NODE_NAMES, "memory_type": MEMORY_TYPES,
                "wafer_scale": (False, True), "links_kind": LINK_KIND_NAMES,
                "execution": EXECUTION_MODELS}
SYSTEM_PARAMS = {"chips": (1.0, float(MAX_CHIPS))}
_RANGE_KEYS = {"low", "high", "log", "step", "num"}
MAX_POINTS = 1_000_000  # grid points of one parameter (num, or its step lattice)


@dataclass(frozen=True)
class Param:
    """One parameter. ``choices`` for fixed (one value) and choice parameters; ``low`` to
    ``high`` (``log``, ``step``, ``num`` grid points) for ranges."""

    name: str  # column name, e.g. memory_stacks
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    num: int | None = None

    @property
    def path(self) -> str:
        """The dotted spec path users write (memory.stacks)."""
        for prefix in ("memory_", "links_", "dtype_speedup_"):
            if self.name.startswith(prefix):
                return prefix[:-1] + "." + self.name[len(prefix):]
        return self.name

    @property
    def is_range(self) -> bool:
        return self.low is not None

    @property
    def integer(self) -> bool:
        return self.name in _INTEGER

    def grid_values(self) -> np.ndarray:
        """Every value a grid visits: the choices, or ``num`` points (default: the ``step``
        lattice; 5 points without one) spaced linearly or geometrically."""
        if not self.is_range:
            return np.asarray(self.choices)
        values = self._lattice()
        return np.unique(np.round(values)).astype(np.int64) if self.integer else values

    def _lattice(self) -> np.ndarray:
        if self.step is not None and self.num is None:
            return np.arange(self.low, self.high + self.step / 2, self.step)
        spacing = np.geomspace if self.log else np.linspace
        return spacing(self.low, self.high, self.num or 5)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` independent draws: uniform over choices; uniform or log-uniform over a range,
        snapped to ``step`` and to whole numbers where the parameter is an integer."""
        if not self.is_range:
            return np.asarray(self.choices)[rng.integers(0, len(self.choices), n)]
        if self.log:
            x = np.exp(rng.uniform(math.log(self.low), math.log(self.high), n))
        else:
            x = rng.uniform(self.low, self.high, n)
        if self.step is not None:
            x = self.low + np.round((x - self.low) / self.step) * self.step
        x = np.clip(x, self.low, self.high)
        return np.round(x).astype(np.int64) if self.integer else x


@dataclass(frozen=True)
class Space:
    name: str
    params: tuple[Param, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def grid_shape(self) -> tuple[int, ...]:
        return tuple(len(p.grid_values()) for p in self.params)

    def grid_size(self) -> int:
        return int(np.prod(self.grid_shape(), dtype=object))

    def grid_chunk(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Candidates ``start`` to ``stop`` of the grid (row-major, last parameter fastest)."""
        index = np.arange(start, min(stop, self.grid_size()), dtype=np.int64)
        cols = {}
        for p, size in zip(reversed(self.params), reversed(self.grid_shape()), strict=True):
            index, digit = np.divmod(index, size)
            cols[p.name] = p.grid_values()[digit]
        return {p.name: cols[p.name] for p in self.params}

    def random_chunk(self, seed: int, chunk: int, n: int) -> dict[str, np.ndarray]:
        """``n`` random candidates; chunk ``chunk`` of run ``seed`` is the same wherever and
        whenever it is drawn, so interrupted runs resume without gaps or duplicates."""
        rng = np.random.default_rng([seed, chunk])
        return {p.name: p.sample(rng, n) for p in self.params}


def _flatten(params: Mapping, prefix: str = "") -> dict[str, Any]:
    """{"memory": {"stacks": spec}} -> {"memory_stacks": spec}; a mapping with range or
    choice keys is a spec, any other mapping a group."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        is_spec = isinstance(value, Mapping) and (set(value) & (_RANGE_KEYS | {"choices"}))
        if isinstance(value, Mapping) and not is_spec:
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def _allowed(name: str) -> tuple[float, float] | None:
    if name in SYSTEM_PARAMS:
        return SYSTEM_PARAMS[name]
    if name in FIELD_RANGES:
        low, high, _ = FIELD_RANGES[name]
        return low, high
    return None


def _check_value(name: str, value: Any) -> Any:
    """``value`` if column ``name`` allows it; else ValueError naming the dotted path."""
    dotted = Param(name).path
    if name in _CATEGORICAL:
        if value not in _CATEGORICAL[name]:
            allowed = ", ".join(str(v) for v in _CATEGORICAL[name])
            raise ValueError(f"space.{dotted}: {value!r} is not allowed; choose from {allowed}")
        return value
    low, high = _allowed(name)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    above = "above" in FIELD_META.get(name, {})
    if not number or not (low < value if above else low <= value) or not value <= high:
        raise ValueError(f"space.{dotted} = {value!r}: allowed: a number in "
                         f"{'(' if above else '['}{low:g}, {high:g}]")
    if name in _INTEGER and value != int(value):
        raise ValueError(f"space.{dotted} = {value!r}: allowed: a whole number")
    return value


def _parse_param(name: str, spec: Any) -> Param:
    known = set(_CATEGORICAL) | set(FIELD_RANGES) | set(SYSTEM_PARAMS)
    if name not in known:
        raise ValueError(f"space: unknown parameter {name!r}; allowed (the chip spec's "
                         f"fields, DESIGN.md section 3, and chips): "
                         f"{', '.join(sorted(Param(k).path for k in known))}")
    dotted = Param(name).path
    if isinstance(spec, Mapping) and "choices" in spec:
        choices = list(spec["choices"])
        if not choices:
            raise ValueError(f"space.{dotted}: choices is empty")
        return Param(name, tuple(_check_value(name, v) for v in choices))
    if isinstance(spec, (list, tuple)):
        return _parse_param(name, {"choices": spec})
    if not isinstance(spec, Mapping):
        return Param(name, (_check_value(name, spec),))
    return _parse_range(name, dotted, spec)


def _parse_range(name: str, dotted: str, spec: Mapping) -> Param:
    unknown = set(spec) - _RANGE_KEYS
    if unknown:
        raise ValueError(f"space.{dotted}: unknown key(s) {sorted(unknown)}; a range takes "
                         f"low, high, log, step, num")
    if name in _CATEGORICAL:
        raise ValueError(f"space.{dotted}: a categorical parameter takes choices, not a range")
    if "low" not in spec or "high" not in spec:
        raise ValueError(f"space.{dotted}: a range needs both low and high")
    low, high = _check_value(name, spec["low"]), _check_value(name, spec["high"])
    if low > high:
        raise ValueError(f"space.{dotted}.low = {low:g}: allowed: <= high ({high:g})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"space.{dotted}.log = {log!r}: allowed: true or false")
    if log and low <= 0:
        raise ValueError(f"space.{dotted}: a log range needs low > 0, got {low:g}")
    step = spec.get("step")
    number = isinstance(step, (int, float)) and not isinstance(step, bool)
    if step is not None and not (number and math.isfinite(step) and step > 0):
        raise ValueError(f"space.{dotted}.step = {step!r}: allowed: a number > 0")
    if step is not None and log:
        raise ValueError(f"space.{dotted}.step = {step!r}: step and log cannot be combined")
    if step is not None and (high - low) / step + 1 > MAX_POINTS:
        raise ValueError(f"space.{dotted}.step = {step!r}: {(high - low) / step + 1:.3g} grid "
                         f"points; allowed: at most {MAX_POINTS:,}")
    num = spec.get("num")
    whole = isinstance(num, (int, float)) and not isinstance(num, bool) and num == int(num)
    if num is not None and not (whole and 1 <= num <= MAX_POINTS):
        raise ValueError(f"space.{dotted}.num = {num!r}: allowed: a whole number in "
                         f"[1, {MAX_POINTS:,}]")
    return Param(name, (), low, high, log, None if step is None else float(step),
                 None if num is None else int(num))


def _memory_rule(params: dict[str, Param]) -> None:
    """A space whose memory type is only none (SRAM-only) gives no off-chip figures."""
    kind = params.get("memory_type")
    if kind is None or kind.is_range or set(kind.choices) != {"none"}:
        return
    for key in ("memory_stacks", "memory_capacity_gb", "memory_bandwidth_tb_s"):
        p = params.get(key)
        if p is not None and (p.is_range or any(p.choices)):
            raise ValueError(f"space.{p.path}: memory.type none (SRAM-only) has no off-chip "
                             f"memory; allowed: 0 or leave it out")


def parse_space(cfg: Mapping) -> Space:
    """A validated Space from ``{name, params}``; ValueError names the bad parameter."""
    params = cfg.get("params") or {}
    if not isinstance(params, Mapping) or not params:
        raise ValueError("space.params: no parameters given")
    space_name = cfg.get("name", "space")
    if not isinstance(space_name, str) or not space_name.strip() or len(space_name) > 256:
        raise ValueError(f"space.name = {str(space_name)[:60]!r}: allowed: non-empty text of "
                         f"at most 256 characters")
    parsed = tuple(_parse_param(name, spec) for name, spec in _flatten(params).items())
    missing = {"process_node", "macs", "clock_ghz", "sram_mb"} - {p.name for p in parsed}
    if missing:
        raise ValueError(f"space: required chip field(s) not given: {', '.join(sorted(missing))}")
    _memory_rule({p.name: p for p in parsed})
    space = Space(space_name, parsed)
    if space.grid_size() == 0:
        raise ValueError("space: the grid is empty")
    return space

