"""Errors a user can fix. The CLI prints them as one line and exits 2, never with a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user: a name, a value or a path that we can explain."""

    exit_code = 2


class ConfigError(UserError):
    """A configuration value is invalid."""


def unknown_choice(kind: str, value: object, valid: Iterable[str]) -> ConfigError:
    """The one error shape for every 'no such name': what was asked and what exists."""
    names = ", ".join(sorted(valid)) or "(none registered)"
    return ConfigError(f"unknown {kind} {value!r}; valid {kind}s: {names}")


def int_setting(value: object, name: str, minimum: int) -> int:
    """``value`` as an int of at least ``minimum``, from an int or its text (a command line gives
    text); anything else is the one error shape "NAME must be an integer >= MIN, got VALUE".
    Booleans are refused: ``True`` is an int to Python but never a seed count to a user."""
    problem = ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if isinstance(value, bool):
        raise problem
    try:
        out = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise problem from None
    if out < minimum:
        raise problem
    return out


class DataUnavailableError(UserError):
    """Data that must be downloaded by hand (no network) or a corrupt / partial dataset file."""
