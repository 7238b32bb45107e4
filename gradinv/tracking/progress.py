"""A progress bar named for what runs: the attack and its problems, not Lightning's 'Epoch 0'."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar


class AttackProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, described by the module's ``progress_name`` and without ``v_num``."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        name = getattr(pl_module, "progress_name", None)
        if name:
            self.train_progress_bar.set_description(name)

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
