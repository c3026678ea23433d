"""Finding and loading weights, offline first.

Weights are looked up, in order, at ``weights_path`` (a file or folder given in the params)
and in the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE`` respected, nothing
downloaded: ``local_files_only=True``).  Checkpoints are read from safetensors or with
``torch.load(..., weights_only=True)``; nothing here ever passes ``trust_remote_code``
unless the caller asked for it.  When weights are missing, :class:`MissingWeightsError`
names the model, where it looked and the command that fetches them on a machine with
internet: ``compendium weights fetch NAME``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataNotFoundError, InputError
from .base import ModelEntry

log = logging.getLogger(__name__)

#: File names tried, in order, inside a weights folder.
CHECKPOINT_NAMES = ("model.safetensors", "open_clip_model.safetensors",
                    "open_clip_pytorch_model.bin", "pytorch_model.bin", "model.pt", "model.pth",
                    "checkpoint.pth", "model.ckpt")


class MissingWeightsError(DataNotFoundError):
    """The weights of a model are not on this machine."""


def hf_cache_location() -> str:
    """Where the Hugging Face cache is, read from the environment at call time
    (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return os.path.join(home, "hub")


def fetch_command(entry: ModelEntry) -> str:
    """The command that fetches this model's weights on a machine with internet."""
    return f"compendium weights fetch {entry.name}"


def missing_weights(entry: ModelEntry, looked: list[str], why: str = "") -> MissingWeightsError:
    """Build the one-line error for a model whose weights are absent."""
    where = "; ".join(looked) if looked else "nowhere (no hub id and no weights_path)"
    if entry.hub_id:
        how = (f"on a machine with internet run `{fetch_command(entry)}` (it fills the "
               f"Hugging Face cache; copy that cache here and set HF_HOME), or pass "
               f"weights_path=")
        if entry.gated:
            how += f" (the repo is gated: accept its terms at huggingface.co/{entry.hub_id} " \
                   "and `huggingface-cli login` first)"
    else:
        how = f"obtain them as follows: {entry.access}; then pass weights_path="
    extra = f" ({why})" if why else ""
    return MissingWeightsError(f"weights of model {entry.name!r} not found{extra}; looked in: "
                               f"{where}; {how}")


def find_weights(entry: ModelEntry, weights_path: str | os.PathLike | None = None) -> Path:
    """Return the local file or folder holding ``entry``'s weights, or raise.

    Raises
    ------
    MissingWeightsError
        naming the model, the places looked in and the fetch command.
    """
    if weights_path is not None:
        p = Path(weights_path).expanduser()
        if p.exists():
            return p
        raise missing_weights(entry, [f"weights_path={p}"])
    if not entry.hub_id:
        raise missing_weights(entry, [])
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    looked = [f"Hugging Face cache {hf_cache_location()} for {entry.hub_id}"]
    try:
        path = snapshot_download(entry.hub_id, local_files_only=True,
                                 cache_dir=hf_cache_location())
    except (LocalEntryNotFoundError, FileNotFoundError, OSError) as exc:
        raise missing_weights(entry, looked) from exc
    return Path(path)


def checkpoint_file(path: Path, names: tuple[str, ...] = CHECKPOINT_NAMES) -> Path:
    """A checkpoint file: ``path`` itself, or the first known file name inside it."""
    if path.is_file():
        return path
    for name in names:
        if (path / name).is_file():
            return path / name
    raise DataNotFoundError(f"no checkpoint in {path} (looked for {', '.join(names)})")


def load_state_dict(path: str | os.PathLike, *, prefix: str = "") -> dict[str, Any]:
    """Read a state dict from safetensors or a ``torch.save`` file with ``weights_only=True``.

    A Lightning-style ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped;
    keys starting with ``prefix`` keep only the rest (others are dropped when a prefix is
    given).
    """
    p = checkpoint_file(Path(path))
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(p))
    else:
        import pickle

        import torch

        try:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise InputError(f"{p} holds more than tensors and cannot be read with "
                             f"weights_only=True; re-save its state_dict as safetensors "
                             f"({str(exc).splitlines()[0]})") from None
        for key in ("state_dict", "model", "module"):
            if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
                sd = sd[key]
                break
    if not isinstance(sd, dict):
        raise InputError(f"{p} does not hold a state dict")
    if prefix:
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    return sd


def load_into(module: Any, sd: dict[str, Any], *, name: str,
              allow_missing: tuple[str, ...] = (), allow_unexpected: tuple[str, ...] = ()) -> None:
    """``load_state_dict`` that fails loudly unless only the allowed keys differ."""
    res = module.load_state_dict(sd, strict=False)
    missing = [k for k in res.missing_keys if not k.startswith(allow_missing or ("\0",))]
    unexpected = [k for k in res.unexpected_keys if not k.startswith(allow_unexpected or ("\0",))]
    if missing or unexpected:
        raise InputError(f"checkpoint does not fit model {name!r}: {len(missing)} missing key(s) "
                         f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}")


def fingerprint(path: Path) -> str:
    """A cheap identity of a weights file/folder: names, sizes and mtimes, hashed."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(q for q in path.rglob("*") if q.is_file())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def hf_kwargs(trust_remote_code: bool) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained``: offline, and remote code only if asked."""
    kw: dict[str, Any] = {"local_files_only": True}
    if trust_remote_code:
        kw["trust_remote_code"] = True
    return kw


def read_embeddings_file(path: Any, *, entry: ModelEntry) -> tuple[list[str], np.ndarray]:
    """Read a vendor-tool embeddings file: ``.npz`` with ``sample_id`` and ``embeddings``."""
    if path is None:
        raise missing_weights(entry, [], "pass weights_path= the .npz file the vendor's tool wrote")
    p = Path(path)
    if not p.is_file():
        raise missing_weights(entry, [f"weights_path={p}"])
    try:
        with np.load(p, allow_pickle=False) as z:
            ids = [str(s) for s in z["sample_id"]]
            emb = np.asarray(z["embeddings"], dtype=np.float32)
    except KeyError as exc:
        raise InputError(f"{p}: an embeddings file needs arrays 'sample_id' and 'embeddings' "
                         f"(missing {exc})") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{p}: not a readable .npz embeddings file ({exc})") from None
    if emb.ndim not in (2, 3) or emb.shape[0] != len(ids):
        raise InputError(f"{p}: 'embeddings' must be (n, D) or (n, T, D) with n = "
                         f"len(sample_id) = {len(ids)}, got {emb.shape}")
    if len(set(ids)) != len(ids):
        raise InputError(f"{p}: duplicate sample ids")
    return ids, emb


def fetch(entry: ModelEntry, *, dry_run: bool = False) -> list[str]:
    """Download an entry's repos into the Hugging Face cache (needs internet).

    Returns the repo ids (with ``dry_run``, only what would be fetched, touching nothing).
    """
    from .. import errors

    if entry.kind == "toy":
        raise errors.ConfigError(f"{entry.name} is a toy encoder: it is pretrained locally on "
                                 "the synthetic world, nothing to fetch")
    repos = [r for r in (entry.hub_id, *entry.hub_extra) if r]
    if not repos:
        raise errors.ConfigError(f"{entry.name} is not on the Hugging Face hub: {entry.access}")
    if not entry.hub_id:
        log.warning("%s: only its tokenizer is on the hub; the weights: %s", entry.name,
                    entry.access)
    if dry_run:
        return repos
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise DataNotFoundError("HF_HUB_OFFLINE is set: run `compendium weights fetch` on a "
                                "machine with internet (and without HF_HUB_OFFLINE)")
    from huggingface_hub import snapshot_download

    for repo in repos:
        log.info("fetching %s into %s", repo, hf_cache_location())
        try:
            snapshot_download(repo, cache_dir=hf_cache_location())
        except Exception as exc:  # noqa: BLE001 - hub, HTTP and socket errors all mean one thing
            if isinstance(exc, errors.CompendiumError):
                raise
            gated = (f"; the repo is gated: accept its terms at huggingface.co/{repo} and run "
                     "`huggingface-cli login`" if entry.gated else "")
            raise DataNotFoundError(
                f"cannot download {repo} ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]}): run `compendium weights fetch "
                f"{entry.name}` on a machine with internet and copy its Hugging Face cache "
                f"({hf_cache_location()}) here (set HF_HOME), or pass a local weights path"
                f"{gated}") from None
    return repos
