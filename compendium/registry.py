"""Small named registries, in the style of open_clip and timm.

One registry per kind of thing (encoders, cohorts, notebooks...).  Names are lower-case;
adding an entry is one decorated function or class in one place.

>>> from compendium.registry import Registry
>>> shapes = Registry("shape")
>>> @shapes.register("square")
... def make_square(side=1):
...     return ("square", side)
>>> shapes.create("square", side=2)
('square', 2)
>>> shapes.names()
['square']
"""

from __future__ import annotations

from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A mapping from lower-case names to factories (functions, classes or entries)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` and returns it unchanged."""
        key = _normalise(name)

        def decorator(obj: T) -> T:
            if key in self._entries and not replace and self._entries[key] is not obj:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = obj
            return obj

        return decorator

    def add(self, name: str, obj: T, *, replace: bool = False) -> T:
        """Register ``obj`` under ``name`` (non-decorator form)."""
        return self.register(name, replace=replace)(obj)

    def get(self, name: str) -> T:
        """Return the entry registered under ``name`` or raise a :class:`ConfigError`."""
        key = _normalise(name)
        try:
            return self._entries[key]
        except KeyError:
            allowed = ", ".join(self.names()) or "none registered"
            raise ConfigError(f"unknown {self.kind} {name!r} (allowed: {allowed})") from None

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Call the factory registered under ``name`` with keyword arguments."""
        factory = self.get(name)
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r} is not callable")
        return factory(**kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(k, self._entries[k]) for k in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalise(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)


def _normalise(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"registry names must be non-empty strings, got {name!r}")
    return name.strip().lower()
