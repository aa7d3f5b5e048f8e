"""What a compiled dataflow schedule pays where its work crosses chips.

A dataflow chip (hwspace.tables.EXECUTION_MODELS "dataflow": Groq TSP, SambaNova RDU,
Cerebras WSE) launches no kernels: the compiler places every operation, and every chip-to-chip
transfer, at a fixed time (Abts et al., ISCA 2022, "A Software-defined Tensor Streaming
Multiprocessor for Large-scale Machine Learning": "software-scheduled networking", no
arbitration, the TSP "acts as both a processing element (endpoint) and network switch"). Two
consequences for one token of a model split over many chips:

1. An exchange is direct. The compiler routes each partial sum straight to the chips that need
   it over the chip's own links (a software-defined Dragonfly, ISCA 2022, whose groups are
   fully connected: Kim, Dally, Scott and Abts, ISCA 2008). An all-reduce among tp chips of
   one such group (``direct_peers``) is a reduce-scatter and an all-gather of one hop each,
   not the 2 (tp - 1) hops of the ring a collective library runs.
2. An exchange is a barrier of the schedule. The chips run on their own clocks; the program
   keeps them aligned with periodic synchronisation over the links, and a receiving chip's
   next instruction cannot be placed before the latest time the data can arrive (ISCA 2022,
   hardware-aligned counters and runtime deskew). At batch 1 nothing else runs while the
   layer waits: each exchange (a tensor-parallel all-reduce, an expert all-to-all, a pipeline
   stage hop) costs a fixed schedule time whatever the tensor's width. That fixed cost takes
   the place of a collective library's call latency (hwspace.tables.LINK_KINDS
   call_latency_s) on dataflow chips.

The per-exchange time is not published, and it is the one fitted figure here: ``EXCHANGE_S``
= 12 us is the single value that brings Groq's three published per-user speeds closest on the
groq-lpu preset (techpowerup.com, Feb 2024: Llama-2-7B at 2,048 tokens 750 tokens/s on 64
chips, shared/data/measured_public.csv row 77; Mixtral-8x7B 480 and Llama-2-70B at 4,096
tokens 300 on 576 chips): +16 %, +1 % and -16 % (tests/dse/test_dataflow.py). One constant
fits all three because the published speeds are a per-layer cost nearly independent of the
model's width, ~42 us per dense layer and ~65 us per MoE layer: the count of exchanges per
layer (2 all-reduces, plus a dispatch and a combine under expert parallelism, plus the
stage hops) times one time. It sits above the < 3 us one-way latency across a 10,440-TSP
system of ISCA 2022's abstract (the wire alone), as a barrier of a static schedule must: it
also holds the clock-drift slack and the vector-unit work at each end of the exchange (the
reduction of the partial sums, the norm waiting for them) that nothing overlaps at batch 1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EXCHANGE_S", "exchange_s", "direct_peers"]

# Fixed schedule time of one cross-chip exchange of a compiled dataflow program, s: fitted on
# Groq's three published per-user speeds (module docstring), the only fitted figure here.
EXCHANGE_S = 12e-6


def exchange_s(dataflow: np.ndarray, call_latency_s: np.ndarray) -> np.ndarray:
    """Fixed time of one collective (one call, one exchange) of each candidate: a compiled
    schedule's exchange barrier on dataflow chips, the collective library's call latency
    (``call_latency_s``) on chips that launch kernels."""
    return np.where(dataflow, EXCHANGE_S, call_latency_s)


def direct_peers(dataflow: np.ndarray, link_count: np.ndarray) -> np.ndarray:
    """Peers each chip reaches in one hop by a compiled exchange: g - 1 for the fully
    connected group of g chips its links can build, 0 on chips that launch kernels (their
    collectives run rings).

    A Dragonfly group of g routers spends g - 1 links inside the group and, balanced, g / 2
    leaving it (Kim, Dally, Scott and Abts, ISCA 2008: a = 2h); tensor-parallel groups split
    power-of-two head counts, so g is the largest power of two with g - 1 + g / 2 <= links.
    Groq's 16 C2C links give g = 8: its GroqNode of 8 TSPs with 4 global links each.
    """
    g = np.exp2(np.floor(np.log2(np.maximum(link_count + 1.0, 1.0) / 1.5)))
    return np.where(dataflow, np.maximum(g - 1.0, 0.0), 0.0)
