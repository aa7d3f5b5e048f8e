"""Area, yield and cost against the worked numbers of shared/data/costpower.md."""

import numpy as np
import pytest

from dse.presets import load_chip
from hwspace import cost
from hwspace.derived import derive
from hwspace.spec import from_configs

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
    chip = load_chip(preset)
    chip.tdp_w = None
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
