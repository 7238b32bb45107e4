"""The one error type a user can cause; the entry point prints its message as one sentence."""


class ConfigError(ValueError):
    """A configuration value that cannot work, named with what is allowed instead."""
