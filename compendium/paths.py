"""Where derived, re-creatable files go (never data, never results).

``cache_dir("embeddings")`` is ``$COMPENDIUM_CACHE/embeddings`` if the variable is set,
else ``$XDG_CACHE_HOME/compendium/embeddings`` (default ``~/.cache/compendium/...``).
Tests point ``COMPENDIUM_CACHE`` at ``tmp_path``.  Nothing is created at import.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str, create: bool = True) -> Path:
    base = os.environ.get("COMPENDIUM_CACHE")
    if base:
        root = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(xdg) / "compendium"
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
