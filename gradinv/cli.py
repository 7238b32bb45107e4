"""What the command-line entry points share: a configuration error is one sentence and exit 2."""

from __future__ import annotations

import logging
import sys
from typing import Callable, TypeVar

from omegaconf import DictConfig

from gradinv.errors import ConfigError

log = logging.getLogger("gradinv")
T = TypeVar("T")


def run_or_exit(task: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """Run ``task``; on a ConfigError print its message as one line and exit with status 2."""
    try:
        return task(cfg)
    except ConfigError as error:
        log.error("%s", error)
        print(f"gradinv: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
