"""Register the schemas into Hydra's ConfigStore, so each YAML names its schema first in its
defaults list (hydra structured_configs tutorial 5.1) and conf/ repeats no default: a
setting's default, range and unit live in its schema's field only (dse.inputs)."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from dse.evaluator.engine import EngineConfig
from dse.pipeline.niche import NicheConfig
from dse.settings import SearchConfig, SweepConfig, SystemConfig
from hwspace.config import ChipConfig, SpaceConfig
from hwspace.cost import EconomicsConfig
from workloads.config import CNNConfig, TransformerConfig
from workloads.scenario import ScenarioConfig

__all__ = ["register"]


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(group="chip", name="schema", node=ChipConfig)
    cs.store(group="workload", name="transformer_schema", node=TransformerConfig)
    cs.store(group="workload", name="cnn_schema", node=CNNConfig)
    cs.store(group="space", name="schema", node=SpaceConfig)
    cs.store(group="niche", name="schema", node=NicheConfig)
    cs.store(group="search", name="schema", node=SearchConfig)
    cs.store(group="economics", name="schema", node=EconomicsConfig)
    cs.store(group="engine", name="schema", node=EngineConfig)
    # Groups with one option each: config.yaml and sweep.yaml take them from the defaults list.
    cs.store(group="scenario", name="schema", node=ScenarioConfig)
    cs.store(group="system", name="schema", node=SystemConfig)
    cs.store(group="sweep", name="schema", node=SweepConfig)
