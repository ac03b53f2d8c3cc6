"""User-facing errors: the CLI prints these as one line, without a traceback.

Raise `PairzooError` (or a subclass) for anything a user can fix: a bad name, a bad value, a
missing or corrupt file. The message names the problem and the fix.
"""


class PairzooError(Exception):
    """An error caused by the user's input; its message says how to fix it."""


class DataError(PairzooError):
    """A digit source is missing, unreachable or corrupt."""


class ConfigError(PairzooError, ValueError):
    """A preset or an override is invalid."""


class DivergedError(PairzooError):
    """A run's loss or weights became non-finite; nothing of it is kept (lower the rate)."""


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Configs call this in `__post_init__`: a bad choice fails when the preset is read."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def warn(message: str) -> None:
    """One line on stderr for something the user should know but need not fix now."""
    import sys

    print(f"pairzoo: warning: {message}", file=sys.stderr)
