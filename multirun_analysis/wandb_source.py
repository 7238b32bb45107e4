"""Runs read back from W&B (``--wandb ENTITY/PROJECT``) in the shape of results.json records.

W&B is imported only here and only when asked for, so the analysis runs without it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from gradinv.schema import (
    CELL,
    OK,
    WANDB_IMAGE_COLUMNS,
    WANDB_METRICS_PREFIX,
    WANDB_PRIVACY,
    WANDB_TABLE,
    WANDB_TIMING_PREFIX,
)

STATES = {"finished": OK}


def read_wandb(project: str, group: str | None = None) -> list[dict[str, Any]]:
    """Every run of ``ENTITY/PROJECT`` (optionally one group) as a results.json-like record."""
    try:
        import wandb
    except ImportError as error:
        raise SystemExit(f"--wandb needs the wandb package ({error}).") from None
    filters = {"group": group} if group else {}
    try:
        runs = list(wandb.Api(timeout=20).runs(project, filters=filters))
    except Exception as error:  # the API raises many kinds when offline or unauthorized
        raise SystemExit(f"--wandb {project}: W&B could not be read ({error}).") from None
    with tempfile.TemporaryDirectory() as tmp:
        return [to_record(run, Path(tmp)) for run in runs]


def to_record(run: Any, tmp: Path) -> dict[str, Any]:
    """One W&B run (config, summary, per-image table) as a results.json-like record."""
    summary = dict(run.summary)
    metrics = _prefixed(summary, WANDB_METRICS_PREFIX)
    timing = _prefixed(summary, WANDB_TIMING_PREFIX)
    return {
        "run": f"wandb:{run.path if isinstance(run.path, str) else '/'.join(run.path)}",
        "status": STATES.get(run.state, run.state),
        "choices": {key: run.config.get(key) for key in CELL},
        "config": {"attack": {"optim": {"iterations": run.config.get("iterations")}}},
        "metrics": metrics,
        "timing": timing,
        "privacy": run.config.get(WANDB_PRIVACY),
        "per_image": _per_image(run, summary.get(WANDB_TABLE), tmp),
    }


def _prefixed(summary: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The summary's entries under ``prefix``, without it."""
    return {k.removeprefix(prefix): value for k, value in summary.items() if k.startswith(prefix)}


def _per_image(run: Any, entry: Any, tmp: Path) -> list[dict[str, Any]]:
    """The per-image table's rows without the image columns; empty when the run has none."""
    if not isinstance(entry, dict) or "path" not in entry:
        return []
    local = run.file(entry["path"]).download(root=str(tmp), replace=True)
    table = json.loads(Path(local.name).read_text())
    keep = [i for i, name in enumerate(table["columns"]) if name not in WANDB_IMAGE_COLUMNS]
    return [{table["columns"][i]: row[i] for i in keep} for row in table["data"]]
