"""The model against measured results of real chips (data/measured_public.csv).

Each row maps to a preset chip (by the preset's ``name``), a workload and a scenario by the
benchmark it comes from: MLPerf offline (batch by capacity) and SingleStream (batch-1
latency), TensorRT-LLM max-throughput tables (continuous batching, batch by capacity under
its scheduler cap), static-batch tables and first-token latency, LLM-Inference-Bench (a
static batch of equal prompt and output lengths, or the TTFT of a batch) and llama.cpp pp/tg
(batch-1 prefill and decode at F16, Q8_0 or Q4_0). Where one chip and setup was measured with
several software stacks, the fastest is kept. A row that cannot be mapped is kept with its
reason."""

from __future__ import annotations

import csv
import dataclasses
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from dse.api import _prepare
from dse.evaluator.efficiency import DEFAULT, Efficiency
from dse.evaluator.model import MAX_NUM_SEQS, evaluate
from dse.presets import CONF_DIR, load_chip, load_engine, load_workload, preset_names
from hwspace.spec import from_configs
from workloads.scenario import family_of

__all__ = ["Case", "Unmapped", "DATA", "engine_of", "load_cases", "predict_cases", "validate",
           "summary", "REGIMES", "with_unmapped", "regime_table", "vendor_of"]

DATA = Path(__file__).resolve().parents[2] / "data" / "measured_public.csv"
REGIMES = ("batch-1 decode", "batched decode", "prefill", "CNN/encoder")

# CSV labels the presets' own ``name`` does not match: variants a row does not state map to
# the SXM part.
_ALIASES = {
    "NVIDIA A100 80GB (variant not stated)": "a100",
    "NVIDIA RTX 3090": "rtx3090",  # the GeForce card (conf/chip/rtx3090.yaml)
}
# (substring of the CSV's model column, workload preset); Llama 3.1 shares Llama 3's shapes.
_MODELS = [("Llama-3.1-70B", "llama3-70b"), ("Llama-3.1-8B", "llama3-8b"),
           ("Llama-3-70B", "llama3-70b"), ("Llama-3-8B", "llama3-8b"),
           ("Llama-2-70B", "llama2-70b"), ("LLaMA 70B", "llama2-70b"),
           ("LLaMA 7B", "llama2-7b"), ("LLaMA-2 7B", "llama2-7b"), ("Llama-2 7B", "llama2-7b"),
           ("Llama-2-7B", "llama2-7b"), ("Mixtral-8x7B", "mixtral-8x7b"),
           ("Mistral-7B", "mistral-7b"), ("ResNet-50", "resnet50"), ("BERT-Large", "bert-large"),
           ("GPT-J", "gptj-6b")]
_FP8 = dict(weights="fp8", activations="fp8", kv_cache="fp8")
_BF16 = dict(weights="bf16", activations="bf16", kv_cache="bf16")
# MLPerf closed CNN/BERT submissions at the 99 % accuracy targets run INT8 (the rows say
# "not verified; INT8 typical"): an assumption, stated.
_INT8 = dict(weights="int8", activations="int8")
# llama.cpp Q4_0: 4-bit weights with a 16-bit scale per 32 (4.5 bits), f16 activations and KV.
_Q4_0 = dict(weights="int4", activations="bf16", kv_cache="bf16")
# SQuAD v1.1 at max_seq_len 384: "padding accounts for 54% of the total input tokens"
# (Zhang et al., "Reducing BERT Computation by Padding Removal and Curriculum Learning",
# ISPASS 2021, abstract; openreview.net/forum?id=3nzKUh9a4M): 0.46 x 384 = 177 real tokens a
# sample. Assumption: the dev split MLPerf samples has the training split's share. (Without
# it, 3,590 samples/s x ~247 GFLOP per 384-token sample = 888 TOP/s would pass the A100's 624.)
_SQUAD_MEAN_TOKENS = round(0.46 * 384)
_TG_CONTEXT = 128  # llama-bench tg128: 128 generated tokens; the context grows 0 -> 128
_PP_PROMPT = 512  # llama-bench pp512
# An LLM row's software stack -> its serving engine (conf/engine): its cap for batch by
# capacity and its host time per step. MLPerf's NVIDIA LLM submissions run TensorRT-LLM
# ("TensorRT 10.2.0" rows). Stacks without an engine config (DeepSpeed-MII, SAX, vendor SDKs)
# and the CNN and encoder harnesses keep vLLM's cap, as the model did before engines, with no
# host time modelled (_UNMODELLED).
_ENGINES = (("TensorRT", "trtllm"), ("vLLM", "vllm"), ("SGLang", "sglang"),
            ("llama.cpp", "llamacpp"), ("optimum-habana", "optimum-habana"))
_UNMODELLED = "unmodelled"
_NO_HOST = dict(name=_UNMODELLED, step_overhead_s=0.0, seq_overhead_s=0.0)
# Row sets a collector flagged as inconsistent with the rest of the same source.
_SUSPECT = {
    "[Intel PVC-labelled set]": "the source's 'Intel PVC GPU' rows run ~9x slower than its "
                                "'Max 1550' rows of the same setup: flagged as inconsistent",
    "SN40L cloud": "measured through a cloud API: latency includes the network",
}
# Chips whose rows do not say what one counted device is.
_AMBIGUOUS_DEVICE = {
    # vLLM rows: a 70B model at 16 bit on two devices fits only if a device is a package (two
    # GCDs), yet 8B rows run at half a package's roofline, as one GCD would (not stated).
    "AMD Instinct MI250": "one device may be a package or one of its two GCDs (not stated)",
    # The source exposes each of the card's two stacks as a device; its SYCL llama.cpp rows
    # run 5-80x below the other GPUs' (collector's note).
    "Intel Data Center GPU Max 1550": "one device may be a card or one of its two stacks "
                                      "(not stated)",
}


def vendor_of(label: str) -> str:
    """The vendor a CSV chip label names (its first word, Habana counted as Intel)."""
    return {"Habana": "Intel"}.get(label.split()[0], label.split()[0])


@cache
def _presets_by_name() -> dict[str, str]:
    """Preset ``name`` fields -> preset file names: a row's chip label finds its preset."""
    out = {}
    for name in preset_names("chip"):
        out[str(OmegaConf.load(CONF_DIR / "chip" / f"{name}.yaml").get("name", ""))] = name
    return {**out, **_ALIASES}


@dataclass(frozen=True)
class Case:
    row_id: str
    chip: str  # preset name
    chip_label: str  # as the CSV names it
    workload: str
    scenario: tuple  # sorted (key, value) pairs for predict, chips included
    metric: str  # throughput_per_s | ttft_s | latency_s
    measured: float  # in the metric's unit, for the whole system
    regime: str  # one of REGIMES
    tp: int | None = None  # tensor parallelism the measurement states (TP8), else chosen
    vendor: str = ""
    max_num_seqs: int | None = MAX_NUM_SEQS  # the serving stack's scheduler cap
    engine: str = _UNMODELLED  # its serving engine (conf/engine), or none modelled

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.scenario)


@dataclass(frozen=True)
class Unmapped:
    row_id: str
    chip_label: str
    model: str
    reason: str


def engine_of(stack: str) -> str:
    """The conf/engine preset of a row's ``software_stack`` ("unmodelled" where none fits)."""
    return next((e for key, e in _ENGINES if key.lower() in stack.lower()), _UNMODELLED)


def _engine(name: str) -> Any:
    """What dse.api takes as the engine of a case: a preset, or no host time."""
    return _NO_HOST if name == _UNMODELLED else name


def _workload(model: str) -> str | None:
    return next((w for key, w in _MODELS if key.lower() in model.lower()), None)


def _regime(text: str) -> str:
    text = text.lower()
    if "cnn" in text or "encoder" in text:
        return "CNN/encoder"
    if "prefill" in text and "decode" not in text:
        return "prefill"
    if "batch-1 decode" in text or "single-stream" in text:
        return "batch-1 decode"
    return "batched decode"


def _precision(text: str) -> dict:
    """Scenario dtypes from a row's precision text: "Q4_0", "FP8", "INT8 weight-only, FP8 KV
    cache", "FP16 weights, INT8 KV cache"... (16-bit where nothing else is stated)."""
    text = text.upper()
    if "Q4" in text:
        return _Q4_0
    if "Q8" in text:
        return dict(weights="int8", activations="bf16", kv_cache="bf16")
    weights, _, kv = text.partition("KV")
    kv_cache = "fp8" if "FP8" in kv else ("int8" if "INT8" in kv else None)
    if "FP8" in weights:
        return {**_FP8, **({"kv_cache": kv_cache} if kv_cache else {})}
    out = dict(_BF16)
    if "INT8" in weights:
        out["weights"] = "int8"  # weight-only INT8 under 16-bit activations
    if kv_cache:
        out["kv_cache"] = kv_cache
    return out


def _lengths(row: dict) -> dict:
    return dict(prompt_len=int(row["input_len"] or 0), gen_len=int(row["output_len"] or 0))


def _mlperf(row: dict, workload: str, chips: int, system: float):
    scenario = row["scenario"]
    if workload == "resnet50" and scenario == "Offline":
        return dict(batch="max", chips=chips, **_INT8), "throughput_per_s", system
    if workload == "resnet50" and scenario == "SingleStream":
        return dict(batch=1, chips=1, **_INT8), "latency_s", float(row["value"]) / 1e3
    if workload == "resnet50":
        return f"MLPerf {scenario} is SLO-bound serving; the latency bound is not modelled"
    if workload == "bert-large":
        return _mlperf_bert(row, scenario, chips, system)
    return ("the dataset's mean input length is not published (MLPerf reports samples/s "
            "over a dataset of varying lengths)")


def _mlperf_bert(row: dict, scenario: str, chips: int, system: float):
    """MLPerf BERT-Large on SQuAD v1.1 (max_seq_len 384). NVIDIA's TensorRT harness packs the
    sequences unpadded (cu_seqlens inputs of its var-seqlen encoder: mlcommons/
    inference_results_v3.0@closed/NVIDIA/code/bert/tensorrt/fp16_builder_var_seqlen.py), so a
    sample costs its real tokens; other stacks do not say whether they pad. bert-99 runs INT8;
    bert-99.9 runs FP16 (the rows' precision field), except on chips with FP8 matmuls, where
    NVIDIA's HighAccuracy configs mix FP8 into the FP16 engine (precision = "fp16",
    use_fp8 = True: configs/bert/Offline/__init__.py of its MLPerf code, 2024,
    H100_SXM_80GBx1_HighAccuracy): a mix one scenario dtype cannot state."""
    stack = row.get("software_stack", "")
    if not any(name in stack for name in ("TensorRT", "Jetson CUDA-X", "JetPack")):
        return f"MLPerf BERT on {stack!r}: whether it pads SQuAD to 384 tokens is not stated"
    precision = _INT8
    if "fp16" in row["precision"].lower():
        if "fp8" in load_chip(_presets_by_name()[row["chip"]]).dtype_speedup:
            return ("MLPerf BERT-99.9 on an FP8 chip runs FP16 with FP8 layers mixed in "
                    "(NVIDIA HighAccuracy config use_fp8); the mix is not stated")
        precision = dict(weights="bf16", activations="bf16")
    lengths = dict(prompt_len=_SQUAD_MEAN_TOKENS)
    if scenario == "Offline":
        return (dict(batch="max", chips=chips, **lengths, **precision), "throughput_per_s",
                system)
    if scenario == "SingleStream":
        return (dict(batch=1, chips=1, **lengths, **precision), "latency_s",
                float(row["value"]) / 1e3)
    return f"MLPerf {scenario} is SLO-bound serving; the latency bound is not modelled"


def _inference_bench(row: dict, chips: int):
    """LLM-Inference-Bench (Argonne): a fixed batch of B prompts of L tokens, L generated,
    throughput = B (L_in + L_out) / end-to-end latency (its benchmark_throughput scripts), so
    generated tokens/s = value / 2 when L_in = L_out. The batch runs statically."""
    lengths = _lengths(row)
    precision = _precision(row["precision"])
    if "TTFT" in row["workload"]:
        return (dict(phase="prefill", batch=int(row["batch_size"]),
                     prompt_len=lengths["prompt_len"], chips=chips, **precision),
                "ttft_s", float(row["value"]))
    counts_both = "input+output" in row["unit"] or "prompt+generated" in row["unit"]
    if lengths["prompt_len"] != lengths["gen_len"] or not counts_both:
        return "throughput counts input and output tokens of unequal lengths"
    return (dict(phase="generate", batch=int(row["batch_size"]), batching="static",
                 chips=chips, **lengths, **precision), "throughput_per_s",
            float(row["value"]) / 2.0)


def _scenario(row: dict, workload: str) -> tuple[dict, str, float] | str:
    """(predict kwargs, metric, measured value for the whole system) or a reason."""
    bench, chips = row["workload"], int(row["num_chips"])
    value, unit = float(row["value"]), row["unit"]
    system = value * chips if "per GPU" in unit else value
    lengths = _lengths(row)
    if bench.startswith("MLPerf"):
        return _mlperf(row, workload, chips, system)
    if bench.startswith("LLM-Inference-Bench"):
        return _inference_bench(row, chips)
    if "first-token latency" in bench:
        return (dict(phase="prefill", batch=1, prompt_len=lengths["prompt_len"], chips=chips,
                     **_precision(row["precision"])), "ttft_s", value / 1e3)
    if "TensorRT-LLM" in bench:
        static = row["batch_size"].isdigit()
        return (dict(phase="generate", batch=int(row["batch_size"]) if static else "max",
                     batching="static" if static else "continuous", chips=chips, **lengths,
                     **_precision(row["precision"])), "throughput_per_s", system)
    if "llama.cpp" in bench:
        precision = _precision(row["precision"])
        if "prompt" in bench:
            return (dict(phase="prefill", batch=1, prompt_len=_PP_PROMPT, chips=chips,
                         **precision), "throughput_per_s", system)
        return (dict(phase="decode", batch=1, context_len=_TG_CONTEXT // 2, chips=chips,
                     **precision), "throughput_per_s", system)
    return f"no mapping for benchmark {bench!r}"


def map_row(row: dict) -> Case | Unmapped:
    base = (row["id"], row["chip"], row["model"])
    presets = _presets_by_name()
    if row["chip"] not in presets:
        return Unmapped(*base, f"no preset for chip {row['chip']!r}")
    suspect = next((why for key, why in _SUSPECT.items() if key in row["workload"]),
                   _AMBIGUOUS_DEVICE.get(row["chip"]))
    if suspect:
        return Unmapped(*base, suspect)
    workload = _workload(row["model"])
    if workload is None:
        return Unmapped(*base, f"no workload preset for model {row['model']!r}")
    if not row["num_chips"].isdigit():
        return Unmapped(*base, "number of chips not published (vendor service)")
    mapped = _scenario(row, workload)
    if isinstance(mapped, str):
        return Unmapped(*base, mapped)
    kwargs, metric, measured = mapped
    tp = re.search(r"\bTP(\d+)\b", row["notes"] + " " + row["quote_or_pointer"])
    # The scheduler cap: a stated batch is what ran; batch by capacity meets the engine's cap.
    stated = kwargs.get("batch") != "max"
    llm = family_of(load_workload(workload)) == "llm"
    engine = engine_of(row.get("software_stack") or row["workload"]) if llm else _UNMODELLED
    return Case(row["id"], presets[row["chip"]], row["chip"], workload,
                tuple(sorted(kwargs.items())), metric, measured, _regime(row["regime"]),
                int(tp.group(1)) if tp and int(tp.group(1)) == kwargs["chips"] else None,
                vendor_of(row["chip"]),
                None if stated else load_engine(_engine(engine)).max_num_seqs, engine)


def load_cases(path: str | Path = DATA) -> tuple[list[Case], list[Unmapped]]:
    """Every row of a measured-results CSV (the columns of data/measured_public.csv)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"data={path}: no such file")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    needed = {"id", "chip", "num_chips", "workload", "model", "precision", "scenario",
              "batch_size", "input_len", "output_len", "value", "unit", "regime"}
    missing = needed - set(rows[0] if rows else needed)
    if missing:
        raise ValueError(f"data={path}: missing column(s) {', '.join(sorted(missing))}")
    mapped = [map_row(r) for r in rows]
    return _best_per_setup([m for m in mapped if isinstance(m, Case)],
                           [m for m in mapped if isinstance(m, Unmapped)])


def _best_per_setup(cases: list[Case], unmapped: list[Unmapped]):
    """The model predicts what a chip achieves with the best software measured on it: where
    several rows measure one chip on one setup (LLM-Inference-Bench runs vLLM, TensorRT-LLM,
    DeepSpeed-MII and llama.cpp on the same GPUs, up to 10x apart), the fastest is kept and
    the others are listed as unmapped with the reason."""
    best: dict[tuple, Case] = {}
    for case in cases:
        # The split is the software's choice too: llama.cpp runs a model over several GPUs
        # layer by layer (one at a time), TensorRT-LLM tensor-parallel on the same GPUs.
        key = (case.chip, case.workload, case.scenario, case.metric)
        held = best.get(key)
        faster = held is None or ((case.measured > held.measured) == (
            case.metric == "throughput_per_s"))
        best[key] = case if faster else held
    kept = set(map(id, best.values()))
    slower = [Unmapped(c.row_id, c.chip_label, c.workload,
                       "a faster measurement of the same chip and setup is kept (software "
                       "differs, not the hardware)") for c in cases if id(c) not in kept]
    return [c for c in cases if id(c) in kept], unmapped + slower


@cache
def _prepared(group: tuple, chips: tuple[str, ...], counts: tuple[int, ...]):
    """Inputs of one evaluate call for cases sharing a workload and scenario: the chips as
    one batch of candidates, the system sizes as a (n_cand,) array."""
    workload, scenario, tp, max_num_seqs, engine = group
    _, plan, sc, sys = _prepare(chips[0], workload, dict(scenario, chips=1), _engine(engine))
    return (from_configs([load_chip(c) for c in chips]), plan, sc,
            dataclasses.replace(sys, chips=np.array(counts), tp=tp, max_num_seqs=max_num_seqs))


def predict_cases(cases: list[Case], eff: Efficiency = DEFAULT) -> np.ndarray:
    """The model's value of each case's metric (NaN where the design cannot run it). Cases
    that share a workload and scenario are evaluated together, one candidate per case."""
    groups: dict[tuple, list[int]] = {}
    for i, case in enumerate(cases):
        scenario = tuple((k, v) for k, v in case.scenario if k != "chips")
        groups.setdefault((case.workload, scenario, case.tp, case.max_num_seqs, case.engine,
                           case.metric), []).append(i)
    out = np.empty(len(cases))
    for (*group, metric), idx in groups.items():
        inputs = _prepared(tuple(group), tuple(cases[i].chip for i in idx),
                           tuple(int(cases[i].kwargs["chips"]) for i in idx))
        with np.errstate(all="ignore"):
            out[idx] = evaluate(*inputs, eff)[metric]
    return out


def validate(cases: list[Case], eff: Efficiency = DEFAULT) -> pd.DataFrame:
    """One row per case: measured, predicted and the relative error predicted/measured - 1."""
    predicted = predict_cases(cases, eff)
    frame = pd.DataFrame({
        "id": [c.row_id for c in cases], "chip": [c.chip for c in cases],
        "vendor": [c.vendor for c in cases],
        "workload": [c.workload for c in cases], "regime": [c.regime for c in cases],
        "metric": [c.metric for c in cases], "measured": [c.measured for c in cases],
        "predicted": predicted,
    })
    frame["error"] = frame["predicted"] / frame["measured"] - 1.0
    return frame


def summary(frame: pd.DataFrame) -> dict[str, float]:
    """Median absolute relative error per regime and overall (a case the model cannot run
    counts as 100 % off)."""
    err = frame["error"].abs().fillna(1.0)
    out = {r: float(err[frame["regime"] == r].median()) for r in REGIMES
           if (frame["regime"] == r).any()}
    out["overall"] = float(err.median()) if len(err) else math.nan
    return out


def regime_table(frames: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Rows per regime and the median absolute error of each validation (in-sample,
    leave-one-chip-out, ...), as printable rows; the last row is overall."""
    first = next(iter(frames.values()))
    summaries = {kind: summary(f) for kind, f in frames.items()}
    rows = []
    for regime in [*REGIMES, "overall"]:
        n = len(first) if regime == "overall" else int((first["regime"] == regime).sum())
        if n:
            rows.append(dict(regime=regime, rows=n, **{
                kind: f"{100 * s[regime]:.1f}%" for kind, s in summaries.items()}))
    return rows


def with_unmapped(frame: pd.DataFrame, unmapped: list[Unmapped]) -> pd.DataFrame:
    """The validation rows followed by the rows that could not be mapped, with a ``reason``
    column (empty for mapped rows): nothing is dropped."""
    extra = pd.DataFrame([dict(id=u.row_id, chip=u.chip_label, workload=u.model,
                               reason=u.reason) for u in unmapped])
    return pd.concat([frame.assign(reason=""), extra], ignore_index=True)
