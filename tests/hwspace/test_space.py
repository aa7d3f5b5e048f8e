"""Design spaces: grids visit every combination once, random chunks are reproducible, bad
spaces fail with one clear message."""

import itertools

import numpy as np
import pytest

from hwspace.space import parse_space

BASE = {"process_node": "n5", "macs": 65536, "clock_ghz": 1.0, "sram_mb": 32}


def test_grid_chunks_enumerate_the_product_exactly_once():
    space = parse_space({"name": "t", "params": {
        **BASE, "process_node": ["n7", "n5"], "sram_mb": [8, 16, 32],
        "memory": {"type": ["hbm3", "lpddr5x"], "stacks": {"low": 2, "high": 6, "step": 2}}}})
    assert space.grid_size() == 2 * 3 * 2 * 3
    seen = []
    for start in range(0, space.grid_size(), 5):  # uneven chunks
        cols = space.grid_chunk(start, start + 5)
        seen += list(zip(*(cols[k].tolist() for k in
                           ("process_node", "sram_mb", "memory_type", "memory_stacks")),
                         strict=True))
    expected = itertools.product(["n7", "n5"], [8, 16, 32], ["hbm3", "lpddr5x"], [2.0, 4.0, 6.0])
    assert sorted(seen) == sorted(expected)


def test_ranges_grid_log_and_integer_values():
    space = parse_space({"params": {**BASE, "macs": {"low": 1024, "high": 65536, "log": True,
                                                     "num": 7}}})
    (macs,) = [p for p in space.params if p.name == "macs"]
    assert list(macs.grid_values()) == [1024, 2048, 4096, 8192, 16384, 32768, 65536]


def test_random_chunks_are_reproducible_and_within_range():
    space = parse_space({"params": {**BASE, "clock_ghz": {"low": 0.5, "high": 2.0},
                                    "memory": {"stacks": {"low": 1, "high": 8}}}})
    a, b = space.random_chunk(7, 3, 1000), space.random_chunk(7, 3, 1000)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["clock_ghz"], space.random_chunk(7, 4, 1000)["clock_ghz"])
    assert a["clock_ghz"].min() >= 0.5 and a["clock_ghz"].max() <= 2.0
    assert set(np.unique(a["memory_stacks"])) <= set(range(1, 9))


@pytest.mark.parametrize("params, message", [
    ({**BASE, "macs": {"low": 5000, "high": 10}}, "space.macs.low = 5000: allowed: <= high (10)"),
    ({**BASE, "flux_capacitor": 3}, "unknown parameter 'flux_capacitor'"),
    ({**BASE, "memory": {"type": ["hbm3", "hbm9"]}}, "space.memory.type: 'hbm9' is not allowed"),
    ({**BASE, "process_node": ["n7", "n2"]}, "space.process_node: 'n2' is not allowed"),
    ({**BASE, "macs": [1024, -1]}, "space.macs = -1: allowed: a number in [1, 1e+09]"),
    ({**BASE, "sram_mb": {"choices": []}}, "space.sram_mb: choices is empty"),
    ({**BASE, "macs": {"low": 0, "high": 10, "log": True}}, "space.macs = 0: allowed"),
    ({**BASE, "macs": {"low": 1, "high": 10, "num": 0}},
     "space.macs.num = 0: allowed: a whole number in [1, 1,000,000]"),
    ({"macs": 1024}, "required chip field(s) not given"),
])
def test_bad_spaces_fail_with_one_clear_message(params, message):
    with pytest.raises(ValueError) as err:
        parse_space({"name": "bad", "params": params})
    assert message in str(err.value)
