"""Schema of conf/chip: one accelerator package in friendly units (DESIGN.md section 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

__all__ = ["MemoryConfig", "LinksConfig", "ChipConfig", "SpaceConfig"]


@dataclass
class MemoryConfig:
    """Off-chip memory. Capacity and bandwidth derive from ``type`` x ``stacks`` when null."""

    type: str = "none"
    stacks: int = 0
    capacity_gb: Optional[float] = None
    bandwidth_tb_s: Optional[float] = None


@dataclass
class LinksConfig:
    """Chip-to-chip links; ``gb_s_per_link`` is GB/s in one direction, ``latency_us`` per hop.
    ``kind`` (hwspace.tables.LINK_KINDS) sets the collective's achieved share of that
    bandwidth and its per-call software latency."""

    kind: str = "nvlink"
    count: int = 0
    gb_s_per_link: float = 0.0
    latency_us: float = 1.0


@dataclass
class ChipConfig:
    """One accelerator package. Optional figures derive from the others when null."""

    name: str = MISSING
    process_node: str = MISSING
    macs: int = MISSING
    clock_ghz: float = MISSING
    dtype_speedup: dict[str, float] = field(default_factory=lambda: {"bf16": 1.0})
    sparsity_speedup: float = 1.0
    sram_mb: float = MISSING
    sram_bw_tb_s: Optional[float] = None
    vector_ratio: Optional[float] = None  # vector-unit FLOP/s / matrix bf16 peak
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    links: LinksConfig = field(default_factory=LinksConfig)
    tdp_w: Optional[float] = None
    die_area_mm2: Optional[float] = None
    unit_cost_usd: Optional[float] = None
    dies: int = 1
    wafer_scale: bool = False
    # kernels: a GPU-like chip launches one kernel per operator; dataflow: a compiled static
    # schedule (Groq, Cerebras, SambaNova) with no per-operator launch (hwspace.tables).
    execution: str = "kernels"


@dataclass
class SpaceConfig:
    """Schema of conf/space: each parameter is a value (fixed), a list or ``{choices: [...]}``,
    or a range ``{low, high, log, step, num}``; nested like the chip spec
    (``memory: {stacks: ...}``). Validated by hwspace.space.parse_space."""

    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)
