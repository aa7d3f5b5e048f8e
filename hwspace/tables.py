"""Process-node, memory-technology, link and TCO tables, each row citing its source.

Every figure comes from ``shared/data/costpower.md`` / ``costpower.csv`` (quality tag in
brackets: P official, M open-source model, A analyst, R rumour, D derived there or here with
the formula shown). Units are in the field names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

__all__ = [
    "NodeRow",
    "MemoryRow",
    "NODES",
    "MEMORIES",
    "NODE_NAMES",
    "MEMORY_TYPES",
    "node_column",
    "memory_column",
    "RETICLE_MM2",
    "WAFER_DIAMETER_MM",
    "WAFER_EDGE_LOSS_MM",
    "SCRIBE_LANE_MM",
    "WAFER_SCALE_MAX_MM2",
    "YIELD_ALPHA",
    "HARVEST_FRACTION",
    "LINK_PJ_PER_BIT",
    "LINK_PHY_MM2_PER_GB_S",
    "LinkKindRow",
    "LINK_KINDS",
    "LINK_KIND_NAMES",
    "link_kind_column",
    "EXECUTION_MODELS",
    "SCALE_OUT",
    "TCO",
]


@dataclass(frozen=True)
class NodeRow:
    """One process node. Areas per unit, energies per operation, money per wafer."""

    wafer_usd: float
    d0_per_cm2: float
    mac_area_um2: float  # one bf16 MAC including systolic-array overhead
    sram_mb_per_mm2: float  # dense scratchpad macro
    mac_pj_bf16: float  # energy of one bf16 MAC (array, excluding DRAM)
    sram_pj_per_bit: float  # large-bank read
    static_w_per_mm2: float  # leakage and always-on power per die area
    mask_set_usd: float  # one full mask set (non-recurring, per design spin)


# Sources (costpower.md section 0 unless stated):
# wafer_usd: [A] CSET Khan & Mann 2020 Table 9 (16 nm 3,984; 7 nm 9,346; 5 nm 16,988);
#   4 nm: N5 family, 17,000 (costpower.md §0 default, range 13,400-20,000 [R]);
#   3 nm: 20,000 [M] CATCH layer_definitions.xml.
# d0_per_cm2: 16 nm 0.08 [M] chiplet-actuary; 7 nm 0.09 [P] TSMC VLSI 2019 via anandtech;
#   5/4/3 nm 0.10 [P] TSMC symposium 2020 via anandtech (N3: costpower §7 mid-range choice).
# mac_area_um2: [M] TPUv4i MXU 0.72 mm2/TOPS => 1,512 um2 per bf16 MAC at 7 nm incl. array
#   overhead (ReaLLM 7nm_default.yaml); other nodes [D] scaled by CSET logic density
#   (28.9 / 96.3 / 138.2 MTr/mm2 for 16 / 7 / 5 nm; 4 nm = N5 family; 3 nm 1.6x N5,
#   Morgan Stanley via pvsm.ru): 16 nm 1512*96.3/28.9, 5 nm 1512*96.3/138.2, 3 nm that / 1.6.
# sram_mb_per_mm2: 7 nm 1.56 [P] AMD V-Cache gen 1 (64 MB / 41 mm2, ISSCC 2022); other nodes
#   [D] scaled by HD bit-cell area (0.074 / 0.027 / 0.021 um2).
# mac_pj_bf16: [P] Samsung 4 nm NPU, JSSC 2023 (0.47 pJ per MAC); other nodes [D] scaled with
#   TSMC iso-speed power claims (N7->N5 -30 %, 16FF+->N7 -60 %, N5->N3 -25..30 %). Other
#   classes: hwspace.power.CLASS_ENERGY.
# sram_pj_per_bit: [M] ReaLLM 1.25 pJ/byte at 7 nm (cites Jouppi ISCA 2021), scaled [D] as above.
# static_w_per_mm2: [D] measured idle power at P0 / die area: H100 140-145 W / 814 mm2 = 0.17
#   (gpu-burn issue #114); V100 (12 nm) 53 W / 815 mm2 = 0.065 (GLM-130B issue #32);
#   7 nm interpolated 0.10.
# n10 (10 nm class, incl. Samsung 8N): wafer 5,992 [A] CSET via ttm-cas; D0 0.10, the middle of
#   0.08 (chiplet-actuary) and 0.12 (ttm-cas); MAC area 1512 * 96.3 / 52.5 (CSET density) [D];
#   SRAM, energies and leakage [D] geometric means of the n16 and n7 rows (no 10 nm figures in
#   costpower.md).
# mask_set_usd: [M] IC Knowledge strategic cost model as in ttm-cas `mw_mask_costs_arr`
#   (costpower.md §1.6): 16 nm 2.82 M, 10 nm 4.74 M, 7 nm 10.5 M, 5 nm 18.1 M; 4 nm = N5 family;
#   3 nm 40 M [A] SemiAnalysis, "The Dark Side Of The Semiconductor Design Renaissance" ("as we
#   cross the 3nm barrier, mask sets will begin to push into the $40M range").
NODES: dict[str, NodeRow] = {
    "n16": NodeRow(3984.0, 0.08, 5038.0, 0.57, 1.68, 0.39, 0.065, 2.82e6),
    "n10": NodeRow(5992.0, 0.10, 2773.0, 0.94, 1.06, 0.25, 0.081, 4.74e6),
    "n7": NodeRow(9346.0, 0.09, 1512.0, 1.56, 0.67, 0.156, 0.10, 10.5e6),
    "n5": NodeRow(16988.0, 0.10, 1054.0, 2.0, 0.47, 0.11, 0.17, 18.1e6),
    "n4": NodeRow(17000.0, 0.10, 1054.0, 2.0, 0.47, 0.11, 0.17, 18.1e6),
    "n3": NodeRow(20000.0, 0.10, 659.0, 2.0, 0.34, 0.08, 0.17, 40e6),
}


@dataclass(frozen=True)
class MemoryRow:
    """One off-chip memory technology, per stack (HBM) or per device/package (others)."""

    bw_gb_s_per_stack: float
    capacity_gb_per_stack: float
    pj_per_bit: float
    usd_per_gb: float
    phy_mm2_per_stack: float  # PHY + controller on the logic die
    interposer: bool  # needs 2.5D packaging (CoWoS-class)


# Sources (costpower.md section 4 unless stated):
# hbm2:   256 GB/s, 8 GB [P] Samsung via anandtech; 3.97 pJ/bit [M] FGDRAM breakdown;
#         $7.5/GB [M] ReaLLM Memory.py; PHY 9.7 mm2 (A100 measured) + controller 5.3 mm2
#         (31.77 mm2 / 6 stacks, LLMCompass die_area.csv) = 15 mm2 [D].
# hbm2e:  460.8 GB/s, 16 GB [P] JESD235C via techspot; 3.9 pJ/bit [M] ReaLLM; $7/GB [M]
#         LLMCompass (Oct 2023 spot); PHY + controller 15 mm2 [D] as hbm2.
# hbm3:   819 GB/s, 16 GB [P] JEDEC JESD238; 3.0 pJ/bit [M] ReaLLM hbm_explore.yaml;
#         $15/GB [R] szyunze.com ($1,500 per 80 GB); 16.6 mm2 [D] ReaLLM 1.04 mm2 x 16 ch.
# hbm3e:  1,228.8 GB/s (9.6 Gb/s x 1024), 24 GB 8-high [P] Micron via tweakers.net;
#         3.0 pJ/bit [M] ReaLLM h100/b200 configs; $15/GB [R] web3.okx.com (2025); 16.6 mm2 [D].
# hbm4:   2,048 GB/s (8 Gb/s x 2048), 36 GB (12-high of 24 Gb) [P] JEDEC via telepolis.pl;
#         pJ/bit: no public figure, HBM3e's 3.0 kept [D]; $19.5/GB = HBM3e x 1.3 [A] TrendForce
#         via cloudnews.tech; 33.2 mm2 = 2 x HBM3 (twice the channels) [D].
# lpddr5: one x64 package = 4 x16 channels of 12.8 GB/s = 51.2 GB/s [P/D] JESD209-5B via
#         tomshardware; 16 GB per package; 6 pJ/bit [D] between LPDDR3 I/O 3.7 and LPDDR4 13
#         (DRAM_info, no primary LPDDR5 figure); $2.4/GB [M] LLMCompass DDR5 (LPDDR5X ~ DDR5,
#         NVIDIA Grace); PHY + controller 5 mm2 per x64 [D] 2 x DDR5 x32 (1.45 mm2 + 1 mm2).
# lpddr5x: as lpddr5 at 8,533 MT/s: 4 x 17 GB/s = 68 GB/s [P] tomshardware, hardwaretimes.
# gddr6:  80 GB/s per x32 device at 20 Gb/s, 2 GB [P/D] gamebastion (RX 7900 XTX);
#         7.5 pJ/bit [M]; $3.4/GB [A] DRAMeXchange Jun 2023; 3 mm2 per x32 [D] ~ DDR5 x32 + ctrl.
# gddr6x: 84 GB/s per device at 21 Gb/s, 2 GB [P/D] tech-details.com; 7.25 pJ/bit [M] Micron;
#         $3.4/GB [A] as gddr6; 3 mm2 [D].
# gddr7:  128 GB/s per device at 32 Gb/s, 2 GB [P] JESD239 via tweaktown; <= 5.0 pJ/bit [D]
#         Micron "> 50 % better than GDDR6"; $3.5/GB [A] GDDR6 + "0-5 %" 2025 contract trend;
#         3 mm2 [D].
# none:   SRAM-only chip (Groq, Cerebras): no off-chip memory.
MEMORIES: dict[str, MemoryRow] = {
    "hbm2": MemoryRow(256.0, 8.0, 3.97, 7.5, 15.0, True),
    "hbm2e": MemoryRow(460.8, 16.0, 3.9, 7.0, 15.0, True),
    "hbm3": MemoryRow(819.0, 16.0, 3.0, 15.0, 16.6, True),
    "hbm3e": MemoryRow(1228.8, 24.0, 3.0, 15.0, 16.6, True),
    "hbm4": MemoryRow(2048.0, 36.0, 3.0, 19.5, 33.2, True),
    "lpddr5": MemoryRow(51.2, 16.0, 6.0, 2.4, 5.0, False),
    "lpddr5x": MemoryRow(68.0, 16.0, 6.0, 2.4, 5.0, False),
    "gddr6": MemoryRow(80.0, 2.0, 7.5, 3.4, 3.0, False),
    "gddr6x": MemoryRow(84.0, 2.0, 7.25, 3.4, 3.0, False),
    "gddr7": MemoryRow(128.0, 2.0, 5.0, 3.5, 3.0, False),
    "none": MemoryRow(0.0, 0.0, 0.0, 0.0, 0.0, False),
}

NODE_NAMES: tuple[str, ...] = tuple(NODES)
MEMORY_TYPES: tuple[str, ...] = tuple(MEMORIES)


def _columns(table: dict, row_type: type) -> dict[str, np.ndarray]:
    return {
        f.name: np.array([getattr(row, f.name) for row in table.values()], dtype=float)
        for f in fields(row_type)
    }


_NODE_COLUMNS = _columns(NODES, NodeRow)
_MEMORY_COLUMNS = _columns(MEMORIES, MemoryRow)


def node_column(name: str) -> np.ndarray:
    """One field of every node, indexed like ``NODE_NAMES`` (gather with a node index)."""
    return _NODE_COLUMNS[name]


def memory_column(name: str) -> np.ndarray:
    """One field of every memory type, indexed like ``MEMORY_TYPES``."""
    return _MEMORY_COLUMNS[name]


# Wafer, reticle and yield: costpower.md section 1.
RETICLE_MM2 = 858.0  # 26 x 33 mm, 0.33 NA field [P/M] CATCH wafer_process_definitions.xml
WAFER_DIAMETER_MM = 300.0
WAFER_EDGE_LOSS_MM = 5.0  # [M] chiplet-actuary parameter.ini
SCRIBE_LANE_MM = 0.2  # [M] chiplet-actuary parameter.ini
# Largest square inside a 300 mm wafer less edge loss: Cerebras WSE-2/3 are 46,225 mm2
# (215 x 215 mm) [P] tweaktown.com; that is the wafer-scale ceiling here.
WAFER_SCALE_MAX_MM2 = 46225.0
YIELD_ALPHA = 3.0  # negative binomial clustering [M] ttm-cas / LLMCompass
# Share of defective dies sold with units disabled (H100 SXM ships 132 of 144 SMs enabled,
# tweaktown/techpowerup). [D] 0.5 puts an 814 mm2 4 nm die at ~$400, between Silicon
# Analysts' $300 and the $600 of a defect-free die at $17k per wafer (costpower.md §1.3).
HARVEST_FRACTION = 0.5

# Chip-to-chip links: costpower.md sections 3.6 and 5.3.
LINK_PJ_PER_BIT = 1.3  # NVLink4 [P] NVIDIA "What is NVLink"


@dataclass(frozen=True)
class LinkKindRow:
    """What a collective achieves on one kind of link: the share of the links' one-direction
    bandwidth a ring all-reduce moves at large messages (NCCL's "bus bandwidth" / link peak),
    and the latency of one collective call at small messages (launch, protocol, sync)."""

    bw_efficiency: float
    call_latency_s: float


LINK_KINDS: dict[str, LinkKindRow] = {
    # NVLink ring: "NCCL can get an effective NVLink bandwidth of 370GB/s" of 450 line rate
    # (NVIDIA/nccl-tests issue #212, maintainer) = 0.82. Small-message latency of an 8-GPU
    # NVSwitch all-reduce: ~10-20 us with NCCL's LL protocol (bounded estimate: no stored
    # intra-node figure; 52-61 us inter-node over IB, nccl-tests issue #182).
    "nvlink": LinkKindRow(0.80, 10e-6),
    # xGMI: "usable bandwidth ... approximately 48 GB/s per link ... about 75% of the
    # theoretical peak" (AMD ROCm blog, RCCL and xGMI); x ~0.9 ring efficiency = 0.68.
    "infinity_fabric": LinkKindRow(0.68, 15e-6),
    # TPU ICI: no stored measurement; the NVLink ring share as a placeholder, and a smaller
    # call latency (XLA schedules collectives into the compiled program).
    "ici": LinkKindRow(0.80, 5e-6),
    # Gaudi's integrated RoCE: 8-device 256 MiB all_reduce "NW Bandwidth : 512.957298 GB/s;
    # Algo Bandwidth : 293.118456 GB/s" (Intel Gaudi docs, Collectives Performance; the
    # generation is not stated): ~0.85 of the ports; 30-35 us for an 8 KiB all-reduce over
    # 200 Gb/s RoCE (NVIDIA dgx-spark-playbooks PR #103) bounds the latency.
    "ethernet": LinkKindRow(0.85, 30e-6),
    # PCIe through the host: 8 GPUs "bwbus 28GB/s; 4GPU ... 35GB/s" on PCIe 5.0 x16 (63 GB/s)
    # (NVIDIA/nccl issue #1639) = 0.44-0.55; "the bandwidth your CPU and memory can deliver"
    # (maintainer). ~25 us per call through the host (estimate between the NVLink and IB
    # figures above).
    "pcie": LinkKindRow(0.45, 25e-6),
    # Compiler-scheduled chip-to-chip links of a dataflow system (Groq C2C): no collective
    # library call; the per-hop latency is the chip's links.latency_us. (Dataflow chips of any
    # link kind pay a schedule barrier per exchange instead: dse/evaluator/dataflow.py.)
    "c2c": LinkKindRow(0.90, 0.0),
}
LINK_KIND_NAMES: tuple[str, ...] = tuple(LINK_KINDS)
_LINK_COLUMNS = _columns(LINK_KINDS, LinkKindRow)


def link_kind_column(name: str) -> np.ndarray:
    """One field of every link kind, indexed like ``LINK_KIND_NAMES``."""
    return _LINK_COLUMNS[name]


@dataclass(frozen=True)
class ScaleOutDefaults:
    """The cluster network past the chips' own links (data-parallel training traffic)."""

    # DGX H100: NVLink joins 8 GPUs; past them, one 400 Gb/s InfiniBand NDR port per GPU
    # (eight ConnectX-7, NVIDIA DGX H100 user guide, "Hardware Overview") = 50 GB/s.
    chips_per_domain: int = 8
    gb_s_per_chip: float = 50.0
    # A ring all-reduce over InfiniBand moves ~0.85 of line rate, as RoCE in the ethernet
    # row above; 52-61 us per small inter-node all-reduce (NVIDIA/nccl-tests issue #182).
    bw_efficiency: float = 0.85
    call_latency_s: float = 55e-6


SCALE_OUT = ScaleOutDefaults()


# How a chip runs a model: one kernel launch per operator (GPU-like); a compiled dataflow
# schedule with no per-operator launch, each layer on an array region of its own (Groq TSP,
# Cerebras WSE, SambaNova RDU); or a compiled graph launched once per step whose operators run
# on tiled matrix engines with no launch of their own (Intel Gaudi's graph compiler: "lazy
# mode" accumulates ops into one graph, and HPU graphs replay it; Google TPU's XLA). Appended,
# not inserted: stored rows keep their index. Qualcomm's Cloud AI 100 stays `kernels`: as a
# graph its MLPerf single-stream ResNet-50 latency came out 4-7x too short (0.04 vs 0.32 ms).
EXECUTION_MODELS: tuple[str, ...] = ("kernels", "dataflow", "graph")
# NVLink4 PHY 0.965 mm2 per link of 25 GB/s per direction [M] LLMCompass => 0.0386 mm2 per GB/s.
LINK_PHY_MM2_PER_GB_S = 0.965 / 25.0


@dataclass(frozen=True)
class TcoDefaults:
    """Manufacturing, NRE and ownership-cost defaults (costpower.md sections 1.6, 5.4, 6)."""

    # Making one card.
    packaging_2p5d_usd: float = 750.0  # CoWoS-S, ~1 reticle die + 5-6 HBM [A] siliconanalysts
    packaging_2p5d_ref_mm2: float = 814.0 + 6 * 121.0  # that package: H100 die + 6 HBM sites
    hbm_site_mm2: float = 121.0  # HBM3 footprint 11 x 11 mm [P] tomshardware (Micron)
    package_usd: float = 70.0  # organic substrate $50 + assembly $20 [M] google chiplets model
    board_usd: float = 100.0  # PCB $50 + parts $50 [M] ReaLLM 7nm_default.yaml
    psu_usd_per_w: float = 0.13  # [M] ReaLLM
    test_fraction: float = 0.01  # test cost as a fraction of die cost [M] ReaLLM

    # Builder: NRE of one spin, amortised over the units sold. The article (shared/seed, "the
    # $10-20M needed to spin a chip") gives $15M (midpoint) for a start-up's spin, taken as a
    # mature-node (16 nm) spin with its $2.82M mask set: design, IP and tape-out are the other
    # $12.2M [D], and a node's own mask set (NODES.mask_set_usd) is added to it.
    design_nre_usd: float = 15e6 - 2.82e6
    # One 100,000-accelerator deployment: xAI's 100,000-GPU cluster (tomshardware), the reference
    # deployment ttm-cas's NRE-amortisation script cites ("xAI setups 100,000 H100 GPUs").
    volume_units: int = 100_000

    # Buyer: price of a candidate = manufacturing cost / (1 - gross margin). NVIDIA's GAAP gross
    # margin for fiscal 2025 was 75.0 % (Form 10-K, year to 26 Jan 2025; 72.7 % in fiscal 2024).
    gross_margin: float = 0.75
    server_cost_factor: float = 1.64  # server cost / accelerator cost [M] Epoch
    # Cluster network (NICs, switches, optics) as a fraction of the whole cluster's hardware
    # [M] Epoch training-cost-trends parameters.py CLUSTER_INTERCONNECT_COST_FRACTION = 0.19.
    network_cost_fraction: float = 0.19
    # Data-centre capex $10 per W of IT load, amortised over 12 years [M] ReaLLM (costpower §6.3).
    datacentre_usd_per_w: float = 10.0
    datacentre_life_years: float = 12.0
    # IT power per W of accelerator TDP: a DGX H100's maximum input is 10.2 kW with eight 700 W
    # GPUs (NVIDIA DGX H100/H200 user guide, power specifications) => 10.2 / 5.6 = 1.82 (CPUs,
    # memory, NICs, fans, NVSwitch).
    it_w_per_chip_w: float = 10.2 / 5.6
    # Cost of capital 8 % a year and server opex 5 % of the server's amortisation [M] ReaLLM
    # TCO.py (costpower.md §6.3).
    interest_rate: float = 0.08
    opex_fraction: float = 0.05

    # Energy and life.
    usd_per_kwh: float = 0.08  # [M] Epoch energy.py, EIA US industrial 2023-2025 (0.077-0.083)
    pue: float = 1.25  # [M] Epoch energy.py, non-hyperscale data centres
    life_years: float = 5.0  # [M] Epoch cost_analysis_standalone.py, servers from 2023


TCO = TcoDefaults()
