"""Public per-operator measurements (data/operators/): load, normalise to SI, join the chip spec.

Each source file keeps its own columns (data/operators/README.md); ``load_operators`` turns
the operator rows of all of them into one table with the FLOP and the off-chip bytes each
operator needs at least, so that a model of any form can be judged on them. End-to-end rows
(timm's CNN tables, AIConfigurator's silicon sample) are read by ``load_end_to_end`` and never
mixed with operator rows.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["DATA_DIR", "RESERVED_PATTERN", "OPERATOR_FILES", "END_TO_END_FILES", "COMM_FILES",
           "SPEC_FILE", "GEMM",
           "load_operators", "load_end_to_end", "load_chip_specs", "reserved_hits"]

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "operators"

# Chips held out of every calibration of this project (issue 19): the decisive checks run on
# them, so no row of them may enter. GH200 and L40 are not reserved: a name must stand alone
# ("L4" is not "L40"), and GB200 is a B200 part. MI300A is kept out too, to be safe.
RESERVED_PATTERN = re.compile(
    r"(?<![a-z0-9])(?:h200|g?b200|mi300[ax]?|l40s|l4|(?:rtx[ -]?)?4090|"
    r"m2[ -]?ultra|m3[ -]?max|m4[ -]?max)(?![a-z0-9])", re.IGNORECASE)

OPERATOR_FILES = ("neusight_gemm.csv", "neusight_model_ops.csv", "aiconfigurator_gemm.csv",
                  "aiconfigurator_attention.csv")
END_TO_END_FILES = ("timm_cnn_e2e.csv", "aiconfigurator_silicon_e2e.csv")
# Collectives time the links, not a kernel: kept as data, not read by the kernel model.
COMM_FILES = ("aiconfigurator_allreduce.csv",)
SPEC_FILE = "chip_specs.csv"
GEMM = "gemm"
_VECTOR_KINDS = ("softmax", "layernorm", "elementwise")

# Bytes per element and the spec column of the peak rate that each measured dtype runs at.
# Weight-only formats (int4_wo, int8_wo) compute at 16 bit and read packed weights; "sq" is
# SmoothQuant w8a8 on int8 tensor cores; fp8_block is fp8 with per-block scales.
_DTYPES = {  # dtype: (activation bytes, weight bytes, peak column)
    "fp32": (4.0, 4.0, "fp32_matrix_flop_per_s"),
    "bfloat16": (2.0, 2.0, "fp16_matrix_flop_per_s"),
    "float16": (2.0, 2.0, "fp16_matrix_flop_per_s"),
    "int8_wo": (2.0, 1.0, "fp16_matrix_flop_per_s"),
    "int4_wo": (2.0, 0.5, "fp16_matrix_flop_per_s"),
    "sq": (1.0, 1.0, "int8_matrix_flop_per_s"),
    "fp8": (1.0, 1.0, "fp8_matrix_flop_per_s"),
    "fp8_block": (1.0, 1.0, "fp8_matrix_flop_per_s"),
}
# Elementwise ops read two operands and write one (add, mul, div) or read one (gelu, tanh);
# softmax and layer norm read their input once and write it once (one fused kernel each).
_VECTOR_PASSES = {"add": 3.0, "mul": 3.0, "truediv": 3.0, "sub": 3.0, "pow": 2.0, "gelu": 2.0,
                  "tanh": 2.0, "relu": 2.0, "softmax": 2.0, "layer_norm": 2.0}


def reserved_hits(text: str) -> list[str]:
    """The reserved chip names found in ``text`` (empty when none)."""
    return [m.group(0) for m in RESERVED_PATTERN.finditer(text)]


def load_chip_specs(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """The spec of every chip with operator rows, SI units, indexed by chip name."""
    spec = pd.read_csv(data_dir / SPEC_FILE).set_index("chip")
    si = pd.DataFrame(index=spec.index)
    si["vendor"] = spec["vendor"]
    si["compute_units"] = spec["compute_units"].astype(float)
    for col in ("fp32_matrix", "fp32_vector", "fp16_matrix", "int8_matrix", "fp8_matrix"):
        src = f"{col}_tops" if col.startswith("int8") else f"{col}_tflop_s"
        si[f"{col}_flop_per_s"] = spec[src] * 1e12
    si["mem_bw_bytes_per_s"] = spec["mem_bw_gb_s"] * 1e9
    si["l2_bytes"] = spec["l2_mb"] * 1e6
    return si


def load_operators(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """Every operator row of data/operators/ with its chip's spec, one frame.

    Returns:
        One row per measurement: chip, vendor, op_kind (gemm, attention_prefill,
        attention_decode, softmax, layernorm, elementwise), dtype, batch, m, n, k, flop,
        mem_bytes (operands read and results written once, the least any kernel moves),
        peak_flop_per_s (the chip's matrix rate at the dtype), mem_bw_bytes_per_s,
        compute_units, time_s, dataset (the file) and source.
    """
    frames = [_gemm_rows(pd.read_csv(data_dir / f), f) for f in
              ("neusight_gemm.csv", "aiconfigurator_gemm.csv")]
    ops = pd.read_csv(data_dir / "neusight_model_ops.csv")
    frames.append(_gemm_rows(ops[ops.op_kind == GEMM], "neusight_model_ops.csv"))
    frames.append(_vector_rows(ops[ops.op_kind != GEMM], "neusight_model_ops.csv"))
    frames.append(_attention_rows(pd.read_csv(data_dir / "aiconfigurator_attention.csv")))
    rows = pd.concat(frames, ignore_index=True)
    rows = rows[~rows.chip.str.contains(RESERVED_PATTERN)]
    spec = load_chip_specs(data_dir)
    missing = sorted(set(rows.chip) - set(spec.index))
    if missing:
        raise ValueError(f"chip_specs.csv: chips {missing} have operator rows but no spec; "
                         "add a row with its source")
    unknown = sorted(set(rows.dtype) - set(_DTYPES))
    if unknown:
        raise ValueError(f"dtype: {unknown} given; allowed: {sorted(_DTYPES)}")
    rows = rows.join(spec, on="chip")
    peak_col = rows.dtype.map(lambda d: _DTYPES[d][2])
    peak_col[rows.op_kind.isin(_VECTOR_KINDS)] = "fp32_vector_flop_per_s"
    rows["peak_flop_per_s"] = _pick(rows, peak_col)
    return rows.reset_index(drop=True)



def _pick(rows: pd.DataFrame, cols: pd.Series) -> np.ndarray:
    """Per row, the value of the column named in ``cols``."""
    out = np.full(len(rows), np.nan)
    for col in cols.unique():
        sel = (cols == col).to_numpy()
        out[sel] = rows.loc[sel, col].to_numpy()
    return out


def _gemm_rows(d: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """GEMM rows: C[b, m, n] = A[b, m, k] B[b, k, n], the second operand being the weights.
    Empty products (a zero dimension: AIConfigurator times them too) are no measurement."""
    d = d[(d[["batch", "m", "n", "k"]] > 0).all(axis=1)]
    act_b = d.dtype.map(lambda x: _DTYPES[x][0])
    w_b = d.dtype.map(lambda x: _DTYPES[x][1])
    b, m, n, k = (d[c].astype(float) for c in ("batch", "m", "n", "k"))
    return pd.DataFrame({
        "chip": d.chip, "op_kind": GEMM, "dtype": d.dtype, "batch": b, "m": m, "n": n, "k": k,
        "flop": 2.0 * b * m * n * k,
        "mem_bytes": b * (m * k * act_b + k * n * w_b + m * n * act_b),
        "time_s": d.time_s, "dataset": dataset, "source": d.source})


def _vector_rows(d: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Softmax, layer norm and elementwise rows: bandwidth-bound passes over fp32 tensors."""
    elems = d.elems.astype(float)
    passes = d.op_name.map(_VECTOR_PASSES).fillna(2.0)
    return pd.DataFrame({
        "chip": d.chip, "op_kind": d.op_kind, "dtype": d.dtype, "batch": 1.0, "m": elems,
        "n": 1.0, "k": 1.0, "flop": elems * 5.0, "mem_bytes": elems * passes * 4.0,
        "time_s": d.time_s, "dataset": dataset, "source": d.source})


def _attention_rows(d: pd.DataFrame) -> pd.DataFrame:
    """Attention rows: QK^T and PV of every head (causal in prefill: half the score
    matrix), reading Q, K, V and writing O once (flash attention keeps scores on chip)."""
    b, s, kv = d.batch.astype(float), d.seq_len.astype(float), d.kv_len.astype(float)
    h, hk, hd = d.heads.astype(float), d.kv_heads.astype(float), d.head_dim.astype(float)
    prefill = (d.op_kind == "attention_prefill").to_numpy()
    pairs = np.where(prefill, s * (s + 1) / 2.0, kv)  # query x key pairs per head and item
    act_bytes = d.dtype.map({"bfloat16": 2.0, "float16": 2.0, "fp8": 1.0}).fillna(2.0)
    kv_bytes = d.kv_dtype.map({"bfloat16": 2.0, "float16": 2.0, "fp8": 1.0}).fillna(2.0)
    q_rows = np.where(prefill, s, 1.0)
    # The query heads that share a KV head (GQA) are rows of one tile: batch = items x KV
    # heads, m = query rows x heads per KV head (FlashAttention-2 and TRT-LLM pack them).
    return pd.DataFrame({
        "chip": d.chip, "op_kind": d.op_kind, "dtype": d.dtype,
        "batch": b * hk, "m": q_rows * h / hk, "n": kv, "k": hd,
        "flop": 4.0 * b * h * pairs * hd,
        "mem_bytes": b * (2.0 * q_rows * h * hd * act_bytes + 2.0 * kv * hk * hd * kv_bytes),
        "time_s": d.time_s, "dataset": "aiconfigurator_attention.csv", "source": d.source})


def load_end_to_end(data_dir: Path = DATA_DIR) -> dict[str, pd.DataFrame]:
    """The end-to-end rows (whole models, not operators), one frame per file."""
    return {f: pd.read_csv(data_dir / f) for f in END_TO_END_FILES}
