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

#: Seeds are non-negative integers below 2**32 (numpy's SeedSequence accepts more, but a
#: negative seed is an error there and a typo here).
SEED_MAX = 2**32 - 1


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed range of a number (or of every number in a list or mapping), and the
    least number of items of a list or mapping.

    >>> Range(0, 1).describe()
    '[0, 1]'
    >>> Range(0, 1, lo_open=True).check(0.0, "p")
    Traceback (most recent call last):
    ...
    compendium.errors.ConfigError: p must lie in (0, 1] (got 0.0)
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    min_items: int | None = None

    def describe(self) -> str:
        lo, hi = _fmt(self.lo), _fmt(self.hi)
        if self.lo is not None and self.hi is not None:
            return f"{'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {lo}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {hi}"
        return "any value"

    def contains(self, v: float) -> bool:
        if v != v:  # nan
            return False
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            return False
        if self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)):
            return False
        return True

    def check(self, value: Any, where: str) -> None:
        """ConfigError naming ``where`` and the range when ``value`` is outside it."""
        if isinstance(value, Mapping):
            items = list(value.values())
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = None
        if items is not None:
            if self.min_items is not None and len(items) < self.min_items:
                raise ConfigError(f"{where} needs at least {self.min_items} item(s) (got "
                                  f"{value!r})")
            for i, v in enumerate(items):
                self.check(v, f"{where}[{i}]")
            return
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and not self.contains(value):
            raise ConfigError(f"{where} must lie in {self.describe()} (got {value!r})")


def _fmt(v: float | None) -> str:
    if v is None:
        return ""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e16 else f"{v:g}"


def ranged(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
           **limits: Any) -> Any:
    """A dataclass field with a :class:`Range`, checked by :meth:`Spec.from_dict`.

    >>> @dataclasses.dataclass(frozen=True)
    ... class Boot(Spec):
    ...     n_bootstrap: int = ranged(1000, lo=0, hi=100_000)
    >>> Boot.from_dict({"n_bootstrap": -1})
    Traceback (most recent call last):
    ...
    compendium.errors.ConfigError: n_bootstrap must lie in [0, 100000] (got -1)
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"range": Range(**limits)})


def field_range(cls: type, name: str) -> Range | None:
    """The :class:`Range` of field ``name`` of a spec class: from its metadata, else from
    the class's ``RANGES`` mapping (a way to give ranges without redefining fields)."""
    for f in dataclasses.fields(cls):
        if f.name == name and "range" in f.metadata:
            return f.metadata["range"]
    return getattr(cls, "RANGES", {}).get(name)


def cli_number(kind: type = int, **limits: Any):
    """An argparse ``type=`` that parses a number and checks its :class:`Range`; the
    parser then prints one line naming the option and the range."""
    import argparse

    rng = Range(**limits)

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'} in {rng.describe()}, "
                f"got {text!r}") from None
        if not rng.contains(value):
            raise argparse.ArgumentTypeError(f"must lie in {rng.describe()} (got {text})")
        return value

    parse.__name__ = kind.__name__
    return parse

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
        spec = cls(**values)
        for name in fields:
            rng = field_range(cls, name)
            if rng is not None:
                rng.check(getattr(spec, name), f"{prefix}{name}")
        return spec

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
        problem = str(getattr(exc, "problem", "") or "")
        tag = re.search(r"tag '([^']+)'", problem)
        if isinstance(exc, yaml.constructor.ConstructorError) and tag:
            raise ConfigError(f"{path}{line}: the YAML tag {tag.group(1)!r} is refused "
                              "(parameter files hold plain values: numbers, strings, lists, "
                              "mappings; no Python objects)") from None
        raise ConfigError(f"{path}: invalid YAML{line}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
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
