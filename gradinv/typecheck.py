"""Config values against the types their target declares: one sentence instead of a traceback.

Every config group entry names its class in ``_target_``; the type hints of that class's
``__init__`` (and of its bases', for fields passed on through ``**kwargs``) say what each field
may hold. ``check_fields`` compares the composed values with them before anything is built, so
``model.dropout=high`` or ``dataset.batch_size=2.0`` stops with the field's name and the type it
needs, and a field the target does not take (``+model.dropuot=0.1``) with the closest one it does;
entries built from a ``_target_`` of their own (an attack's regularizers) are checked too. A new
attack, model, dataset or defense is covered by its own type hints.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from gradinv.config_names import choice
from gradinv.errors import ConfigError


def check_fields(
    group: str, cfg: DictConfig | Mapping[str, Any], handled: tuple[str, ...] = ()
) -> None:
    """Raise a ConfigError for the first field of ``cfg`` its target does not take (``handled``
    ones are read before the target is built) or whose value its target's hint rejects."""
    fields = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    target = fields.pop("_target_", None)
    if not isinstance(target, str):
        return
    cls = get_class(target)
    accepted = {*accepted_fields(cls), *handled}
    hints = declared_types(cls)
    for key, value in fields.items():
        if key not in accepted and _placeholder(value):
            continue  # a null placeholder for the group's other options (``unused_fields``)
        if key not in accepted:
            names = [k for k in fields if k in accepted]
            raise ConfigError(f"{group} has no field {key!r}{choice(key, names, f'{group}.')}")
        if key in hints and not matches(value, hints[key]):
            raise ConfigError(f"{group}.{key} must be {describe(hints[key])}, got {value!r}.")
        for path, nested in _nested_targets(f"{group}.{key}", value):
            check_fields(path, nested)


def unused_fields(cfg: DictConfig) -> list[str]:
    """The fields of a config entry that its ``_target_`` takes no parameter for (nor its bases):
    placeholders that let one sweep set a field for the other options of the group, such as
    R-GAP's null optimization fields."""
    target = cfg.get("_target_")
    if not isinstance(target, str):
        return []
    accepted = accepted_fields(get_class(target))
    return [key for key in cfg if key != "_target_" and key not in accepted]


def _placeholder(value: Any) -> bool:
    """Whether ``value`` holds nothing: null, or a block of placeholders."""
    if isinstance(value, dict):
        return all(_placeholder(v) for v in value.values())
    return value is None


def _nested_targets(path: str, value: Any) -> list[tuple[str, dict[str, Any]]]:
    """Entries built from their own ``_target_`` (a field, or each value of a mapping field)."""
    if not isinstance(value, dict):
        return []
    if "_target_" in value:
        return [(path, value)]
    return [(f"{path}.{k}", v) for k, v in value.items() if isinstance(v, dict) and "_target_" in v]


def accepted_fields(cls: type) -> set[str]:
    """The keyword arguments ``cls`` takes: its ``__init__``'s, and its bases' while ``**kwargs``
    passes them on."""
    names: set[str] = set()
    for klass in inspect.getmro(cls)[:-1]:  # object takes none
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = list(inspect.signature(init).parameters.values())
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names - {"self"}


def declared_types(cls: type) -> dict[str, Any]:
    """Type hints of the ``__init__`` parameters of ``cls`` and of its bases (nearest first)."""
    hints: dict[str, Any] = {}
    for klass in reversed(inspect.getmro(cls)):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            found = typing.get_type_hints(init)
        except (NameError, TypeError):
            continue
        hints.update({k: v for k, v in found.items() if k != "return"})
    return hints


def matches(value: Any, hint: Any) -> bool:
    """Whether a plain config value (YAML scalar, list, dict) fits ``hint``."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return not args or all(matches(v, args[0]) for v in value)
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, dict)
    return True  # a type the config cannot express (a module, a callable): not checked here


def positive_int(value: Any) -> bool:
    """Whether ``value`` is an integer of at least 1: the range check a hint ``int`` cannot
    express (counts, steps, sizes), in one place for every field that needs it."""
    return matches(value, int) and value >= 1


def describe(hint: Any) -> str:
    """``hint`` in words, e.g. 'an integer', 'a number or null', 'a list of numbers'."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in typing.get_args(hint))
    if origin in (list, tuple, Sequence):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return f"a list of {_plural(args[0])}" if args else "a list"
    return {
        type(None): "null",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        dict: "a mapping",
    }.get(hint, getattr(hint, "__name__", str(hint)))


def _plural(hint: Any) -> str:
    word = describe(hint)
    return {"an integer": "integers", "a number": "numbers", "a string": "strings"}.get(word, word)
