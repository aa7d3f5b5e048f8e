"""Resolve chips and workloads given as a preset name, a dict, a YAML path or a config object.

Presets are the YAML files of conf/chip and conf/workload; each names its schema in its
defaults list for Hydra, which this loader skips: it merges the file onto the schema with
OmegaConf, so the Python API and the CLI read the same files the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hwspace.config import ChipConfig
from workloads.config import CNNConfig, TransformerConfig
from workloads.ops import Plan
from workloads.scenario import Scenario, build_plan

__all__ = ["CONF_DIR", "load_chip", "load_workload", "load_plan", "preset_names", "to_config",
           "yaml_problem"]

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def preset_names(group: str) -> list[str]:
    """Names of the presets in conf/<group>, sorted."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _read(spec: Any, group: str) -> tuple[dict, list]:
    """(fields, defaults list) from a preset name, a YAML path or a mapping."""
    if isinstance(spec, Mapping):
        data = dict(OmegaConf.to_container(OmegaConf.create(dict(spec)), resolve=True))
        return data, data.pop("defaults", [])
    path = Path(str(spec))
    if path.suffix not in (".yaml", ".yml"):
        path = CONF_DIR / group / f"{spec}.yaml"
        if not path.exists():
            raise ValueError(
                f"{group}: unknown preset {spec!r}; available: {', '.join(preset_names(group))}"
            )
    elif not path.exists():
        raise ValueError(f"{group}: no such file {str(path)!r}")
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except yaml.YAMLError as err:
        raise ValueError(f"{group}: {yaml_problem(err)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{group}: {str(path)!r} is not a mapping")
    return data, data.pop("defaults", [])


def yaml_problem(err: yaml.YAMLError) -> str:
    """One line: the file, line and column (1-based) and what the YAML parser objects to."""
    mark = getattr(err, "problem_mark", None)
    if mark is None:
        return f"YAML error: {str(err).splitlines()[0]}"
    return (f"{mark.name}: YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: "
            f"{err.problem}")


def to_config(data: Mapping, schema: type, group: str):
    """Merge ``data`` onto ``schema``; unknown or missing fields become a ValueError naming
    the field."""
    known = {f.name for f in fields(schema)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{group}: unknown field(s) {', '.join(unknown)}; allowed: "
                         f"{', '.join(sorted(known))}")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(schema), data)
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise ValueError(f"{group}.{missing[0]}: required field is missing")
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or ""
        raise ValueError(f"{group}.{key}: {err.msg if hasattr(err, 'msg') else err}") from None


def load_chip(chip: Any) -> ChipConfig:
    """A ChipConfig from a preset name (conf/chip), a dict of DESIGN.md section 3, a YAML
    path or a ChipConfig."""
    if isinstance(chip, ChipConfig):
        return chip
    return to_config(_read(chip, "chip")[0], ChipConfig, "chip")


def load_workload(workload: Any) -> TransformerConfig | CNNConfig:
    """A workload config from a preset name (conf/workload), a dict, a YAML path or a
    config object; ``cnn_schema`` in the defaults list or ``family: cnn`` selects the CNN
    schema."""
    if isinstance(workload, (TransformerConfig, CNNConfig)):
        return workload
    data, defaults = _read(workload, "workload")
    is_cnn = data.get("family") == "cnn" or "cnn_schema" in defaults
    schema = CNNConfig if is_cnn else TransformerConfig
    cfg = to_config(data, schema, "workload")
    _check_workload(cfg)
    return cfg


def load_plan(cfg: TransformerConfig | CNNConfig, sc: Scenario) -> Plan:
    """The plan of ``sc`` on ``cfg``, with the draft workload preset ``sc.draft`` names."""
    draft = None
    if isinstance(sc.draft, str):
        try:
            draft = load_workload(sc.draft)
        except ValueError as err:
            raise ValueError(f"scenario.draft: {err}") from None
        if not isinstance(draft, TransformerConfig) or draft.kind != "decoder":
            raise ValueError(f"scenario.draft = {sc.draft!r} is not a decoder LLM")
    return build_plan(cfg, sc, draft)


def _check_workload(cfg: TransformerConfig | CNNConfig) -> None:
    if isinstance(cfg, CNNConfig):
        return
    for name in ("n_layers", "d_model", "n_heads", "d_ff", "vocab"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"workload.{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.kind not in ("decoder", "encoder"):
        raise ValueError(f"workload.kind must be decoder or encoder, got {cfg.kind!r}")
    if cfg.mlp not in ("gated", "plain"):
        raise ValueError(f"workload.mlp must be gated or plain, got {cfg.mlp!r}")
    window = cfg.sliding_window
    if window is not None and not (cfg.kind == "decoder" and 1 <= window <= cfg.max_context):
        raise ValueError(f"workload.sliding_window must be a whole number in [1, "
                         f"{cfg.max_context}] (max_context) on a decoder, or null; got {window}")
    if cfg.n_experts and not 1 <= cfg.top_k <= cfg.n_experts:
        raise ValueError(f"workload.top_k must be in [1, {cfg.n_experts}], got {cfg.top_k}")
    _check_deepseek(cfg)


# Fields that mean something only beside another: MLA's beside kv_lora_rank, DeepSeekMoE's
# beside n_experts.
_NEEDS = {"kv_lora_rank": ("q_lora_rank", "qk_nope_head_dim", "v_head_dim", "qk_rope_head_dim"),
          "n_experts": ("n_shared_experts", "moe_d_ff", "first_dense_layers")}


def _check_deepseek(cfg: TransformerConfig) -> None:
    """Multi-head Latent Attention and DeepSeekMoE fields (workloads/config.py)."""
    for name in ("kv_lora_rank", "q_lora_rank", "moe_d_ff"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise ValueError(f"workload.{name} must be a whole number >= 1, or null; got {value}")
    for name, low in (("qk_nope_head_dim", 1), ("v_head_dim", 1), ("qk_rope_head_dim", 0)):
        value = getattr(cfg, name)
        if cfg.kv_lora_rank is not None and value < low:
            raise ValueError(f"workload.{name} must be >= {low} with kv_lora_rank (MLA), "
                             f"got {value}")
    for base, names in _NEEDS.items():
        for name in names:
            if getattr(cfg, name) and not getattr(cfg, base):
                raise ValueError(f"workload.{name} applies only where workload.{base} is set; "
                                 f"got {getattr(cfg, name)} with {base} = {getattr(cfg, base)}")
    if cfg.n_shared_experts < 0:
        raise ValueError(f"workload.n_shared_experts must be >= 0, got {cfg.n_shared_experts}")
    if not 0 <= cfg.first_dense_layers < cfg.n_layers:
        raise ValueError(f"workload.first_dense_layers must be in [0, {cfg.n_layers - 1}] "
                         f"(n_layers - 1), got {cfg.first_dense_layers}")
