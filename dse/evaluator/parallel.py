"""Expert x tensor x pipeline x data splits of a system's chips."""

from __future__ import annotations

import math

from hwspace.config import MAX_CHIPS

__all__ = ["MAX_CHIPS", "divisors", "splits", "expert_degrees"]


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` in increasing order, in O(sqrt n) trial divisions."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return small + [n // d for d in reversed(small) if d * d != n]


def expert_degrees(chips: int, experts: int) -> list[int]:
    """Expert-parallel degrees of ``chips`` chips for ``experts`` routed experts per layer:
    the divisors of both (each chip holds experts / ep of them); 1 for a dense model."""
    return [e for e in divisors(chips) if experts % e == 0] if experts else [1]


def splits(chips: int, max_tp: int, max_pp: int,
           experts: int = 0) -> list[tuple[int, int, int, int]]:
    """Every (tp, pp, dp, ep) with ep * tp * pp * dp = chips, tp <= max_tp (attention heads),
    pp <= max_pp (layers) and ep dividing ``experts`` (routed experts per layer; 0: dense,
    ep = 1)."""
    out = []
    for ep in expert_degrees(chips, experts):
        for tp in divisors(chips // ep):
            if tp > max_tp:
                continue
            rest = chips // ep // tp
            out += [(tp, pp, rest // pp, ep) for pp in divisors(rest) if pp <= max_pp]
    return out
