"""Per-sample random streams: the same key and world seed always give the same numbers,
whatever else is generated alongside (the root of per-sample determinism)."""

from __future__ import annotations

import hashlib

import numpy as np

#: Independent streams drawn from one key (adding a stream never shifts another).
STREAMS = {"anatomy": 1, "image": 2, "finding": 3, "label": 4, "report": 5, "ehr": 6,
           "volume": 7, "outcome": 8, "demographics": 9, "record": 10, "style": 11,
           "emboli": 12, "mislabel": 20, "classifier": 24}


def key_int(key: str) -> int:
    """A stable 64-bit integer from a string (blake2b; not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.blake2b(str(key).encode("utf-8"), digest_size=8).digest(),
                          "little")


def stream(seed: int, key: str, name: str) -> np.random.Generator:
    """The generator of stream ``name`` for ``key`` in the world of ``seed``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, STREAMS[name], key_int(key)])


def world_seed(seed) -> int:
    """The world seed as an int: an ``int`` as is, a ``numpy.random.Generator`` draws one."""
    from ..errors import ConfigError

    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**31 - 1))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed)
    raise ConfigError(f"seed must be an int or a numpy Generator, got {seed!r}")
