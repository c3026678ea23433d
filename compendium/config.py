"""Frozen, typed parameter specs built from YAML at the boundary.

A spec is a frozen dataclass deriving from :class:`Spec`.  ``Spec.from_dict`` validates a
plain mapping (from YAML, ``--set`` overrides or a notebook's namespace) against the
dataclass's type hints and raises :class:`~compendium.errors.ConfigError` with a one-line
message naming the offending key and what is allowed.

Supported annotations: ``int``, ``float``, ``bool``, ``str``, ``typing.Literal[...]``,
``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]`` and nested ``Spec`` classes.

>>> from dataclasses import dataclass
>>> from typing import Literal
>>> @dataclass(frozen=True)
... class Probe(Spec):
...     method: Literal["linear", "mlp"] = "linear"
...     epochs: int = 10
>>> Probe.from_dict({"epochs": 3})
Probe(method='linear', epochs=3)
>>> Probe.from_dict({"epoch": 3})
Traceback (most recent call last):
...
compendium.errors.ConfigError: unknown key 'epoch' (allowed: epochs, method)
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, Union

import yaml

from .errors import ConfigError, DataNotFoundError

S = TypeVar("S", bound="Spec")

_MISSING = dataclasses.MISSING
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


@dataclasses.dataclass(frozen=True)
class Spec:
    """Base class of frozen parameter specs with validation from plain mappings."""

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[S], data: Mapping[str, Any] | None, *, where: str = "") -> S:
        """Validate ``data`` against the spec and build it.

        Parameters
        ----------
        data : mapping
            Keys are field names.  Unknown keys, wrong types and missing required values
            raise :class:`ConfigError`.
        where : str
            Prefix for error messages, e.g. ``"params/paper_a/demo.yaml"``.
        """
        data = dict(data or {})
        prefix = f"{where}: " if where else ""
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(
                f"{prefix}unknown key {unknown[0]!r} (allowed: {', '.join(sorted(fields))})"
            )
        values = {}
        for name, field in fields.items():
            if name in data:
                values[name] = _coerce(data[name], hints[name], f"{prefix}{name}")
            elif field.default is _MISSING and field.default_factory is _MISSING:
                raise ConfigError(
                    f"{prefix}missing required key {name!r} ({_describe(hints[name])})"
                )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-serialisable dict of the spec (nested specs become dicts)."""
        return _plain(dataclasses.asdict(self))

    def replace(self: S, **changes: Any) -> S:
        """A validated copy with some fields changed."""
        merged = {**self.to_dict(), **changes}
        return type(self).from_dict(merged)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with clear errors for a missing file or a non-mapping."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"parameter file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value, got {type(data).__name__}")
    return data


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` override; the value is read as a YAML scalar or list.

    >>> parse_assignment("epochs=3")
    ('epochs', 3)
    >>> parse_assignment("models=[a, b]")
    ('models', ['a', 'b'])
    """
    if "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


# ----------------------------------------------------------------------------- internals


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple):
        inner = args[0] if args else Any
        return f"a list of {_describe(inner)}"
    if origin is dict:
        return f"a mapping of {_describe(args[1]) if len(args) > 1 else 'values'}"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and issubclass(tp, Spec):
        return f"a mapping with keys {', '.join(tp.field_names())}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = ConfigError(f"{where}: expected {_describe(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise ConfigError(f"{where}: {value!r} is not allowed (allowed: {', '.join(map(repr, args))})")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError:
                continue
        raise bad
    if tp is type(None):
        if value is None:
            return None
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT.match(value.strip()):
            return float(value)  # YAML 1.1 reads "1e-4" as a string
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise bad
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise bad
        vt = args[1] if len(args) > 1 else Any
        return {str(k): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Spec):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise bad
        return tp.from_dict(value, where=where)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
