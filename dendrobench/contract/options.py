"""Task options: the per-task protocol knobs (split kind, model depth / width / dropout, ...).

Why a separate mechanism: a published claim is a protocol (its split, its model, its data variant),
and those choices change results, so they must be settable from the command line, validated before
any training and part of the record's identity -- without the core knowing any task. A task declares
its options as a plain dataclass (``Task.Options``); the core only reads the dataclass's fields and
type hints:

    @dataclass(frozen=True)
    class Options:
        split: Literal["scaffold", "random_stratified"] = "scaffold"
        layers: int | None = None          # None: the budget's own model
        dropout: float | None = None

        def validate(self) -> None:        # optional: cross-field checks, raise ConfigError
            ...

On the command line: ``dendrobench task=bbbp task_options.split=random_stratified task_options.layers=4``
(the run config's ``task_options`` mapping). :func:`parse_options` turns that mapping into an instance:

* an unknown key -> one line naming the valid keys (exit 2);
* each value is coerced to the field's type hint: ``int``, ``float``, ``bool``, ``str``, ``None``
  (``null``), ``Literal[...]`` (the valid values are named on error), ``tuple[T, ...]`` / ``list[T]``
  (from a list or ``"[0.8,0.1,0.1]"``) and unions of these (``int | None``, ``int | Literal["seed"]``);
* then the instance's own ``validate()``.

Identity: :func:`identity_options` is what enters the record hash -- only the options whose value
differs from the declared default, so a run that sets nothing (or sets a default explicitly) keeps the
hash it always had and resumes from the same record. A task that changes a default must bump its
``version``. The full resolved options are written into the record's ``config.task_options_resolved``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union

from dendrobench.errors import ConfigError

NULLS = (None, "null", "none", "None", "~", "")


def declared(task_or_cls: Any) -> type | None:
    """The task's ``Options`` dataclass, or None for a task without options."""
    cls = getattr(task_or_cls, "Options", None)
    return cls if cls is not None and dataclasses.is_dataclass(cls) else None


def fields_doc(options_cls: type) -> dict[str, str]:
    """``{name: "type = default"}`` for ``dendrobench list`` and error messages."""
    hints = typing.get_type_hints(options_cls)
    return {f.name: f"{_type_name(hints[f.name])} = {_default(f)!r}" for f in dataclasses.fields(options_cls)}


def parse_options(task_or_cls: Any, given: dict[str, Any] | None) -> Any:
    """The validated ``Options`` instance for ``given`` (a mapping from the run config).

    A task without ``Options`` accepts only an empty mapping. Raises :class:`ConfigError` (one line,
    exit 2) naming the bad key or value and what is valid.
    """
    given = dict(given or {})
    cls = declared(task_or_cls)
    name = getattr(task_or_cls, "name", getattr(task_or_cls, "__name__", "this task"))
    if cls is None:
        if given:
            raise ConfigError(f"task {name!r} has no task options (got {sorted(given)})")
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = sorted(set(given) - set(fields))
    if bad:
        raise ConfigError(f"unknown task option(s) {bad} for task {name!r}; valid options: "
                          + ", ".join(f"{k} ({v})" for k, v in fields_doc(cls).items()))
    hints = typing.get_type_hints(cls)
    values = {key: coerce(value, hints[key], f"task_options.{key}") for key, value in given.items()}
    try:
        opts = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"task options for {name!r}: {exc}") from None
    check = getattr(opts, "validate", None)
    if callable(check):
        try:
            check()
        except ConfigError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"task options for {name!r}: {exc}") from None
    return opts


def as_dict(opts: Any) -> dict[str, Any]:
    """All options (JSON-friendly: tuples become lists)."""
    if opts is None:
        return {}
    return {k: _jsonable(v) for k, v in dataclasses.asdict(opts).items()}


def identity_options(opts: Any) -> dict[str, Any]:
    """The options that differ from their declared defaults: what enters the record hash."""
    if opts is None:
        return {}
    out = {}
    for f in dataclasses.fields(opts):
        value = getattr(opts, f.name)
        if value != _default(f):
            out[f.name] = _jsonable(value)
    return out


# -- coercion ---------------------------------------------------------------------------------
def coerce(value: Any, hint: Any, label: str) -> Any:
    """``value`` (from YAML / the command line) as a value of type ``hint``; ConfigError otherwise."""
    try:
        return _coerce(value, hint)
    except (TypeError, ValueError):
        raise ConfigError(f"{label} must be {_type_name(hint)}, got {value!r}") from None


def _coerce(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is type(None):
        if value in NULLS:
            return None
        raise ValueError
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(choice, str) and str(value) == choice):
                return choice
            if not isinstance(choice, str) and not isinstance(value, bool):
                try:
                    if type(choice)(value) == choice:
                        return choice
                except (TypeError, ValueError):
                    pass
        raise ValueError
    if origin in (Union, types.UnionType):
        # None first so "null" is never read as the string "null"; then the members in order
        members = sorted(args, key=lambda a: a is not type(None))
        for member in members:
            try:
                return _coerce(value, member)
            except (TypeError, ValueError):
                continue
        raise ValueError
    if origin in (tuple, list):
        if isinstance(value, str):
            text = value.strip()
            if not (text.startswith("[") and text.endswith("]")):
                raise ValueError
            value = [v.strip() for v in text[1:-1].split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError
        item = args[0] if args else Any
        items = [v if item is Any else _coerce(v, item) for v in value]
        if origin is tuple and len(args) >= 2 and args[1] is not Ellipsis and len(items) != len(args):
            raise ValueError
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError
    if hint is int:
        if isinstance(value, bool) or value in NULLS:
            raise ValueError
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError
            return int(value)
        return int(str(value).strip())
    if hint is float:
        if isinstance(value, bool) or value in NULLS:
            raise ValueError
        out = float(value)
        if out != out:  # NaN is never a setting
            raise ValueError
        return out
    if hint is str:
        if value is None or isinstance(value, (list, tuple, dict)):
            raise ValueError
        return str(value)
    if hint is Any:
        return value
    raise TypeError(f"unsupported option type {hint!r}")


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin in (tuple, list):
        return f"a list of {_type_name(args[0]) if args else 'values'}"
    return getattr(hint, "__name__", str(hint))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
