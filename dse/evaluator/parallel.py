"""Tensor x pipeline x data splits of a system's chips."""

from __future__ import annotations

import math

from hwspace.config import MAX_CHIPS

__all__ = ["MAX_CHIPS", "divisors", "splits"]


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` in increasing order, in O(sqrt n) trial divisions."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return small + [n // d for d in reversed(small) if d * d != n]


def splits(chips: int, max_tp: int, max_pp: int) -> list[tuple[int, int, int]]:
    """Every (tp, pp, dp) with tp * pp * dp = chips, tp <= max_tp (attention heads) and
    pp <= max_pp (layers)."""
    out = []
    for tp in divisors(chips):
        if tp > max_tp:
            continue
        rest = chips // tp
        out += [(tp, pp, rest // pp) for pp in divisors(rest) if pp <= max_pp]
    return out
