"""Every option of every config group composes, builds, and says what it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from PIL import Image

from gradinv.config_names import groups
from gradinv.errors import ConfigError, instantiate
from gradinv.experiment import build_setting
from gradinv.typecheck import unused_fields
from tests.helpers import CONF, REPO_ROOT, composed

GROUPS = (
    "dataset",
    "model",
    "threat",
    "client",
    "attack",
    "defense",
    "logger",
    "trainer",
    "experiment",
    "hydra",
    "hydra/launcher",
)
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF) / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_opens_with_a_comment_saying_what_it_is(group, option):
    """An option documents itself, so adding one is one YAML (and its module), no docs edit."""
    first = (Path(CONF) / group / f"{option}.yaml").read_text().partition("\n")[0]
    assert first.startswith("# ") and first[2:].strip(), (
        f"conf/{group}/{option}.yaml opens with no description"
    )


RUN_OPTIONS = [o for o in OPTIONS if not o[0].startswith("hydra")]
#: Options that need another group's option to make a run: ViT-B/16 tiles 224 px images only.
NEEDS = {("model", "vit_b16"): ["dataset=imagenet"]}


@pytest.mark.parametrize(("group", "option"), RUN_OPTIONS, ids=[f"{g}={o}" for g, o in RUN_OPTIONS])
def test_every_option_composes_and_builds_a_run(group, option, tmp_path):
    """Every option of every group and every experiment builds all a run builds before it attacks."""
    Image.new("RGB", (8, 8)).save(tmp_path / "one.png")
    chosen = f"+experiment={option}" if group == "experiment" else f"{group}={option}"
    extra = [f"dataset.path={tmp_path}", "dataset.label=0"] if option == "folder" else []
    cfg = composed(chosen, *NEEDS.get((group, option), []), *extra, hydra=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)  # the loggers write into the run's folder
    HydraConfig.instance().set_config(cfg)
    _, defense, model = build_setting(cfg)  # checks every field's type and that the model fits
    attack = instantiate(cfg.attack)
    client = instantiate(cfg.client, model=model, defense=defense)
    assert attack.knowledge()["labels_known"] is client.share_labels
    assert isinstance(instantiate(cfg.trainer, logger=False, max_epochs=1), L.Trainer)
    if cfg.get("logger"):
        assert instantiate(cfg.logger) is not None


@pytest.mark.parametrize("launcher", ["joblib_local", "slurm_gpu"])
def test_launcher_configs_compose(launcher):
    cfg = composed(f"hydra/launcher={launcher}", hydra=True)
    assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")


def test_rgap_holds_every_optimization_field_as_a_null_placeholder():
    """So that one sweep sets an optimization field for the attacks beside R-GAP
    (`-m attack=ig,rgap attack.optim.iterations=20`): each must exist in rgap.yaml to compose."""
    rgap = composed("attack=rgap").attack
    for attack in sorted(p.stem for p in (Path(CONF) / "attack").glob("*.yaml")):
        fields = composed(f"attack={attack}").attack
        missing = sorted(set(fields) - set(rgap))
        missing += sorted(
            f"optim.{k}" for k in set(fields.get("optim") or {}) - set(rgap.optim) - {"_target_"}
        )
        assert not missing, (
            f"conf/attack/rgap.yaml lacks attack={attack}'s {missing} (add them as null)"
        )
    unused = unused_fields(rgap)
    assert unused and all(rgap[f] is None for f in unused if f != "optim")
    assert all(value is None for value in rgap.optim.values())


@pytest.mark.parametrize("attack", sorted(p.stem for p in (Path(CONF) / "attack").glob("*.yaml")))
def test_the_client_shares_what_the_threat_grants_and_the_attack_is_told_it(attack):
    cfg = composed(f"attack={attack}")
    threat, client = cfg.threat, cfg.client
    assert (client.share_labels, client.share_masks, client.share_samples) == (
        threat.labels,
        threat.masks,
        threat.samples,
    )
    assert threat.masks is (attack == "wiig")  # wiig selects threat=masks, no other attack does
    told = instantiate(cfg.attack).knowledge()
    assert told["labels_known"] is threat.labels
    assert told.get("samples_known", False) is threat.samples


def test_a_threat_without_masks_is_refused_by_wiig_with_the_field_to_set():
    with pytest.raises(ConfigError, match="threat.masks must be true for attack=wiig"):
        instantiate(composed("attack=wiig", "threat=default").attack)


def test_help_lists_the_groups_a_user_picks_and_no_internal_piece():
    """--help lists conf/'s groups; the victim fields every dataset includes are no group."""
    done = subprocess.run(
        [sys.executable, "gradinv/main.py", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    listed = done.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    names = [line.split(":")[0] for line in listed.splitlines()[2:] if ":" in line]
    assert done.returncode == 0 and names == groups()
    assert "experiment" in names and "base" not in names and "victims" not in names
