"""Every conf file composes against its schema with Hydra, and every preset predicts."""

import pytest
import yaml
from omegaconf import OmegaConf

from dse.api import predict
from dse.presets import preset_names


@pytest.mark.parametrize("name", preset_names("chip"))
def test_chip_preset_composes_and_predicts(name, compose_conf):
    cfg = compose_conf("predict", [f"chip={name}"])
    chip = OmegaConf.to_object(cfg.chip)
    out = predict(chip, "llama3-8b", phase="decode", batch=1, weights="int8", chips=64)
    assert set(out) >= {"fits", "throughput_per_s", "unit_cost_usd"}
    assert out["unit_cost_usd"] > 0 and out["die_area_mm2"] > 0


@pytest.mark.parametrize("name", preset_names("workload"))
def test_workload_preset_composes_and_predicts(name, compose_conf):
    cfg = compose_conf("predict", [f"workload={name}"])
    workload = OmegaConf.to_object(cfg.workload)
    assert workload.name == name
    # fp8 weights: Llama-3-405B at 16 bit (810 GB) exceeds 8 x 80 GB; 16 chips: DeepSeek-V3
    # at fp8 (671 GB) exceeds 8 x 80 GB too (DeepSeek's smallest prefill unit is 32 H800s,
    # arXiv 2412.19437 section 3.4.1).
    out = predict("h100", workload, chips=16 if name == "deepseek-v3" else 8, weights="fp8")
    assert out["fits"], out["reason"]
    assert out["throughput_per_s"] > 0


def test_predict_config_overrides_reach_the_scenario(compose_conf):
    cfg = compose_conf("predict", ["scenario.phase=decode", "scenario.batch=max",
                                   "system.chips=8"])
    assert cfg.scenario.batch == "max" and cfg.system.chips == 8


@pytest.mark.parametrize("group", ["chip", "workload"])
def test_every_preset_passes_the_cli_checks(group, compose_conf):
    """Validation does not over-reject: each preset, composed as the CLI does, passes."""
    from dse.cli.checks import check_inputs

    for name in preset_names(group):
        cfg = compose_conf("predict", [f"{group}={name}"])
        check_inputs("predict", OmegaConf.to_container(cfg, resolve=True))


@pytest.mark.parametrize("verb, space", [("sweep", "demo"), ("search", "edge_vision")])
def test_every_niche_passes_the_cli_checks(verb, space, compose_conf):
    from dse.cli.checks import check_inputs

    for name in preset_names("niche"):
        cfg = compose_conf(verb, [f"niche={name}", f"space={space}"])
        check_inputs(verb, OmegaConf.to_container(cfg, resolve=True))


def test_conf_repeats_no_schema_default():
    """config.yaml and sweep.yaml set no scenario, system or sweep default: the schemas do.
    A link to the engine's caps (${engine.max_num_seqs}) is no default of its own."""
    from dse.presets import CONF_DIR

    for name in ("config", "sweep"):
        data = yaml.safe_load((CONF_DIR / f"{name}.yaml").read_text())
        for block in {"scenario", "system", "sweep"} & set(data):
            values = data[block].values()
            assert all(str(v).startswith("${engine.") for v in values), (name, block)
