"""Register the schemas into Hydra's ConfigStore, so each YAML names its schema first in its
defaults list (hydra structured_configs tutorial 5.1) and conf/ repeats no default: a
setting's default, range and unit live in its schema's field only (dse.inputs)."""

from __future__ import annotations

from dse.evaluator.engine import EngineConfig
from dse.settings import SearchConfig, SweepConfig, SystemConfig
from hwspace.config import ChipConfig, SpaceConfig
from hwspace.cost import EconomicsConfig
from workloads.config import CNNConfig, TransformerConfig
from workloads.scenario import ScenarioConfig

__all__ = ["PREDICT_SCHEMAS", "register"]

# (group, name) -> schema of the groups `dse predict` composes; dse.cli.direct composes them
# without Hydra. Scenario and system have one option each: config.yaml takes them from the
# defaults list.
PREDICT_SCHEMAS: dict[tuple[str, str], type] = {
    ("chip", "schema"): ChipConfig,
    ("workload", "transformer_schema"): TransformerConfig,
    ("workload", "cnn_schema"): CNNConfig,
    ("economics", "schema"): EconomicsConfig,
    ("engine", "schema"): EngineConfig,
    ("scenario", "schema"): ScenarioConfig,
    ("system", "schema"): SystemConfig,
}


def register() -> None:
    from hydra.core.config_store import ConfigStore  # Hydra: only where Hydra composes

    from dse.pipeline.niche import NicheConfig

    cs = ConfigStore.instance()
    schemas = {**PREDICT_SCHEMAS, ("space", "schema"): SpaceConfig,
               ("niche", "schema"): NicheConfig, ("search", "schema"): SearchConfig,
               ("sweep", "schema"): SweepConfig}
    for (group, name), node in schemas.items():
        cs.store(group=group, name=name, node=node)
