"""The results schema: the files a run writes, their keys and metric names, as typed records.

gradinv writes these records and multirun_analysis reads them; both take every file name, key
and metric name from here, so each is spelled once. Standard library only: importing it (and
so multirun_analysis) never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, make_dataclass
from typing import Any, ClassVar

RESULTS_FILE = "results.json"
PICTURE_FILE = "reconstruction.png"  # originals above reconstructions, captioned
TENSORS_FILE = "reconstruction.pt"  # matched originals and reconstructions, pixel space [0, 1]

RUNNING, OK, FAILED = "running", "ok", "failed"

#: The Hydra groups whose choices an attack run records under ``choices``.
GROUPS = ("dataset", "model", "threat", "client", "defense", "attack", "experiment")
#: The keys of ``choices`` that place a run in the grid.
CELL = ("dataset", "model", "client", "defense", "attack", "dropout", "seed")

#: W&B: the per-image Table's key and its image columns, and the summary keys' prefixes of
#: the final metrics and the timing (the runs read back by ``multirun_analysis --wandb``).
WANDB_TABLE = "per_image"
WANDB_IMAGE_COLUMNS = ("original", "reconstruction")
WANDB_METRICS_PREFIX = "final/"
WANDB_TIMING_PREFIX = "timing/"
#: W&B: the config keys every attack run logs (its grid cell and budget), the history keys of
#: its convergence (the loss each step, PSNR every ``attack.log_psnr_every`` steps), the step
#: they are logged against (Lightning's WandbLogger) and the picture of what leaked.
WANDB_CONFIG = (*GROUPS, "dropout", "seed", "iterations")
WANDB_PRIVACY = "privacy"  # and, with a defense that accounts for it (DP-SGD), its privacy block
WANDB_CURVES = ("attack/loss", "attack/psnr")
WANDB_STEP = "trainer/global_step"
WANDB_PICTURE = "reconstruction"


@dataclass(frozen=True)
class ImageMetric:
    """What the analysis knows of a per-image quality metric, kept on the metric as torchmetrics
    keeps ``higher_is_better`` on its classes: the label of its tables and plot axes, which way
    is better (table shading) and the decimals a table shows."""

    label: str
    higher_is_better: bool
    digits: int = 3


#: The per-image quality metrics, in table order; each run's ``metrics`` holds their means, each
#: ``per_image`` row their values and W&B ``WANDB_METRICS_PREFIX + name`` their means. Adding one
#: is an entry here and its function in ``gradinv.metrics.image_quality.PER_IMAGE``: the
#: records, the W&B keys, the analysis tables, plots and reports follow from this dict.
IMAGE_METRICS: dict[str, ImageMetric] = {
    # The metric the DIA authors' code reports (dAI-SY-Group/DropoutInversionAttack, src/metrics.py:
    # torch.nn.MSELoss, a mean over pixels and channels, per image or over the batch; their
    # rate_reconstruction_quality reports the batch's). Theirs compares normalized images
    # (standardized by the dataset's mean and std) in batch order; ours compares pixels in [0, 1]
    # after matching, as PSNR does (PSNR = 10 log10(1 / MSE)), so theirs is ours / std^2 (per
    # channel; MNIST: x 10.53) when the attack returns the images in the victims' order.
    "mse": ImageMetric("MSE", higher_is_better=False, digits=4),
    "psnr": ImageMetric("PSNR (dB)", higher_is_better=True, digits=2),
    "ssim": ImageMetric("SSIM", higher_is_better=True),
    "lpips": ImageMetric("LPIPS", higher_is_better=False),
}

#: Human labels of metric (and curve) names, for tables and plot axes.
LABELS = {
    **{name: metric.label for name, metric in IMAGE_METRICS.items()},
    "label_accuracy": "label accuracy",
    "mask_accuracy": "mask accuracy",
    "loss": "attack loss",
    "gradient_cosine_distance": "gradient cosine distance",
    "gradient_squared_distance": "gradient squared distance",
    "gradient_relative_squared_distance": "gradient relative squared distance",
    "test_accuracy": "test accuracy",
}


def metric_label(metric: str) -> str:
    """The human label of ``metric``, or the name itself when it has none."""
    return LABELS.get(metric, metric)


class _Record:
    """JSON conversion of a dataclass: fields in order, nested records as dicts.

    A record whose ``OMIT_UNSET`` is set leaves None fields out (not written yet, not measured);
    otherwise None is written as null. Reading takes the known keys and gives missing ones None,
    so older and partial records (e.g. from W&B) load.
    """

    OMIT_UNSET: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready dicts and lists."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in fields(self)
            if not (self.OMIT_UNSET and getattr(self, f.name) is None)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The record from its dict; unknown keys are ignored, missing ones are None."""
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


def _plain(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


ImageScore = make_dataclass(
    "ImageScore",
    [
        ("victim", int),
        ("index", int),
        ("label", int),
        ("predicted_label", int),
        *((name, "float | None") for name in IMAGE_METRICS),
    ],
    bases=(_Record,),
    namespace={
        "__module__": __name__,
        "__doc__": (
            "One victim image: where it came from, its label as recovered, and a field per image "
            "metric in ``IMAGE_METRICS`` order (null when unavailable, e.g. LPIPS without weights); "
            "built from the dict so that a metric is added in one place."
        ),
    },
)


@dataclass
class CurvePoint(_Record):
    """The attack's state at one step of one Lightning fit (one per problem unless vectorized):
    its mean loss, the candidates' mean PSNR and, when it learns dropout masks, their accuracy."""

    OMIT_UNSET: ClassVar[bool] = True

    fit: int
    step: int
    loss: float | None
    psnr: float | None = None
    mask_accuracy: float | None = None


@dataclass
class Timing(_Record):
    """Wall time of an attack run; ``seconds_per_iteration`` is the attack's time per optimizer
    step over all victims and restarts (null for a closed-form attack)."""

    total_seconds: float
    attack_seconds: float
    iterations: int | None
    optimizer_steps: int
    seconds_per_iteration: float | None


@dataclass
class Record(_Record):
    """What every run's results.json starts with: status, the grid cell and the resolved config;
    ``error`` says why a failed run ended. Unset fields are left out of the file."""

    OMIT_UNSET: ClassVar[bool] = True

    status: str = RUNNING
    choices: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class RunRecord(Record):
    """An attack run's results.json: what the attacker knew, the defense's privacy accounting
    (DP-SGD's epsilon at delta and what it was computed from; absent without one), what the
    attacker reported, the metrics (means, with the reason for each unavailable one), per-image
    scores, timing, the convergence curve, the picture's file name and the device."""

    knowledge: dict[str, Any] | None = None
    privacy: dict[str, Any] | None = None
    attack_report: dict[str, Any] | None = None
    metrics: dict[str, float | None] | None = None
    unavailable: dict[str, str] | None = None
    per_image: list[ImageScore] | None = None
    timing: Timing | None = None
    curve: list[CurvePoint] | None = None
    picture: str | None = None
    device: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        record = super().from_dict(data)
        if record.per_image is not None:
            record.per_image = [ImageScore.from_dict(row) for row in record.per_image]
        if record.timing is not None:
            record.timing = Timing.from_dict(record.timing)
        if record.curve is not None:
            record.curve = [CurvePoint.from_dict(point) for point in record.curve]
        return record


@dataclass
class TrainingRecord(Record):
    """A training run's results.json: test accuracy, where the train/test split came from,
    timing and the file of the trained weights."""

    metrics: dict[str, float | None] | None = None
    split: str | None = None
    timing: dict[str, float] | None = None
    weights: str | None = None
