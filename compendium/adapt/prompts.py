"""Zero-shot prompt families as data (Paper A, section 2.3).

Three families, registered in :data:`PROMPT_FAMILIES` (``list_prompt_families()``):

``clip``
    CLIP-style fixed templates around the class name (``"a photo of {}."``); deterministic,
    every template is used (a prompt ensemble).
``gloria``
    GLoRIA-style: each prompt is composed at random as ``"<severity> <subtype> <location>"``
    from per-class vocabularies; a draw samples ``n_prompts`` distinct compositions per class.
``cxr-clip``
    CXR-CLIP-style: report-like templates (``"There is {}."``) filled with a class synonym;
    a draw samples ``n_prompts`` distinct (template, synonym) pairs per class.

The stochastic families are evaluated over several seeded draws (Paper A: 10).  The
vocabularies below were written for this compendium in the style of the cited methods
(they are not copies of those projects' lists); classes without an entry fall back to
generic vocabularies built from the class name.  ``prompt_draw(family, classes, seed=...)``
returns ``{class: [prompts]}``; the same seed gives the same prompts.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError
from ..registry import Registry

CLIP_TEMPLATES: tuple[str, ...] = (
    "a photo of {}.",
    "a photo of a {}.",
    "an x-ray of {}.",
    "a chest x-ray of {}.",
    "a radiograph showing {}.",
    "an image of {}.",
)

#: Canonical class -> alternative names used in cohorts (matched case-insensitively).
ALIASES: dict[str, tuple[str, ...]] = {
    "Effusion": ("pleural effusion", "effusion"),
    "Cardiomegaly": ("cardiomegaly", "enlarged heart"),
    "Atelectasis": ("atelectasis",),
    "Pneumothorax": ("pneumothorax",),
    "Edema": ("edema", "pulmonary edema", "oedema"),
    "Consolidation": ("consolidation",),
    "Pneumonia": ("pneumonia",),
    "No Finding": ("no finding", "normal"),
}

GLORIA_VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "Atelectasis": {
        "severity": ("", "mild", "minimal", "patchy"),
        "subtype": ("subsegmental atelectasis", "linear atelectasis", "plate-like atelectasis",
                    "bibasilar atelectasis", "discoid atelectasis", "compressive atelectasis"),
        "location": ("at the lung bases", "at the left lung base", "at the right lung base",
                     "in the left lower lobe", "in the right lower lobe",
                     "in the right middle lobe", "in the lingula"),
    },
    "Cardiomegaly": {
        "severity": ("", "mild", "moderate", "marked"),
        "subtype": ("cardiomegaly", "enlargement of the cardiac silhouette",
                    "increased cardiothoracic ratio", "globular heart"),
        "location": ("", "of the cardiac silhouette", "with left ventricular prominence"),
    },
    "Consolidation": {
        "severity": ("", "patchy", "focal", "dense"),
        "subtype": ("consolidation", "airspace consolidation", "airspace opacity",
                    "lobar consolidation"),
        "location": ("in the left lower lobe", "in the right lower lobe",
                     "in the right upper lobe", "in the left upper lobe",
                     "in the right middle lobe", "at the lung bases"),
    },
    "Edema": {
        "severity": ("", "mild", "moderate", "severe"),
        "subtype": ("pulmonary edema", "interstitial edema", "alveolar edema",
                    "vascular congestion", "perihilar haziness"),
        "location": ("", "bilaterally", "in the perihilar regions", "in both lungs"),
    },
    "Effusion": {
        "severity": ("", "small", "moderate", "large", "trace"),
        "subtype": ("pleural effusion", "layering effusion", "loculated effusion",
                    "subpulmonic effusion"),
        "location": ("on the left", "on the right", "bilaterally",
                     "with blunting of the costophrenic angle"),
    },
    "Pneumothorax": {
        "severity": ("", "small", "moderate", "large", "tension"),
        "subtype": ("pneumothorax", "apical pneumothorax", "basilar pneumothorax",
                    "hydropneumothorax"),
        "location": ("on the left", "on the right", "at the apex", "at the lung base"),
    },
}

GENERIC_GLORIA = {
    "severity": ("", "mild", "moderate", "severe"),
    "location": ("", "in the left lung", "in the right lung", "bilaterally",
                 "at the lung bases"),
}

CXR_CLIP_TEMPLATES: tuple[str, ...] = (
    "{}.",
    "There is {}.",
    "Findings consistent with {}.",
    "Findings suggest {}.",
    "The chest radiograph shows {}.",
    "Evidence of {}.",
    "{} is present.",
    "Appearance compatible with {}.",
)

CXR_CLIP_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Atelectasis": ("atelectasis", "volume loss", "collapse of lung tissue"),
    "Cardiomegaly": ("cardiomegaly", "an enlarged heart", "enlarged cardiac silhouette"),
    "Consolidation": ("consolidation", "airspace consolidation", "lobar opacity"),
    "Edema": ("pulmonary edema", "edema", "interstitial edema"),
    "Effusion": ("pleural effusion", "a pleural effusion", "fluid in the pleural space"),
    "Pneumothorax": ("pneumothorax", "a pneumothorax", "air in the pleural space"),
}


def canonical(name: str) -> str | None:
    """The vocabulary key of a class name (``"Pleural Effusion"`` -> ``"Effusion"``)."""
    low = name.strip().lower()
    for key, names in ALIASES.items():
        if low == key.lower() or low in names:
            return key
    return None


# ----------------------------------------------------------------------- candidates

def clip_candidates(name: str) -> list[str]:
    """Every CLIP-style prompt of one class."""
    return [t.format(name.lower()) for t in CLIP_TEMPLATES]


def gloria_candidates(name: str) -> list[str]:
    """Every severity x subtype x location composition of one class."""
    key = canonical(name)
    vocab = GLORIA_VOCAB.get(key) if key else None
    if vocab is None:
        vocab = {**GENERIC_GLORIA, "subtype": (name.lower(),)}
    out = []
    for sev, sub, loc in itertools.product(vocab["severity"], vocab["subtype"],
                                           vocab["location"]):
        out.append(" ".join(w for w in (sev, sub, loc) if w))
    return list(dict.fromkeys(out))


def cxr_clip_candidates(name: str) -> list[str]:
    """Every (template, synonym) prompt of one class."""
    key = canonical(name)
    syns = CXR_CLIP_SYNONYMS.get(key, (name.lower(),)) if key else (name.lower(),)
    out = []
    for t, s in itertools.product(CXR_CLIP_TEMPLATES, syns):
        text = t.format(s)
        out.append(text[0].upper() + text[1:])
    return list(dict.fromkeys(out))


@dataclasses.dataclass(frozen=True)
class PromptFamily:
    """A family of prompts: all candidates per class, and whether draws are random."""

    name: str
    candidates: Callable[[str], list[str]]
    stochastic: bool
    n_prompts: int
    description: str


PROMPT_FAMILIES: Registry[PromptFamily] = Registry("prompt family")
PROMPT_FAMILIES.add("clip", PromptFamily("clip", clip_candidates, False, len(CLIP_TEMPLATES),
                                         "CLIP-style templates around the class name"))
PROMPT_FAMILIES.add("gloria", PromptFamily("gloria", gloria_candidates, True, 5,
                                           "GLoRIA-style severity/subtype/location compositions"))
PROMPT_FAMILIES.add("cxr-clip", PromptFamily("cxr-clip", cxr_clip_candidates, True, 5,
                                             "CXR-CLIP-style report templates with synonyms"))


def list_prompt_families() -> list[str]:
    return PROMPT_FAMILIES.names()


def prompt_draw(family: str, classes: Sequence[str], *, seed: int | np.random.Generator = 0,
                n_prompts: int | None = None) -> dict[str, list[str]]:
    """One draw of prompts per class.

    Deterministic families return all their prompts; stochastic ones sample ``n_prompts``
    (family default) distinct candidates per class without replacement, with a generator
    built from ``seed``.

    >>> prompt_draw("clip", ["Edema"])["Edema"][:2]
    ['a photo of edema.', 'a photo of a edema.']
    """
    fam = PROMPT_FAMILIES.get(family)
    if not classes:
        raise ConfigError("prompt_draw needs at least one class")
    rng = np.random.default_rng(seed)
    k = n_prompts if n_prompts is not None else fam.n_prompts
    if k < 1:
        raise ConfigError(f"n_prompts must be >= 1, got {k}")
    out: dict[str, list[str]] = {}
    for c in classes:
        cands = fam.candidates(str(c))
        if not fam.stochastic or k >= len(cands):
            out[c] = list(cands) if not fam.stochastic else [cands[i] for i in
                                                              rng.permutation(len(cands))]
        else:
            out[c] = [cands[i] for i in rng.choice(len(cands), size=k, replace=False)]
    return out
