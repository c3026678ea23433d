"""Synthetic radiology reports (findings + impression) and a simple rule-based labeller.

Reports are written from the *recorded* labels (after the under-diagnosis knob), so that
labels extracted from the text are the labels a hospital would have.  Phrasing varies:
synonyms, explicit negations ("no pleural effusion"), hedges ("cannot exclude ..."), and
a few constructions that trip simple rule-based labellers ("no change in the known
effusion" is a *positive* mention).  :func:`extract_labels` is such a simple labeller
(keywords + negation/uncertainty cues, in the spirit of NegEx/CheXpert): it recovers the
labels well but not perfectly, which is what Paper C's comparison needs.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ._rng import stream
from .cxr import FINDINGS

# positive phrasings (definite); the ones marked '*' are unknown to the simple labeller
_POS = {
    "Atelectasis": ["bibasilar atelectasis", "plate-like atelectasis at the {side} base",
                    "{side} basal subsegmental atelectasis", "*linear scarring versus collapse at the {side} base"],
    "Cardiomegaly": ["cardiomegaly", "the heart is enlarged", "enlarged cardiac silhouette",
                     "*the cardiothoracic ratio is increased"],
    "Consolidation": ["{side} lower lobe consolidation", "focal consolidation in the {side} lung",
                      "dense airspace consolidation on the {side}"],
    "Edema": ["pulmonary edema", "interstitial edema with Kerley B lines",
              "*perihilar haziness and vascular congestion"],
    "Effusion": ["{side} pleural effusion", "small {side} effusion",
                 "*blunting of the {side} costophrenic angle"],
    "Pneumothorax": ["{side} apical pneumothorax", "a small {side} pneumothorax",
                     "*a visible {side} pleural line with absent lung markings"],
    "Opacity": ["patchy opacities", "ill-defined airspace opacity in the {side} lung",
                "multifocal opacities"],
    "Pneumonia": ["findings consistent with pneumonia", "{side} lower lobe pneumonia",
                  "*infectious process in the {side} lower lobe"],
    "Nodule": ["a {side} upper lobe nodule", "a 1 cm nodular opacity in the {side} lung",
               "*a small rounded density in the {side} mid zone"],
    "Mass": ["a {side} lung mass", "a large mass in the {side} lung",
             "*a 5 cm rounded lesion in the {side} lung"],
}
_NEG = {
    "Atelectasis": ["no atelectasis"], "Cardiomegaly": ["heart size is normal", "no cardiomegaly"],
    "Consolidation": ["no focal consolidation"], "Edema": ["no pulmonary edema"],
    "Effusion": ["no pleural effusion", "no effusion"], "Pneumothorax": ["no pneumothorax"],
    "Opacity": ["lungs are clear", "no focal opacity"], "Pneumonia": ["no evidence of pneumonia"],
    "Nodule": ["no pulmonary nodules"], "Mass": ["no mass"],
}
_HEDGE = ["possible {x}", "{x} cannot be excluded", "may represent {x}", "questionable {x}"]
#: Phrasings of a *present*, persisting finding that read as a negation (the
#: ``report_style`` knob): a NegEx-style rule labeller takes the finding as absent ("no
#: change in" is one of NegEx's pseudo-negations and is read right; these are not).
_STYLE = ["no resolution of the {x}", "without resolution of the {x}",
          "no improvement in the {x}", "no decrease in the {x}", "no clearing of the {x}"]
_NORMAL = ["The lungs are clear.", "No acute cardiopulmonary process.",
           "The cardiomediastinal silhouette is within normal limits."]

# the labeller's vocabulary
_KEYS = {
    "Atelectasis": ["atelectasis"], "Cardiomegaly": ["cardiomegaly", "heart is enlarged",
                                                     "enlarged cardiac", "heart size is normal"],
    "Consolidation": ["consolidation"], "Edema": ["edema"],
    "Effusion": ["effusion"], "Pneumothorax": ["pneumothorax"],
    "Opacity": ["opacit", "lungs are clear"], "Pneumonia": ["pneumonia"],
    "Nodule": ["nodul"], "Mass": ["mass"],
}
_NEG_CUES = re.compile(r"\b(no|without|negative for|free of|resolved|normal|clear)\b")
_UNC_CUES = re.compile(r"\b(possible|cannot be excluded|may represent|questionable|versus)\b")


def _phrase(rng: np.random.Generator, options: list[str]) -> str:
    text = options[rng.integers(len(options))].lstrip("*")
    return text.replace("{side}", ["right", "left"][rng.integers(2)])


def write_report(observed: dict[str, float], key: str, seed: int, style: float = 0.0) -> str:
    """One report for a sample with the given recorded labels (1 = reported positive).

    ``style``: probability that each reported finding is phrased like a negation
    (:data:`_STYLE`; the ``report_style`` knob), drawn from its own stream so that a zero
    ``style`` leaves every report as it was."""
    rng = stream(seed, key, "report")
    srng = stream(seed, key, "style") if style > 0 else None
    pos = [f for f in FINDINGS if observed.get(f, 0.0) == 1.0]
    sentences, impression = [], []
    for f in pos:
        phrase = _phrase(rng, _POS[f])
        u = rng.uniform()
        if u < 0.15:
            phrase = _HEDGE[rng.integers(len(_HEDGE))].replace("{x}", phrase)
        elif u < 0.22:
            phrase = f"no change in the known {phrase}"
        if srng is not None and srng.uniform() < style:
            phrase = _STYLE[srng.integers(len(_STYLE))].replace("{x}", _phrase(srng, _POS[f]))
        sentences.append(phrase[0].upper() + phrase[1:] + ".")
        impression.append(phrase)
    negated = [f for f in FINDINGS if f not in pos and rng.uniform() < 0.35]
    for f in negated:
        t = _NEG[f][rng.integers(len(_NEG[f]))]
        sentences.append(t[0].upper() + t[1:] + ".")
    if not pos:
        sentences.append(_NORMAL[rng.integers(len(_NORMAL))])
    order = rng.permutation(len(sentences))
    findings = " ".join(sentences[i] for i in order)
    imp = ("; ".join(impression[:3]) if impression else "no acute cardiopulmonary abnormality")
    return f"FINDINGS: {findings}\nIMPRESSION: {imp[0].upper() + imp[1:]}."


def write_reports(table: pd.DataFrame, labels: tuple[str, ...], seed: int,
                  style: np.ndarray | None = None) -> list[str]:
    """Reports for every row of ``table`` from its label columns (aliases understood);
    ``style``: per row, the ``report_style`` knob (see :func:`write_report`)."""
    from .cxr import finding_of

    cols = {finding_of(lab): lab for lab in labels if finding_of(lab)}
    vals = {f: np.nan_to_num(pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float))
            for f, c in cols.items()}
    st = np.zeros(len(table)) if style is None else np.asarray(style, dtype=float)
    return [write_report({f: v[i] for f, v in vals.items()}, key, seed, float(st[i]))
            for i, key in enumerate(table["synthetic_key"].astype(str))]


def extract_labels(reports: list[str] | pd.Series, *, uncertain: float = 1.0) -> pd.DataFrame:
    """A simple rule-based labeller: keyword + negation/uncertainty cue in the same sentence.

    Parameters
    ----------
    reports : texts
    uncertain : value given to hedged mentions (1.0 = the 'U-ones' policy)

    Returns
    -------
    DataFrame with one column per finding and "No Finding" (1 / 0).
    """
    rows = []
    for text in reports:
        sentences = re.split(r"[.;\n]", str(text).lower())
        rec = {f: 0.0 for f in FINDINGS}
        for sent in sentences:
            for f, keys in _KEYS.items():
                hit = [k for k in keys if k in sent]
                if not hit:
                    continue
                if f == "Cardiomegaly" and "heart size is normal" in sent:
                    continue
                if f == "Opacity" and "lungs are clear" in sent:
                    continue
                pre = sent[:sent.find(hit[0])]
                if _NEG_CUES.search(pre):
                    continue
                rec[f] = max(rec[f], uncertain if _UNC_CUES.search(sent) else 1.0)
        rec["No Finding"] = float(not any(rec[f] for f in FINDINGS))
        rows.append(rec)
    return pd.DataFrame(rows, columns=[*FINDINGS, "No Finding"])
