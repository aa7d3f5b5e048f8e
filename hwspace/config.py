"""Schema of conf/chip and conf/space: one accelerator package in friendly units (DESIGN.md
section 3). Each field's range, choices and unit sit in its metadata beside its default (the
one source: hwspace.spec.FIELD_RANGES and dse.inputs read them); ``chip_rules`` holds the
cross-field rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from hwspace.compute import COMPUTE_CLASSES
from hwspace.tables import EXECUTION_MODELS, LINK_KIND_NAMES, MEMORY_TYPES, NODE_NAMES

__all__ = ["MemoryConfig", "LinksConfig", "ChipConfig", "SpaceConfig", "chip_rules",
           "MAX_CHIPS", "DTYPE_SPEEDUP_RANGE"]

# The largest system, in predict and in every space (dse.evaluator.parallel reads it too):
# 2**20 packages, ~10x the largest AI clusters announced by 2024 (100,000-GPU class), so any
# real system fits and a typo such as 1e9 is refused instead of enumerating a billion splits.
MAX_CHIPS = 1_048_576
# Throughput multiplier of a dtype vs bf16 (0: the class is unsupported).
DTYPE_SPEEDUP_RANGE = dict(low=0.0, high=64.0)


@dataclass
class MemoryConfig:
    """Off-chip memory. Capacity and bandwidth derive from ``type`` x ``stacks`` when null;
    type ``none`` (an SRAM-only chip) has no stacks, capacity or bandwidth."""

    type: str = field(default="none", metadata=dict(choices=MEMORY_TYPES))
    stacks: int = field(default=0, metadata=dict(low=0, high=64, unit="stacks"))
    capacity_gb: Optional[float] = field(default=None, metadata=dict(above=0.0, high=1e5,
                                                                      unit="GB"))
    bandwidth_tb_s: Optional[float] = field(default=None, metadata=dict(above=0.0, high=1e3,
                                                                         unit="TB/s"))


@dataclass
class LinksConfig:
    """Chip-to-chip links; ``gb_s_per_link`` is GB/s in one direction, ``latency_us`` per hop.
    ``kind`` (hwspace.tables.LINK_KINDS) sets the collective's achieved share of that
    bandwidth and its per-call software latency."""

    kind: str = field(default="nvlink", metadata=dict(choices=LINK_KIND_NAMES))
    count: int = field(default=0, metadata=dict(low=0, high=1024, unit="links"))
    gb_s_per_link: float = field(default=0.0, metadata=dict(low=0.0, high=1e4, unit="GB/s"))
    latency_us: float = field(default=1.0, metadata=dict(low=0.0, high=1e4, unit="us"))


@dataclass
class ChipConfig:
    """One accelerator package. Optional figures derive from the others when null."""

    name: str = MISSING
    process_node: str = field(default=MISSING, metadata=dict(choices=NODE_NAMES))
    macs: int = field(default=MISSING, metadata=dict(low=1, high=1e9, unit="MAC units"))
    clock_ghz: float = field(default=MISSING, metadata=dict(low=0.01, high=10.0, unit="GHz"))
    # fp16 math runs in the bf16 class (the same 16-bit datapath): accepted, at speedup 1
    dtype_speedup: dict[str, float] = field(
        default_factory=lambda: {"bf16": 1.0},
        metadata=dict(keys=(*COMPUTE_CLASSES, "fp16"), values=DTYPE_SPEEDUP_RANGE))
    sparsity_speedup: float = field(default=1.0, metadata=dict(low=1.0, high=2.0))
    sram_mb: float = field(default=MISSING, metadata=dict(low=0.0, high=1e6, unit="MB"))
    sram_bw_tb_s: Optional[float] = field(default=None, metadata=dict(low=1e-6, high=1e6,
                                                                       unit="TB/s"))
    # SMs, CUs, cores: the MACs form this many units that each compute one output tile at a
    # time (null: one per hwspace.compute.MACS_PER_UNIT MACs)
    compute_units: Optional[int] = field(default=None, metadata=dict(low=1, high=1e7,
                                                                       unit="units"))
    # vector-unit FLOP/s / matrix bf16 peak
    vector_ratio: Optional[float] = field(default=None, metadata=dict(low=1e-3, high=1.0))
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    links: LinksConfig = field(default_factory=LinksConfig)
    tdp_w: Optional[float] = field(default=None, metadata=dict(low=1e-3, high=1e6, unit="W"))
    # energy per dense bf16 FLOP of the compute datapath at full clock, pJ (null: the process
    # node's, hwspace.power.flop_pj, calibrated on NVIDIA GPUs; presets of other
    # architectures take their vendor's rating, each with its derivation)
    flop_pj: Optional[float] = field(default=None, metadata=dict(low=1e-3, high=100.0,
                                                                  unit="pJ"))
    die_area_mm2: Optional[float] = field(default=None, metadata=dict(low=1e-3, high=1e5,
                                                                       unit="mm2"))
    unit_cost_usd: Optional[float] = field(default=None, metadata=dict(low=1e-3, high=1e9,
                                                                        unit="USD"))
    # A real part's market price (list price or public quote; presets only), per package: the
    # buyer view (hwspace.cost) prices candidates at cost / (1 - gross margin) instead.
    price_usd: Optional[float] = field(default=None, metadata=dict(low=1e-3, high=1e9,
                                                                    unit="USD"))
    # The price buys a whole system per package (Cerebras CS-3, DGX): no server on top.
    price_includes_host: bool = False
    dies: int = field(default=1, metadata=dict(low=1, high=64, unit="dies"))
    wafer_scale: bool = False
    # kernels: a GPU-like chip launches one kernel per operator; dataflow: a compiled static
    # schedule (Groq, Cerebras, SambaNova) with no per-operator launch (hwspace.tables).
    execution: str = field(default="kernels", metadata=dict(choices=EXECUTION_MODELS))


def chip_rules(chip: ChipConfig, where: str = "chip") -> None:
    """Cross-field rules of one chip; ValueError naming the field."""
    for key in ("bf16", "fp16"):
        if chip.dtype_speedup.get(key, 1.0) != 1.0:
            raise ValueError(f"{where}.dtype_speedup.{key} = {chip.dtype_speedup[key]!r}: the "
                             f"bf16 reference class; allowed: 1")
    mem = chip.memory
    if mem.type == "none":
        for name in ("stacks", "capacity_gb", "bandwidth_tb_s"):
            value = getattr(mem, name)
            if value:
                raise ValueError(f"{where}.memory.{name} = {value!r}: memory.type none "
                                 f"(SRAM-only) has no off-chip memory; allowed: "
                                 f"{'0' if name == 'stacks' else 'null'}")
    elif mem.stacks == 0 and (mem.capacity_gb is None or mem.bandwidth_tb_s is None):
        raise ValueError(f"{where}.memory.stacks = 0: memory.type {mem.type} needs >= 1 stack "
                         f"(or both capacity_gb and bandwidth_tb_s given)")
    if chip.links.count and not chip.links.gb_s_per_link:
        raise ValueError(f"{where}.links.gb_s_per_link = {chip.links.gb_s_per_link!r}: "
                         f"{chip.links.count} links need a bandwidth; allowed: > 0 GB/s")


@dataclass
class SpaceConfig:
    """Schema of conf/space: each parameter is a value (fixed), a list or ``{choices: [...]}``,
    or a range ``{low, high, log, step, num}``; nested like the chip spec
    (``memory: {stacks: ...}``). Validated by hwspace.space.parse_space."""

    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)
