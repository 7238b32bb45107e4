"""Attacks on shared updates: optimization-based (IG and kin) and closed-form."""

from gradinv.attacks.base import Attack, AttackRuntime, Reconstruction, ServerView

__all__ = ["Attack", "AttackRuntime", "Reconstruction", "ServerView"]
