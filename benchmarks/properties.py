"""The slow profile of the property suite (issue 18, item 3): many more random valid
candidates than CI checks, on the same six scenarios and with the same checks
(tests/dse/test_properties.py: roofline limits, utilization, power <= TDP, cost, finite
outputs, more bandwidth / SRAM / chips / TDP never slower).

Prints the candidates x scenarios checked and the violations of each check; exits 1 on any.

    python benchmarks/properties.py [--candidates 50000] [--chunk 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tests.dse.test_properties import (  # noqa: E402
    BULK_CASES,
    _plan,
    bulk_candidates,
    check_candidates,
    spread,
)

# The spreads each chunk cycles through: derived TDP, half at a tight stated TDP, all at a
# generous one; explicit bandwidths; dataflow chips.
SPREADS = ((0.0, 1.0, 0.0, 0.0), (0.5, 0.3, 0.5, 0.3), (1.0, 2.0, 0.5, 0.0),
           (1.0, 0.08, 0.0, 0.3))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=5_000)
    args = parser.parse_args()
    plans = {case: _plan(case) for case in BULK_CASES}
    counts: dict[str, int] = {}
    checked = 0
    start = time.perf_counter()
    for k, first in enumerate(range(0, args.candidates, args.chunk)):
        n = min(args.chunk, args.candidates - first)
        chips, n_sys = bulk_candidates(1000 + k, spread(*SPREADS[k % len(SPREADS)]), [], n)
        for plan, sc, slos in plans.values():
            for name, broken in check_candidates(chips, n_sys, plan, sc, slos).items():
                counts[name] = counts.get(name, 0) + int(np.sum(broken))
            checked += chips.n
    seconds = time.perf_counter() - start
    print(f"{checked:,} candidate x scenario pairs checked ({args.candidates:,} candidates x "
          f"{len(plans)} scenarios, each with 4 perturbed twins) in {seconds:.0f} s")
    for name, count in counts.items():
        print(f"  {name:22s} {count:>8,} violations")
    total = sum(counts.values())
    print(f"total violations: {total:,}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
