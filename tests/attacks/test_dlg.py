"""DLG (Zhu et al. 2019): L-BFGS on images and soft labels recovers a digit and its label."""

from __future__ import annotations

from tests.helpers import run_config


def test_dlg_recovers_the_image_and_learns_the_withheld_label(tmp_path):
    outcome = run_config(
        ["attack=dlg", "threat.labels=false", "model.width=128", "attack.optim.iterations=5"],
        tmp_path,
    )
    assert outcome["metrics"]["label_accuracy"] == 1.0
    assert outcome["metrics"]["psnr"] > 30
    assert outcome["metrics"]["gradient_squared_distance"] < 1e-4
    assert outcome["knowledge"]["labels_known"] is False
