"""Area, yield and cost against the worked numbers of shared/data/costpower.md, and the
builder's and buyer's views against their closed forms and sources."""

import dataclasses

import numpy as np
import pytest

from dse.presets import load_chip
from hwspace import cost
from hwspace.cost import EconomicsConfig
from hwspace.derived import derive
from hwspace.spec import from_configs
from hwspace.tables import NODE_NAMES

# costpower.md §1.3 worked table (D0 = 0.10 /cm2, Chiplet Actuary dies-per-wafer formula):
# area mm2, gross dies per wafer, negative binomial alpha = 3.
WORKED = [(100, 571.7, 0.906), (200, 276.2, 0.824), (400, 130.0, 0.687),
          (600, 82.2, 0.579), (814, 57.6, 0.487), (858, 54.1, 0.470)]


@pytest.mark.parametrize("area, dies, nb3", WORKED)
def test_dies_per_wafer_and_yield_match_the_worked_table(area, dies, nb3):
    assert cost.dies_per_wafer(np.array([area]))[0] == pytest.approx(dies, rel=0.005)
    assert cost.negative_binomial_yield(np.array([area]), 0.10)[0] == pytest.approx(nb3, abs=0.001)


def test_h100_die_cost_lands_between_published_estimates():
    # Silicon Analysts: H100 logic die ~$300; a defect-free 814 mm2 die at $17k per wafer
    # costs ~$600 (costpower.md §1.3 and §6.2). Harvesting puts it in between.
    der = derive(from_configs([load_chip("h100")]))
    assert 300 <= der.die_cost_usd[0] <= 600


@pytest.mark.parametrize("preset, spec_w", [("h100", 700), ("a100", 400)])
def test_derived_tdp_is_within_10_percent_of_the_spec_sheet(preset, spec_w):
    chip = dataclasses.replace(load_chip(preset), tdp_w=None)  # the cached preset stays whole
    assert derive(from_configs([chip])).tdp_w[0] == pytest.approx(spec_w, rel=0.10)


def test_reticle_limit_and_its_escapes():
    base = dict(name="x", process_node="n5", macs=2_000_000, clock_ghz=1.0, sram_mb=10)
    der = derive(from_configs([base, {**base, "dies": 4}, {**base, "wafer_scale": True}]))
    assert der.die_area_mm2[0] > 858
    assert list(der.area_ok) == [False, True, True]


def test_memory_capacity_and_bandwidth_derive_from_stacks():
    # HBM3: 819 GB/s and 16 GB per stack (JEDEC JESD238).
    chip = from_configs([dict(name="x", process_node="n5", macs=1000, clock_ghz=1.0,
                              sram_mb=1, memory=dict(type="hbm3", stacks=6))])
    assert chip.mem_bw_bytes_per_s[0] == pytest.approx(6 * 819e9)
    assert chip.mem_capacity_bytes[0] == pytest.approx(96e9)


# --- The economic views (hwspace.cost, DESIGN.md section 8) -------------------------------

N16, N7, N5, N3 = (NODE_NAMES.index(n) for n in ("n16", "n7", "n5", "n3"))
BUILDER, BUYER = EconomicsConfig(view="builder"), EconomicsConfig(view="buyer")
ONE = np.array([1.0])
NO = np.array([False])


def test_a_spin_costs_the_articles_budget_at_16_nm_and_more_at_5_and_3_nm():
    # The article (shared/seed): "the $10-20M needed to spin a chip"; masks alone are 18.1 M
    # USD at 5 nm (IC Knowledge via ttm-cas) and ~40 M USD at 3 nm (SemiAnalysis).
    nre = cost.nre_usd(np.array([N16, N7, N5, N3]), BUILDER)
    assert 10e6 <= nre[0] <= 20e6
    assert list(nre) == sorted(nre) and nre[2] > 20e6 and nre[3] >= nre[0] + 35e6


def test_builder_adds_the_nre_share_and_buyer_the_gross_margin():
    making = np.array([1000.0, 1000.0])
    price = np.array([np.nan, 25_000.0])
    node = np.array([N5, N5])
    built = cost.chip_price_usd(making, price, node, BUILDER)
    # (12.18 M USD design + 18.1 M USD masks) / 100,000 units = 302.8 USD a unit.
    assert built == pytest.approx(1000.0 + 302.8)
    half = cost.chip_price_usd(making, price, node,
                               EconomicsConfig(view="builder", volume_units=50_000))
    assert half - making == pytest.approx(2 * (built - making))
    # NVIDIA's 75 % gross margin: price = cost / (1 - 0.75) = 4 x cost; a market price wins.
    assert list(cost.chip_price_usd(making, price, node, BUYER)) == [4000.0, 25_000.0]


def test_buyer_system_adds_servers_and_network_unless_the_price_buys_the_system():
    unit, chips = np.array([10_000.0, 10_000.0]), np.array([8.0, 8.0])
    host = np.array([False, True])
    built = cost.system_cost_usd(unit, chips, host, BUILDER)
    bought = cost.system_cost_usd(unit, chips, host, BUYER)
    assert list(built) == [80_000.0, 80_000.0]
    # Epoch: server = 1.64 x accelerators; the network is 19 % of all cluster hardware.
    assert bought == pytest.approx([80_000.0 * 1.64 / 0.81, 80_000.0 / 0.81])


def test_ownership_is_capex_over_life_plus_energy_and_the_buyer_pays_interest():
    year_s = cost.SECONDS_PER_YEAR
    plain = EconomicsConfig(view="builder", life_years=5, pue=1.5, usd_per_kwh=0.1)
    rate = cost.ownership_usd_per_s(np.array([50_000.0]), ONE, np.array([700.0]),
                                    np.array([400.0]), NO, plain)
    # 50,000 USD over 5 years + 400 W x 1.5 x 0.1 USD per 3.6e6 J.
    assert rate[0] == pytest.approx(50_000 / (5 * year_s) + 400 * 1.5 * 0.1 / 3.6e6)
    # Capital recovery factor at 8 % over 5 years: 0.08 / (1 - 1.08^-5) = 0.25046 a year.
    bare = EconomicsConfig(view="buyer", opex_fraction=0.0, datacentre_usd_per_w=0.0,
                           usd_per_kwh=0.0)
    owned = cost.ownership_usd_per_s(np.array([50_000.0]), ONE, np.array([700.0]),
                                     np.array([400.0]), NO, bare)
    assert owned[0] * year_s == pytest.approx(50_000 * 0.250456, rel=1e-5)


def test_data_centre_capex_follows_the_provisioned_it_power():
    # ReaLLM: 10 USD per W of IT load over a 12-year building; IT load = TDP x 1.82 (DGX H100).
    dc_only = EconomicsConfig(view="buyer", interest_rate=0.0, usd_per_kwh=0.0)
    zero = np.array([0.0])
    rate = cost.ownership_usd_per_s(zero, ONE, np.array([700.0]), np.array([300.0]), NO,
                                    dc_only)
    assert rate[0] * cost.SECONDS_PER_YEAR == pytest.approx(700 * 10.2 / 5.6 * 10.0 / 12)


def test_cerebras_wse3_is_priced_as_its_system_not_as_one_wafer():
    # CS-3 ~$2-3M (shared/data/chips.csv); one 5 nm wafer, package and board cost ~$30-40k.
    wse3 = from_configs([load_chip("cerebras-wse3")])
    der = derive(wse3)
    making = der.unit_cost_usd
    price = cost.chip_price_usd(making, wse3.price_usd, wse3.node_idx, BUYER)
    assert making[0] < 100_000 and price[0] == 2.5e6
    system = cost.system_cost_usd(price, ONE, wse3.price_includes_host, BUYER)
    assert system[0] == pytest.approx(2.5e6 / 0.81)  # no server on top of a CS-3
