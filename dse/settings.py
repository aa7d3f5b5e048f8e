"""Schemas of the inputs dse owns: the system a scenario runs on, sweep and search settings,
the Ray cluster and each verb's own settings. Ranges, choices and units sit in each field's
metadata (checked by dse.inputs.build); cross-field rules are the ``*_rules`` functions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from dse.evaluator import model
from dse.inputs import build, register_rule, schema_fields
from hwspace.config import MAX_CHIPS

__all__ = ["settings", "SystemConfig", "SweepConfig", "SearchConfig", "RayConfig",
           "PredictSettings", "RunSettings", "ValidateSettings", "CalibrateSettings", "to_system",
           "system_rules", "sweep_rules", "MAX_SAMPLES", "MAX_CHUNK", "MAX_CHUNKS", "MAX_GRID",
           "MAX_TRIALS", "SAMPLER_NAMES"]

MAX_SAMPLES = 1_000_000_000  # random candidates of one sweep (DESIGN: 1e6 in ~60 s)
MAX_CHUNK = 1_000_000  # candidates per Ray task: ~1 GB of rows over three niches
MAX_CHUNKS = 1_000_000  # tasks of one sweep: the driver keeps one entry per chunk
MAX_GRID = 1_000_000_000  # points of a grid sweep, refused up front beyond it
MAX_TRIALS = 10_000_000  # trials of one search (Optuna keeps every trial in memory)
SAMPLER_NAMES = ("nsga2", "tpe", "random", "qmc")  # dse.pipeline.search.SAMPLERS
_SEED = dict(low=0, high=2**32 - 1)
_SLO = dict(above=0.0, high=1e9, unit="s")
_GB_S = dict(above=0.0, high=1e6, unit="GB/s")


@dataclass
class SystemConfig:
    """Schema of ``system.*`` and a niche scenario's system keys: chips, SLOs, the serving
    engine's cap, the training network, the KV host tier and a pinned split."""

    chips: int = field(default=1, metadata=dict(low=1, high=MAX_CHIPS, unit="chips"))
    tpot_slo_s: Optional[float] = field(default=None, metadata=_SLO)
    ttft_slo_s: Optional[float] = field(default=None, metadata=_SLO)
    # a serving engine's cap on sequences per replica (vLLM's default); null: no cap
    max_num_seqs: Optional[int] = field(default=model.MAX_NUM_SEQS, metadata=dict(
        low=1, high=10_000_000, unit="sequences"))
    # train: chips joined by the chip links (DGX H100's NVLink domain)
    scale_up: int = field(default=model.System.scale_up,
                          metadata=dict(low=1, high=MAX_CHIPS, unit="chips"))
    # train: cluster network per chip past them (400 Gb/s InfiniBand)
    network_gb_s: float = field(default=model.System.network_gb_s, metadata=_GB_S)
    # KV offload: host memory per chip the KV cache may spill to (0: off)
    kv_host_gb: float = field(default=model.System.kv_host_gb,
                              metadata=dict(low=0.0, high=1e6, unit="GB"))
    # its link per chip: PCIe 5.0 x16 (GH200's NVLink-C2C: 450)
    host_gb_s: float = field(default=model.System.host_gb_s, metadata=_GB_S)
    # pin the tensor-, pipeline- and expert-parallel degrees (a published setup); null: search
    tp: Optional[int] = field(default=None, metadata=dict(low=1, high=MAX_CHIPS))
    pp: Optional[int] = field(default=None, metadata=dict(low=1, high=MAX_CHIPS))
    # ep: chips the routed experts spread over (a divisor of n_experts; 1 for dense models)
    ep: Optional[int] = field(default=None, metadata=dict(low=1, high=MAX_CHIPS))


def system_rules(cfg: SystemConfig, where: str = "system") -> None:
    """A pinned split divides the chips: ep x tp x pp x dp = chips."""
    split = (cfg.ep or 1) * (cfg.tp or 1) * (cfg.pp or 1)
    if (cfg.tp or cfg.pp or cfg.ep) and cfg.chips % split:
        key = "tp" if cfg.tp else "pp" if cfg.pp else "ep"
        raise ValueError(f"{where}.{key} = {getattr(cfg, key)}: ep x tp x pp ({split}) must "
                         f"divide {where}.chips ({cfg.chips})")


def to_system(cfg: SystemConfig, chips=None, **engine) -> model.System:
    """The evaluator's System of a validated SystemConfig (``chips``: an array overrides;
    ``engine``: System's serving-engine fields)."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    if chips is not None:
        values["chips"] = chips
    return model.System(**values, **engine)


@dataclass
class SweepConfig:
    """Schema of ``sweep.*``."""

    mode: str = field(default="random", metadata=dict(choices=("grid", "random")))
    samples: int = field(default=200_000, metadata=dict(low=1, high=MAX_SAMPLES,
                                                        unit="candidates"))
    seed: int = field(default=0, metadata=_SEED)
    chunk_size: int = field(default=10_000, metadata=dict(low=1, high=MAX_CHUNK,
                                                          unit="candidates per task"))
    # tasks submitted ahead of completion (null: 2 x CPUs)
    max_in_flight: Optional[int] = field(default=None, metadata=dict(low=1, high=100_000))
    results_dir: Optional[str] = None  # a path every Ray node reaches: workers write there


def sweep_rules(cfg: SweepConfig, where: str = "sweep") -> None:
    """The sweep's tasks stay countable: samples / chunk_size <= MAX_CHUNKS."""
    if cfg.mode == "random" and -(-cfg.samples // cfg.chunk_size) > MAX_CHUNKS:
        raise ValueError(f"{where}.chunk_size = {cfg.chunk_size}: {cfg.samples:,} samples make "
                         f"more than {MAX_CHUNKS:,} tasks; allowed: >= "
                         f"{-(-cfg.samples // MAX_CHUNKS):,}")


@dataclass
class SearchConfig:
    """Schema of conf/search: the sampler and its budget."""

    sampler: str = field(default=MISSING, metadata=dict(choices=SAMPLER_NAMES))
    trials: int = field(default=20_000, metadata=dict(low=1, high=MAX_TRIALS, unit="trials"))
    population: int = field(default=200, metadata=dict(low=2, high=100_000,
                                                       unit="trials per generation"))
    seed: Optional[int] = field(default=0, metadata=_SEED)
    # null: a journal file in the run folder; or an Optuna storage URL
    storage: Optional[str] = None


@dataclass
class RayConfig:
    """Schema of ``ray.*`` (conf/cluster)."""

    address: Optional[str] = None  # auto or HOST:PORT: join a running cluster
    num_cpus: Optional[int] = field(default=None, metadata=dict(low=1, high=100_000,
                                                                unit="CPUs"))


@dataclass
class PredictSettings:
    """The settings of dse predict / explain besides chip, workload, scenario and system."""

    output: str = field(default="text", metadata=dict(choices=("text", "json")))
    explain: bool = False
    chip_file: Optional[str] = None
    run: Optional[str] = None
    candidate: Optional[int] = field(default=None, metadata=dict(low=0, high=2**63 - 1))
    scenario_name: Optional[str] = None


@dataclass
class RunSettings:
    """The settings of dse sweep / search besides their groups."""

    resume: Optional[str] = None
    top: int = field(default=10, metadata=dict(low=1, high=100_000, unit="rows"))
    wide: bool = False  # every column of the printed tables, not only those that fit


@dataclass
class ValidateSettings:
    """The settings of dse validate."""

    data: Optional[str] = None
    cv: Optional[str] = field(default=None, metadata=dict(choices=("all", "chip", "vendor")))
    show_unmapped: bool = False


@dataclass
class CalibrateSettings:
    """The settings of dse calibrate."""

    data: Optional[str] = None
    spread: bool = False


def settings(schema: type, cfg: dict, where: str = ""):
    """``schema`` built from the keys of ``cfg`` it declares (the rest: other schemas)."""
    names = schema_fields(schema)
    return build(schema, {k: v for k, v in cfg.items() if k in names}, where)


register_rule(SystemConfig, system_rules)
register_rule(SweepConfig, sweep_rules)
