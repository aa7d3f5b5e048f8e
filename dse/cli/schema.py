"""Register the plain-data schemas into Hydra's ConfigStore, so each YAML can name its schema
first in its defaults list (hydra structured_configs tutorial 5.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from hwspace.config import ChipConfig, SpaceConfig
from workloads.config import CNNConfig, TransformerConfig

__all__ = ["register", "NicheConfig"]


@dataclass
class NicheConfig:
    """Schema of conf/niche; validated by dse.pipeline.niche.parse_niche."""

    name: str = MISSING
    description: str = ""
    objectives: dict[str, str] = field(default_factory=dict)  # output column -> max | min
    constraints: dict[str, Optional[float]] = field(default_factory=dict)
    scenarios: dict[str, Any] = field(default_factory=dict)  # name -> scenario keys


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="chip", name="schema", node=ChipConfig)
    cs.store(group="workload", name="transformer_schema", node=TransformerConfig)
    cs.store(group="workload", name="cnn_schema", node=CNNConfig)
    cs.store(group="space", name="schema", node=SpaceConfig)
    cs.store(group="niche", name="schema", node=NicheConfig)
