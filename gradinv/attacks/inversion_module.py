"""The Lightning adapter of an optimization attack: a Trainer drives the steps and the logging.

The module holds no parameters and no state that Lightning could move: at the start of a fit
it builds the ``InversionEngine`` on the Trainer's device, each training step is one engine
step, and every ``sync_every`` steps (and at the end) the step losses reach the logger, the
progress bar, and the early stop of the whole fit. Results are read from ``engine`` after
``trainer.fit``, whatever the strategy's teardown did to the module.
"""

from __future__ import annotations

import lightning as L

from gradinv.attacks.base import ServerView
from gradinv.attacks.engine import Flushed, InversionEngine

PROGRESS_NAME = "{attack} victim {span}"


class InversionModule(L.LightningModule):
    """Manual optimization over a group of problems of ``attack``, all stepped at once."""

    def __init__(self, attack, server: ServerView, problems: list) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.attack = attack
        self.server = server
        self.problems = problems
        self.engine: InversionEngine | None = None

    @property
    def progress_name(self) -> str:
        """What the progress bar shows: the attack and the victims this fit attacks."""
        victims = sorted({p.victim + 1 for p in self.problems})
        span = f"{victims[0]}" if len(victims) == 1 else f"{victims[0]}-{victims[-1]}"
        return PROGRESS_NAME.format(attack=type(self.attack).__name__, span=span)

    def configure_optimizers(self) -> list:
        """No torch optimizer: the engine steps the problems itself (``attack.optim``)."""
        return []

    def on_fit_start(self) -> None:
        self.engine = InversionEngine(self.attack, self.server, self.problems, self.device)

    def training_step(self, batch, batch_idx: int) -> None:
        self.engine.step()
        if (batch_idx + 1) % self.engine.sync_every == 0:
            self._flush(progress_bar=True)

    def on_train_end(self) -> None:
        self._flush(progress_bar=False)

    def _flush(self, progress_bar: bool) -> Flushed:
        """Hand the buffered step losses to the logger (each with its step), show the latest on
        the progress bar, and end the fit once no problem runs."""
        flushed = self.engine.flush()
        if flushed.losses:
            if self.logger is not None:
                for step, value in flushed.losses:
                    self.logger.log_metrics({"attack/loss": value}, step=step)
            if progress_bar:
                self.log("attack/loss", flushed.losses[-1][1], prog_bar=True, logger=False)
        if not flushed.running:
            self.trainer.should_stop = True
        return flushed

    # ------------------------------------------------------------ for evaluation-side monitors
    @property
    def last_loss(self) -> float | None:
        """The mean loss of the latest step, over the problems that ran in it (None if none did)."""
        return self._flush(progress_bar=False).latest

    def current_images(self) -> list[tuple[int, object]]:
        """(victim, candidate images) per problem."""
        images = self.engine.images()
        return [(p.victim, images[i]) for i, p in enumerate(self.problems)]

    def current_masks(self) -> list[tuple[int, dict]]:
        """(victim, the dropout masks the attack learns) per problem."""
        return [(p.victim, masks) for p, masks in zip(self.problems, self.engine.masks())]
