"""Every option of every config group composes, builds, and says what it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from gradinv.errors import ConfigError, instantiate
from gradinv.models.build import build_model
from tests.helpers import CONF

GROUPS = (
    "dataset", "model", "threat", "attack", "defense", "logger", "trainer", "experiment", "hydra",
    "hydra/launcher",
)
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF) / g).glob("*.yaml"))]


def composed(overrides: list[str], hydra: bool = False):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=hydra)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_opens_with_a_comment_saying_what_it_is(group, option):
    """An option documents itself, so adding one is one YAML (and its module), no README edit."""
    first = (Path(CONF) / group / f"{option}.yaml").read_text().partition("\n")[0]
    assert first.startswith("# ") and first[2:].strip(), f"conf/{group}/{option}.yaml opens with no description"


@pytest.mark.parametrize(
    ("group", "option"), [o for o in OPTIONS if o[0] in ("dataset", "model", "attack", "defense")]
)
def test_every_option_composes_and_builds(group, option, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    cfg = composed([f"{group}={option}", f"dataset.path={tmp_path}", "dataset.label=0"]
                   if option == "folder" else [f"{group}={option}"])
    if group == "model":
        spec = instantiate(composed(["dataset=imagenet" if option == "vit_b16" else "dataset=cifar10"]).dataset).spec
        assert build_model(cfg.model, spec, seed=0) is not None
    else:
        assert instantiate(cfg[group]) is not None


@pytest.mark.parametrize("launcher", ["joblib_local", "slurm_gpu"])
def test_launcher_configs_compose(launcher):
    cfg = composed([f"hydra/launcher={launcher}"], hydra=True)
    assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")


@pytest.mark.parametrize("attack", sorted(p.stem for p in (Path(CONF) / "attack").glob("*.yaml")))
def test_the_client_shares_what_the_threat_grants_and_the_attack_is_told_it(attack):
    cfg = composed([f"attack={attack}"])
    threat, client = cfg.threat, cfg.client
    assert (client.share_labels, client.share_masks, client.share_samples) == (
        threat.labels, threat.masks, threat.samples
    )
    assert threat.masks is (attack == "wiig")  # wiig selects threat=masks, no other attack does
    told = instantiate(cfg.attack).knowledge()
    assert told["labels_known"] is threat.labels
    assert told.get("samples_known", False) is threat.samples


def test_a_threat_without_masks_is_refused_by_wiig_with_the_field_to_set():
    with pytest.raises(ConfigError, match="threat.masks must be true for attack=wiig"):
        instantiate(composed(["attack=wiig", "threat=default"]).attack)
