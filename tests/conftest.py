"""Shared test helpers: compose the project's Hydra configs as the CLI does."""

import pytest
from hydra import compose, initialize_config_dir

from dse.cli.schema import register
from dse.presets import CONF_DIR

register()


@pytest.fixture(scope="session")
def compose_conf():
    """compose_conf(config_name, overrides) -> the composed DictConfig."""

    def _compose(config_name: str, overrides: list[str]):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)

    return _compose
