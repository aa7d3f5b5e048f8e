"""Bits per element of each storage format and the compute class its math runs in."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Dtype", "DTYPES", "parse_dtype", "sparse_weight_bits", "SPARSITY_MODES"]


@dataclass(frozen=True)
class Dtype:
    bits: float  # storage bits per element, block scales included
    compute: str  # compute class (hwspace.compute.COMPUTE_CLASSES) when used for activations


DTYPES: dict[str, Dtype] = {
    "bf16": Dtype(16.0, "bf16"),
    "fp16": Dtype(16.0, "bf16"),
    "fp8": Dtype(8.0, "fp8"),
    "int8": Dtype(8.0, "int8"),
    # 4-bit weights with a 16-bit scale per 32 weights: 4 + 16/32 = 4.5 bits, the layout of
    # llama.cpp Q4_0 (shared/data/README.md: "Q4_0 is 4.5 bits per weight").
    "int4": Dtype(4.0 + 16.0 / 32.0, "int4"),
    # OCP Microscaling MXFP4: 4-bit E2M1 elements with an 8-bit shared exponent per 32.
    "mxfp4": Dtype(4.0 + 8.0 / 32.0, "fp4"),
    "fp4": Dtype(4.0, "fp4"),
}

SPARSITY_MODES: tuple[str, ...] = ("none", "2:4")


def parse_dtype(name: str, field: str) -> Dtype:
    """The Dtype called ``name``; ValueError naming ``field`` and the allowed names."""
    try:
        return DTYPES[str(name).lower()]
    except KeyError:
        raise ValueError(
            f"{field}: unknown dtype {name!r}; allowed: {', '.join(DTYPES)}"
        ) from None


def sparse_weight_bits(bits: float) -> float:
    """Bits per original weight under 2:4 structured sparsity: half the elements are kept,
    each with a 2-bit position index (NVIDIA A100 whitepaper, "Fine-grained structured
    sparsity"): (2 * bits + 2 * 2) / 4."""
    return bits / 2.0 + 1.0
