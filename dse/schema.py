"""Register the plain-data schemas into Hydra's ConfigStore, so each YAML can name its schema
first in its defaults list (hydra structured_configs tutorial 5.1)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from hwspace.config import ChipConfig
from workloads.config import CNNConfig, TransformerConfig

__all__ = ["register"]


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="chip", name="schema", node=ChipConfig)
    cs.store(group="workload", name="transformer_schema", node=TransformerConfig)
    cs.store(group="workload", name="cnn_schema", node=CNNConfig)
