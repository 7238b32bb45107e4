"""Defenses: model-side (change what the client trains) and update-side (change what it shares)."""

from gradinv.defenses.base import Defense, NoDefense

__all__ = ["Defense", "NoDefense"]
