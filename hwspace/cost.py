"""Die area, dies per wafer, yield, die and unit cost, and the two economic views of a chip
(builder: what it costs to make; buyer: what it costs to own), vectorised over candidates."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from hwspace.tables import (
    HARVEST_FRACTION,
    LINK_PHY_MM2_PER_GB_S,
    SCRIBE_LANE_MM,
    TCO,
    WAFER_DIAMETER_MM,
    WAFER_EDGE_LOSS_MM,
    YIELD_ALPHA,
    memory_column,
    node_column,
)

__all__ = [
    "EconomicsConfig",
    "economics_rules",
    "VIEWS",
    "SECONDS_PER_YEAR",
    "nre_usd",
    "chip_price_usd",
    "system_cost_usd",
    "ownership_usd_per_s",
    "die_area_mm2",
    "dies_per_wafer",
    "negative_binomial_yield",
    "yield_fraction",
    "die_cost_usd",
    "packaging_usd",
    "unit_cost_usd",
]

# [D] A100 die-shot (LLMCompass die_area.csv): on-chip interconnect 76 + other 40 mm2 on top
# of cores 476 + L2 119 mm2 = 20 % overhead for NoC, control and clocking.
_LOGIC_OVERHEAD = 0.20
# [D] host interface: PCIe x16 at 0.48 mm2 per lane (LLMCompass) ~ 8 mm2, rounded up with pads.
_HOST_IO_MM2 = 10.0
# [D] judgement: each unit of low-precision speedup above 1 (fp8 x2 = 1 unit) and 2:4
# sparsity add 5 % to the MAC array (shared datapath; costpower.md §2.3 notes FP8/INT8 lanes
# cost about half a BF16 lane), so faster low-precision modes are not free in the search.
_AREA_PER_SPEEDUP_UNIT = 0.05


def die_area_mm2(
    node_idx: np.ndarray,
    macs: np.ndarray,
    dtype_speedup: np.ndarray,
    sparsity_speedup: np.ndarray,
    sram_bytes: np.ndarray,
    mem_idx: np.ndarray,
    mem_stacks: np.ndarray,
    link_count: np.ndarray,
    link_bw_bytes_per_s: np.ndarray,
) -> np.ndarray:
    """Total logic silicon per package, mm2 (n_cand,): MAC array + SRAM, plus NoC/control
    overhead, + memory PHYs + link PHYs + host I/O. ``dtype_speedup`` is (n_cand, n_classes)
    with bf16 first."""
    extra_modes = np.maximum(dtype_speedup[:, 1:] - 1.0, 0.0).sum(axis=1)
    extra = _AREA_PER_SPEEDUP_UNIT * (extra_modes + (sparsity_speedup - 1.0))
    mac_mm2 = macs * node_column("mac_area_um2")[node_idx] * 1e-6 * (1.0 + extra)
    sram_mm2 = sram_bytes / 1e6 / node_column("sram_mb_per_mm2")[node_idx]
    mem_phy = mem_stacks * memory_column("phy_mm2_per_stack")[mem_idx]
    link_phy = link_count * link_bw_bytes_per_s / 1e9 * LINK_PHY_MM2_PER_GB_S
    return (mac_mm2 + sram_mm2) * (1.0 + _LOGIC_OVERHEAD) + mem_phy + link_phy + _HOST_IO_MM2


def dies_per_wafer(area_mm2: np.ndarray) -> np.ndarray:
    """Gross dies per 300 mm wafer (Chiplet Actuary chip.py): scribe-lane padded area A_c,
    N = pi (d/2 - e)^2 / A_c - pi (d - 2e) / sqrt(2 A_c)."""
    a_c = area_mm2 + 2.0 * SCRIBE_LANE_MM * np.sqrt(area_mm2) + SCRIBE_LANE_MM**2
    d, e = WAFER_DIAMETER_MM, WAFER_EDGE_LOSS_MM
    n = np.pi * (d / 2 - e) ** 2 / a_c - np.pi * (d - 2 * e) / np.sqrt(2.0 * a_c)
    return np.maximum(n, 1.0)


def negative_binomial_yield(area_mm2: np.ndarray, d0_per_cm2: np.ndarray) -> np.ndarray:
    """Defect-free fraction Y = (1 + D0 A / alpha)^-alpha, A in cm2 (ttm-cas, alpha = 3)."""
    return (1.0 + d0_per_cm2 * area_mm2 / 100.0 / YIELD_ALPHA) ** (-YIELD_ALPHA)


def yield_fraction(area_mm2: np.ndarray, node_idx: np.ndarray) -> np.ndarray:
    """Sellable fraction of dies: defect-free dies plus the harvested share of the others."""
    y = negative_binomial_yield(area_mm2, node_column("d0_per_cm2")[node_idx])
    return y + HARVEST_FRACTION * (1.0 - y)


def die_cost_usd(
    per_die_mm2: np.ndarray, node_idx: np.ndarray, wafer_scale: np.ndarray
) -> np.ndarray:
    """Cost of one good die incl. test (n_cand,), USD. A wafer-scale part is one whole wafer
    whose redundancy absorbs defects (Cerebras routes around failed cores)."""
    wafer = node_column("wafer_usd")[node_idx]
    good = dies_per_wafer(per_die_mm2) * yield_fraction(per_die_mm2, node_idx)
    per_die = np.where(wafer_scale, wafer, wafer / good)
    return per_die * (1.0 + TCO.test_fraction)


def packaging_usd(
    logic_mm2: np.ndarray, mem_idx: np.ndarray, mem_stacks: np.ndarray, dies: np.ndarray
) -> np.ndarray:
    """Package cost (n_cand,): 2.5D (CoWoS-class) when HBM or several dies share an
    interposer, scaled by interposer area from the $750 H100 package and at least the $300
    low end (siliconanalysts packaging tool); an organic package otherwise."""
    needs_2p5d = memory_column("interposer")[mem_idx].astype(bool) & (mem_stacks > 0)
    needs_2p5d |= dies > 1
    interposer_mm2 = logic_mm2 + mem_stacks * TCO.hbm_site_mm2 * needs_2p5d
    scaled = TCO.packaging_2p5d_usd * interposer_mm2 / TCO.packaging_2p5d_ref_mm2
    return np.where(needs_2p5d, np.maximum(scaled, 300.0), TCO.package_usd)


def unit_cost_usd(
    die_cost: np.ndarray,
    dies: np.ndarray,
    memory_usd: np.ndarray,
    package_usd: np.ndarray,
    tdp_w: np.ndarray,
) -> np.ndarray:
    """Manufacturing cost of one accelerator card (n_cand,), USD: silicon + memory +
    package + board (PCB, parts and power delivery)."""
    board = TCO.board_usd + TCO.psu_usd_per_w * tdp_w
    return dies * die_cost + memory_usd + package_usd + board


VIEWS = ("builder", "buyer")
SECONDS_PER_YEAR = 365.25 * 24 * 3600
_USD = dict(low=0.0, high=1e12, unit="USD")
_FRACTION = dict(low=0.0, below=1.0)
_YEARS = dict(above=0.0, high=100.0, unit="years")


@dataclass
class EconomicsConfig:
    """Schema of conf/economics: which view prices a chip and the figures each view uses
    (defaults and their sources: hwspace.tables.TCO). builder = manufacturing + NRE / volume,
    system = the chips; buyer = market price (presets' ``price_usd``) or cost / (1 - margin),
    system = chips + servers + network, owned with data-centre capex, interest, opex, energy."""

    view: str = field(default="buyer", metadata=dict(choices=VIEWS))
    # builder: design, IP and tape-out of one spin besides the node's mask set
    design_nre_usd: float = field(default=TCO.design_nre_usd, metadata=_USD)
    # builder: units the NRE is spread over
    volume_units: int = field(default=TCO.volume_units, metadata=dict(low=1, high=10**12,
                                                                      unit="units"))
    # buyer: a candidate's price = cost / (1 - gross_margin)
    gross_margin: float = field(default=TCO.gross_margin, metadata=_FRACTION)
    # buyer: server cost per accelerator cost (1: the card alone)
    server_cost_factor: float = field(default=TCO.server_cost_factor,
                                      metadata=dict(low=1.0, high=100.0))
    # buyer: the cluster network's share of all hardware cost
    network_cost_fraction: float = field(default=TCO.network_cost_fraction, metadata=_FRACTION)
    # buyer: data-centre capex per W of IT load, and the building's life
    datacentre_usd_per_w: float = field(default=TCO.datacentre_usd_per_w,
                                        metadata=dict(low=0.0, high=1e4, unit="USD/W"))
    datacentre_life_years: float = field(default=TCO.datacentre_life_years, metadata=_YEARS)
    # buyer: IT power (host, network, fans) per W drawn by the accelerators
    it_w_per_chip_w: float = field(default=TCO.it_w_per_chip_w,
                                   metadata=dict(low=1.0, high=100.0))
    # buyer: cost of capital a year, and opex as a share of the hardware's amortisation
    interest_rate: float = field(default=TCO.interest_rate, metadata=dict(low=0.0, high=1.0))
    opex_fraction: float = field(default=TCO.opex_fraction, metadata=dict(low=0.0, high=10.0))
    # both: electricity, cooling overhead and service life
    usd_per_kwh: float = field(default=TCO.usd_per_kwh,
                               metadata=dict(low=0.0, high=10.0, unit="USD/kWh"))
    pue: float = field(default=TCO.pue, metadata=dict(low=1.0, high=10.0))
    life_years: float = field(default=TCO.life_years, metadata=_YEARS)


# Settings only one view reads: set in the other, they would be ignored without a word.
_ONLY = {"builder": ("design_nre_usd", "volume_units"),
         "buyer": ("gross_margin", "server_cost_factor", "network_cost_fraction",
                   "datacentre_usd_per_w", "datacentre_life_years", "it_w_per_chip_w",
                   "interest_rate", "opex_fraction")}


def economics_rules(cfg: EconomicsConfig, where: str = "economics") -> None:
    """The other view's settings keep their defaults; ValueError naming the first that does
    not (it would have no effect)."""
    other = "buyer" if cfg.view == "builder" else "builder"
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in _ONLY[other] and value != f.default:
            raise ValueError(f"{where}.{f.name} = {value!r}: a {other} setting, unused by "
                             f"{where}.view = {cfg.view}; allowed: {f.default!r} (or "
                             f"{where}.view = {other})")


def nre_usd(node_idx: np.ndarray, econ: EconomicsConfig) -> np.ndarray:
    """Non-recurring cost of one spin (n_cand,), USD: design, IP and tape-out plus the node's
    mask set (hwspace.tables: masks at 5/3 nm cost 18-40 M USD, at 16 nm 2.8 M USD)."""
    return econ.design_nre_usd + node_column("mask_set_usd")[node_idx]


def chip_price_usd(making_usd: np.ndarray, price_usd: np.ndarray, node_idx: np.ndarray,
                   econ: EconomicsConfig) -> np.ndarray:
    """What one package costs in ``econ.view`` (n_cand,), USD. builder: manufacturing cost
    plus its share of the NRE; buyer: the market price where one is known (NaN: none), else
    the cost marked up to the gross margin, price = cost / (1 - margin)."""
    if econ.view == "builder":
        return making_usd + nre_usd(node_idx, econ) / econ.volume_units
    return np.where(np.isnan(price_usd), making_usd / (1.0 - econ.gross_margin), price_usd)


def system_cost_usd(unit_usd: np.ndarray, chips: np.ndarray, includes_host: np.ndarray,
                    econ: EconomicsConfig) -> np.ndarray:
    """What the system of ``chips`` packages costs (n_cand,), USD. builder: the packages;
    buyer: with their servers (unless the price already buys a whole system, such as a
    Cerebras CS-3) and the cluster network, a fixed share of all the hardware (Epoch)."""
    if econ.view == "builder":
        return chips * unit_usd
    server = np.where(includes_host, 1.0, econ.server_cost_factor)
    return chips * unit_usd * server / (1.0 - econ.network_cost_fraction)


def _annuity_per_year(rate: float, years: float) -> float:
    """Yearly payment that repays 1 USD over ``years`` at ``rate``: the capital recovery
    factor r / (1 - (1 + r)^-n), 1 / n at rate 0."""
    return 1.0 / years if rate == 0 else rate / (1.0 - (1.0 + rate) ** -years)


def ownership_usd_per_s(system_usd: np.ndarray, chips: np.ndarray, tdp_w: np.ndarray,
                        power_w: np.ndarray, includes_host: np.ndarray,
                        econ: EconomicsConfig) -> np.ndarray:
    """Cost of the system per second of its life (n_cand,), USD/s. Both views: the system
    cost spread over ``life_years`` and the energy at ``power_w`` per chip x PUE. The buyer
    adds interest and opex on it, the host's power (``it_w_per_chip_w``) and its share of
    the data centre, built for the IT load at TDP and paid over the building's life (ReaLLM
    TCO.py: DC capex x TDP x life / 12 years)."""
    year_s = SECONDS_PER_YEAR
    if econ.view == "builder":
        it_w = chips * power_w
        capex = system_usd / (econ.life_years * year_s)
        building = 0.0
    else:
        host = np.where(includes_host, 1.0, econ.it_w_per_chip_w)
        it_w = chips * power_w * host
        capex = (system_usd * _annuity_per_year(econ.interest_rate, econ.life_years)
                 * (1.0 + econ.opex_fraction) / year_s)
        building = (chips * tdp_w * host * econ.datacentre_usd_per_w
                    * _annuity_per_year(econ.interest_rate, econ.datacentre_life_years) / year_s)
    energy = it_w * econ.pue * econ.usd_per_kwh / 3.6e6  # W x USD/kWh -> USD/s
    return capex + building + energy
