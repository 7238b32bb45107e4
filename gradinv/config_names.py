"""The names a command line may use (config groups, their options, a config's fields) and the
allowed name closest to a misspelt one, so that ``model=mpl`` is answered "did you mean mlp?".

Hydra stops a misspelt group, option or field while it composes the config, before gradinv's
task runs; ``composition_message`` turns its error into one sentence. A name Hydra lets through
(``+attak=dia`` adds a top-level key no one reads) is refused by ``check_top_level``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra.errors import MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from gradinv.errors import ConfigError

#: The Hydra config folder every entry point, benchmark and test composes from.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
#: Hydra's own settings: set as hydra.<field>, listed by --hydra-help, not among gradinv's names.
HYDRA = "hydra"


def groups() -> list[str]:
    """The config groups a command line picks options of (the folders of conf/)."""
    return sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name != HYDRA)


def options(group: str) -> list[str]:
    """The options of a config group (its YAML files)."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def top_level_names(config_name: str) -> list[str]:
    """The groups and the top-level fields of the primary config ``conf/<config_name>.yaml``."""
    fields = OmegaConf.load(CONFIG_DIR / f"{config_name}.yaml").keys()
    return sorted({*groups(), *(str(f) for f in fields if f not in ("defaults", HYDRA))})


def choice(name: str, allowed: Iterable[str], prefix: str = "") -> str:
    """' (a, b, c); did you mean <prefix>b?': the allowed names and the one closest to ``name``
    (just ' (a, b, c).' when none is close)."""
    allowed = sorted(allowed)
    listed = f" ({', '.join(allowed)})"
    closest = difflib.get_close_matches(name, allowed, n=1)
    return f"{listed}; did you mean {prefix}{closest[0]}?" if closest else f"{listed}."


def no_top_level(key: str, allowed: Iterable[str]) -> str:
    """The sentence for a top-level name that is neither a group nor a field."""
    return f"the config has no group or field {key!r}{choice(key, allowed)}"


def check_top_level(cfg: Any, config_name: str) -> None:
    """Refuse a top-level key that is neither a group nor a field of the primary config, as
    ``+attak=dia`` adds while the run goes on with the default attack."""
    allowed = top_level_names(config_name)
    for key in cfg:
        if key not in allowed and key != HYDRA:
            raise ConfigError(no_top_level(str(key), allowed))


#: "Could not override 'experiment'. No match in the defaults list." (a group left out of
#: the defaults list must be added with +group=option)
_NOT_IN_DEFAULTS = re.compile(r"Could not override '([^']+)'\. No match in the defaults list")
_ADD_HINT = re.compile(r"use \+\S+?=(\S+)")


def composition_message(error: Exception) -> str:
    """Hydra's composition error in one sentence: the misspelt name, the allowed names and the
    closest one; Hydra's own message on one line when it is about something else."""
    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        return f"{group} has no option {option!r}{choice(option, error.options)}"
    cause = error.__cause__
    unknown_key = (
        isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.key is not None
    )
    if unknown_key and cause.parent_node is not None:
        key, parent = str(cause.key), str(cause.full_key).rpartition(".")[0]
        if not parent:
            return no_top_level(
                key, {*(str(k) for k in cause.parent_node if k != HYDRA), *groups()}
            )
        fields = [str(k) for k in cause.parent_node.keys() if k != "_target_"]
        return f"{parent} has no field {key!r}{choice(key, fields, f'{parent}.')}"
    missing = _NOT_IN_DEFAULTS.search(str(error))
    if missing is not None and missing.group(1) in groups():
        group = missing.group(1)
        hint = _ADD_HINT.search(str(error))
        option = hint.group(1) if hint else ""
        if option in options(group):
            return f"{group} is an optional group: add it with +{group}={option}."
        listed = choice(option, options(group), f"+{group}=")
        return f"{group} is an optional group: add it with +{group}=<option>{listed}"
    return _one_line(str(error))


def _one_line(message: str) -> str:
    """Hydra's message without its config search path, its lines joined by '; '."""
    lines = [line.strip() for line in message.split("Config search path:")[0].splitlines()]
    return "; ".join(line for line in lines if line).rstrip(".") + "."
