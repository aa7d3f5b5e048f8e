"""Every conf/space and conf/niche file composes against its schema and parses."""

import pytest
from omegaconf import OmegaConf

from dse.pipeline.niche import parse_niche
from dse.presets import preset_names
from hwspace.space import parse_space


@pytest.mark.parametrize("name", preset_names("space"))
def test_space_composes_and_parses(name, compose_conf):
    space = parse_space(OmegaConf.to_container(compose_conf("sweep", [f"space={name}"]).space))
    assert space.name == name and space.grid_size() >= 1


@pytest.mark.parametrize("name", preset_names("niche"))
def test_niche_composes_and_parses(name, compose_conf):
    niche = parse_niche(OmegaConf.to_container(compose_conf("sweep", [f"niche={name}"]).niche))
    assert niche.name == name and len(niche.objectives) == 2 and niche.scenarios


@pytest.mark.parametrize("cluster, address", [("local", None), ("address", "auto")])
def test_cluster_options_set_the_ray_address(cluster, address, compose_conf):
    assert compose_conf("sweep", [f"cluster={cluster}"]).ray.address == address
