"""The headline of report.html and the W&B report: only settings that every attack completed."""

from __future__ import annotations

from multirun_analysis.loading import from_records
from multirun_analysis.overview import headline


def _run(model: str, attack: str, p: float, psnr: float) -> dict:
    return {
        "run": f"{model} {attack} {p}",
        "status": "ok",
        "choices": {
            "dataset": "mnist",
            "model": model,
            "defense": "none",
            "attack": attack,
            "dropout": p,
            "seed": 0,
        },
        "per_image": [{"victim": 0, "index": 0, "label": 1, "predicted_label": 1, "psnr": psnr}],
    }


def test_the_headline_pools_only_the_settings_every_attack_completed() -> None:
    """The CNN has no DIA run: pooling it would credit IG alone with the CNN's lower PSNR."""
    records = [
        _run("mlp", "ig", 0.0, 40.0),
        _run("mlp", "ig", 0.25, 16.0),
        _run("mlp", "dia", 0.0, 40.0),
        _run("mlp", "dia", 0.25, 38.0),
        _run("cnn", "ig", 0.0, 28.0),
        _run("cnn", "ig", 0.25, 18.0),
    ]
    glance = headline(from_records(records).images)
    assert glance.table.to_dict("index") == {
        "dia": {"p=0": 40.0, "p=0.25": 38.0},
        "ig": {"p=0": 40.0, "p=0.25": 16.0},
    }
    assert (
        glance.change()
        == "p=0 → p=0.25: dia 40.00 → 38.00 dB (-2.00), ig 40.00 → 16.00 dB (-24.00)"
    )
    assert glance.scope() == (
        "Mean over the victim images of the 1 model setting where every attack has a "
        "value at every p (seeds and other fields pooled); 1 incomplete left out."
    )
    # without IG at p=0.25 on the MLP no setting has every cell: the headline pools what there is
    partial = headline(from_records([r for r in records if r["run"] != "mlp ig 0.25"]).images)
    assert partial.table.to_dict("index") == {
        "dia": {"p=0": 40.0, "p=0.25": 38.0},
        "ig": {"p=0": 34.0, "p=0.25": 18.0},
    }
    assert partial.scope().endswith(
        "no setting has every attack at every p, so the cells may pool different settings."
    )
