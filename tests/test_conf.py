"""Every shipped configuration environment loads, and its parameters and catalog pass the checks a run makes
before its first node; a misspelt claim is refused by name instead of quietly leaving the report."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from diffusion_bridge.errors import ConfigError
from diffusion_bridge.parameters import check_parameters
from diffusion_bridge.settings import CONFIG_LOADER_ARGS

CONF = Path(__file__).resolve().parents[1] / "conf"
ENVS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("base", "local"))


def _config(env: str) -> OmegaConfigLoader:
    return OmegaConfigLoader(str(CONF), env=env, **CONFIG_LOADER_ARGS)


def test_the_environments_are_the_documented_ones():
    assert {"smoke", "coco", "flickr30k", "synthetic_large"} <= set(ENVS)


@pytest.mark.parametrize("env", ["base", *ENVS])
def test_every_environment_passes_the_parameter_checks_and_builds_its_catalog(env):
    config = _config("base" if env == "base" else env)
    params = config["parameters"]
    check_parameters(params, params.keys())
    catalog = DataCatalog.from_config(config["catalog"])
    assert "raw_corpus" in catalog  # the stage-1 input exists in every env


def test_a_misspelt_claim_is_refused_by_name():
    params = copy.deepcopy(_config("base")["parameters"])
    params["caption"]["claims"][0]["worse"] = "mean_shfit"
    with pytest.raises(ConfigError, match=r"caption\.claims\[0\]\.worse='mean_shfit'"):
        check_parameters(params, ["caption"])
    params = copy.deepcopy(_config("base")["parameters"])
    params["caption"]["claims"][1]["metrics"] = ["CIDEr", "BLEU"]
    with pytest.raises(ConfigError, match=r"caption\.claims\[1\]\.metrics='BLEU'"):
        check_parameters(params, ["caption"])


def test_a_scratch_decoder_setting_that_cannot_build_is_refused_by_name():
    for key, value, message in (("activation", "gelu_fast_typo", r"caption\.backbone\.activation='gelu_fast_typo'"),
                                ("dropout", 1.5, r"caption\.backbone\.dropout=1\.5")):
        params = copy.deepcopy(_config("base")["parameters"])
        params["caption"]["backbone"][key] = value
        with pytest.raises(ConfigError, match=message):
            check_parameters(params, ["caption"])
