"""Experiment configs set the papers' settings; without one, ig, dia and wiig share one setting."""

from __future__ import annotations

import inspect

import pytest
from omegaconf import OmegaConf

from gradinv.attacks.dia import DropoutInversion
from gradinv.attacks.gradient_inversion import GradientInversion
from gradinv.attacks.optimization import Optimization
from gradinv.attacks.wiig import WellInformedIG
from tests.helpers import composed

# What an optimization attack's setting is: every field but what the attack models or is told.
NOT_SETTING = {"_target_", "mask_lr", "mask_init", "masks_known", "ignore_layers"}
MODELLED_PRIORS = {"mask_rate"}  # DIA's prior on the masks it models


def setting(cfg) -> dict:
    fields = OmegaConf.to_container(cfg.attack, resolve=True)
    priors = {k: v for k, v in fields.pop("regularizers").items() if k not in MODELLED_PRIORS}
    return {**{k: v for k, v in fields.items() if k not in NOT_SETTING}, "regularizers": priors}


def test_ig_dia_and_wiig_share_one_default_setting():
    ig, dia, wiig = (setting(composed(f"attack={a}")) for a in ("ig", "dia", "wiig"))
    assert ig == dia == wiig
    assert ig["regularizers"]["total_variation"]["weight"] == 1e-5
    assert ig["optim"]["schedule"] == "plateau" and ig["optim"]["keep_best"]


@pytest.mark.parametrize(
    "target", [Optimization, GradientInversion, DropoutInversion, WellInformedIG]
)
def test_the_yaml_holds_the_only_defaults(target):
    """No optimization attack field has a default in code: conf/attack/ig.yaml is the one set."""
    defaults = [
        p.name for p in inspect.signature(target).parameters.values() if p.default is not p.empty
    ]
    assert defaults == []


def test_dlg_changes_only_what_differs_from_ig():
    """dlg.yaml inherits ig's setting and states L-BFGS, the squared distance and no prior."""
    ig, dlg = composed("attack=ig").attack, composed("attack=dlg").attack
    changed = {k for k in ig.optim if ig.optim[k] != dlg.optim[k]}
    assert changed == {
        "optimizer",
        "lr",
        "schedule",
        "signed",
        "boxed",
        "keep_best",
        "stop_patience",
        "stop_loss",
    }
    assert (dlg.objective, dlg.regularizers, dlg.optim.iterations) == ("l2", None, 300)


@pytest.mark.parametrize("attack", ["ig", "dia", "wiig"])
def test_dia_paper_gives_every_attack_of_its_table_the_same_setting(attack):
    cfg = composed("+experiment=dia_paper", f"attack={attack}")
    assert setting(cfg) == setting(composed("+experiment=dia_paper", "attack=ig"))
    assert cfg.attack.optim.iterations == 20000


def test_paper_budgets_and_settings():
    ig = composed("+experiment=ig_paper").attack
    tv = ig.regularizers.total_variation.weight
    assert (ig.optim.iterations, tv, ig.optim.schedule, ig.optim.keep_best) == (
        24000,
        1e-4,
        "multistep",
        False,
    )
    precode = composed("+experiment=precode_paper")
    assert precode.defense._target_.endswith("Precode")
    assert (
        precode.attack.ignore_layers,
        precode.attack.optim.iterations,
        precode.attack.optim.lr,
    ) == ("defended", 7000, 0.01)
    assert composed("+experiment=rgap_paper").attack._target_.endswith("RGAP")
