"""Every conf/space and conf/niche file composes against its schema and parses."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dse.niche import parse_niche
from dse.presets import CONF_DIR, preset_names
from dse.schema import register
from hwspace.space import parse_space

register()


def _sweep_cfg(overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="sweep", overrides=overrides)


@pytest.mark.parametrize("name", preset_names("space"))
def test_space_composes_and_parses(name):
    space = parse_space(OmegaConf.to_container(_sweep_cfg([f"space={name}"]).space))
    assert space.name == name and space.grid_size() >= 1


@pytest.mark.parametrize("name", preset_names("niche"))
def test_niche_composes_and_parses(name):
    niche = parse_niche(OmegaConf.to_container(_sweep_cfg([f"niche={name}"]).niche))
    assert niche.name == name and len(niche.objectives) == 2 and niche.scenarios


@pytest.mark.parametrize("cluster, address", [("local", None), ("address", "auto")])
def test_cluster_options_set_the_ray_address(cluster, address):
    assert _sweep_cfg([f"cluster={cluster}"]).ray.address == address
