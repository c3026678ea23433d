"""Where and how torch runs: the device and the number of CPU threads.

Every layer that runs torch (training, toy pretraining, embedding extraction, the papers'
pipelines) takes these two settings through this module, so that ``device`` and ``threads``
mean the same thing in every notebook.

>>> resolve_device("cpu")
device(type='cpu')
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from .errors import ConfigError


def resolve_device(name: str = "auto"):
    """``"auto"`` -> CUDA when available, else CPU; any other torch device name as given.

    Raises :class:`~compendium.errors.ConfigError` when CUDA is asked for but absent.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device {name!r} is not a torch device (e.g. auto, cpu, cuda, "
                          "cuda:1)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return dev


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (``None`` or 0: leave torch's setting);
    the previous number is restored on exit.

    One thread is fastest for small models and on a shared machine, where more threads than
    free cores slow training many-fold, and it makes float reductions independent of the
    machine's core count.
    """
    if not n:
        yield
        return
    if n < 0:
        raise ConfigError(f"threads must be >= 0, got {n}")
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(prev)


@contextlib.contextmanager
def compute_threads(n: int | None) -> Iterator[None]:
    """:func:`torch_threads` and the BLAS/OpenMP pools of numpy and scikit-learn
    (threadpoolctl) limited to ``n`` threads for the block (``None`` or 0: unchanged).

    Small scikit-learn fits (a logistic regression on a few hundred rows) run many times
    faster on one BLAS thread than on a pool larger than the free cores.
    """
    if not n:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n)), torch_threads(n):
        yield


def available_cpus() -> int:
    """The cores this process may use (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
