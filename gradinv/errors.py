"""The one error type a user can cause; the entry point prints its message as one sentence."""

from typing import Any

import hydra.utils
from hydra.errors import InstantiationException


class ConfigError(ValueError):
    """A configuration value that cannot work, named with what is allowed instead."""


def instantiate(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets a target's ConfigError surface as itself."""
    try:
        return hydra.utils.instantiate(config, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, ConfigError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise
