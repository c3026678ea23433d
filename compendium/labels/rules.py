"""A rule-based CheXpert-style labeller on spaCy and negspacy (NegEx).

The three stages of the CheXpert labeller (Irvin et al., 2019): *mention extraction*
(phrase lists per observation), *mention classification* (negated, uncertain or positive)
and *aggregation* over a report (positive > uncertain > negative > not mentioned).  Here:

- mentions: a spaCy ``entity_ruler`` over lower-cased tokens, with one phrase list per
  observation (:data:`MENTIONS`, ours, after the CheXpert labeller's mention lists; a token
  ending in ``*`` matches any word starting so), plus phrases that state an observation's
  absence in positive words (:data:`NORMAL_STATEMENTS`: "heart size is normal", "lungs are
  clear") and other abnormalities that rule out "No Finding" (:data:`OTHER_FINDINGS`,
  after CheXpert's no-finding list);
- classification: negspacy's ``negex`` component twice, with the ``en_clinical`` termset for
  negation and a termset of hedges for uncertainty (:data:`UNCERTAINTY`, ours, after the
  CheXpert labeller's uncertainty patterns, including its "no new X" and "cannot exclude X"
  rules); a hedged mention is uncertain even when a negation cue also covers it;
- aggregation as CheXpert, and "No Finding" derived from the rest
  (:func:`compendium.labels.base.no_finding`) with :data:`OTHER_FINDINGS` counting too.

Importing this module does not import spaCy; the pipeline is built on first use.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataNotFoundError
from .base import NO_FINDING, OBSERVATIONS, Labeller, register_labeller

#: Mention phrases per observation (ours, after the CheXpert labeller's lists).
MENTIONS: dict[str, tuple[str, ...]] = {
    "Atelectasis": ("atelecta*", "collapse", "volume loss"),
    "Cardiomegaly": ("cardiomegaly", "enlarged heart", "heart is enlarged", "cardiac enlargement",
                     "enlarged cardiac silhouette", "cardiac silhouette is enlarged",
                     "heart size is enlarged", "heart size is mildly enlarged"),
    "Consolidation": ("consolidat*",),
    "Edema": ("edema", "vascular congestion", "pulmonary congestion", "interstitial prominence",
              "kerley b lines", "chf", "heart failure"),
    "Enlarged Cardiomediastinum": ("widened mediastinum", "mediastinal widening",
                                   "enlarged cardiomediastinal silhouette",
                                   "cardiomediastinal silhouette is enlarged",
                                   "mediastinum is widened", "hilar enlargement"),
    "Fracture": ("fracture*",),
    "Lung Lesion": ("nodul*", "mass", "masses", "lesion", "lesions", "neoplasm", "tumor",
                    "carcinoma", "cavitary lesion", "rounded density"),
    "Lung Opacity": ("opacit*", "infiltrat*", "airspace disease", "air space disease",
                     "haziness", "hazy", "density", "densities", "scarring", "fibrosis",
                     "reticular markings", "interstitial markings"),
    "Pleural Effusion": ("effusion", "effusions", "pleural fluid", "blunting of the * costophrenic angle",
                         "blunted costophrenic angle*", "costophrenic angle blunting",
                         "blunting of the costophrenic angle*"),
    "Pleural Other": ("pleural thickening", "pleural plaque*", "fibrothorax",
                      "pleural scarring"),
    "Pneumonia": ("pneumonia", "infectious process", "infection"),
    "Pneumothorax": ("pneumothora*",),
    "Support Devices": ("pacemaker", "pacer", "icd", "line", "catheter", "tube", "stent",
                        "sternotomy wires", "sternotomy", "picc", "port-a-cath", "clips",
                        "valve replacement", "hardware", "device", "devices"),
}
#: Phrases that state an observation's absence in positive words (a negative mention).
NORMAL_STATEMENTS: dict[str, tuple[str, ...]] = {
    "Cardiomegaly": ("heart size is normal", "heart size normal", "normal heart size",
                     "heart is normal in size", "heart size is within normal limits",
                     "normal cardiac silhouette", "cardiac silhouette is normal",
                     "heart is not enlarged"),
    "Enlarged Cardiomediastinum": ("cardiomediastinal silhouette is normal",
                                   "cardiomediastinal silhouette is within normal limits",
                                   "normal cardiomediastinal silhouette",
                                   "mediastinal contours are normal",
                                   "normal mediastinal contours"),
    "Lung Opacity": ("lungs are clear", "lungs clear", "clear lungs", "lungs are grossly clear"),
    "Pleural Effusion": ("costophrenic angles are sharp", "sharp costophrenic angles"),
}
#: Other abnormalities whose positive mention rules "No Finding" out (not output as columns;
#: ours, after CheXpert's no-finding list).
OTHER_FINDINGS: tuple[str, ...] = (
    "emphysema", "hyperinflat*", "hyperexpan*", "copd", "granuloma*", "calcifi*", "scoliosis",
    "kyphosis", "degenera*", "spondylosis", "osteophyt*", "osteopenia", "hernia",
    "eventration", "elevation", "elevated", "tortuous", "tortuosity", "atherosclero*",
    "bronchiectasis", "bullae", "bulla", "thickening", "metasta*", "deformity",
    "cephalization", "aspiration", "pneumomediastinum", "pneumoperitoneum", "effacement",
    "prominen*", "ectatic", "ectasia", "sclerotic")
#: Uncertainty cues (ours, after the CheXpert labeller's uncertainty patterns).
UNCERTAINTY: dict[str, list[str]] = {
    "pseudo_negations": [],
    "preceding_negations": [
        "possible", "possibly", "probable", "probably", "likely", "may", "might", "could",
        "cannot exclude", "can not exclude", "cannot rule out", "can not rule out",
        "not excluded", "questionable", "question of", "suspicious for", "suspected",
        "suggestive of", "suggest", "suggests", "concerning for", "concern for",
        "worrisome for", "differential", "versus", "vs", "borderline", "equivocal",
        "no new", "no evidence to rule out", "may represent", "could represent",
        "cannot be excluded", "atypical", "indeterminate", "presumed", "presumably"],
    "following_negations": ["cannot be excluded", "can not be excluded", "is not excluded",
                            "not excluded", "not ruled out", "cannot be ruled out",
                            "is possible", "is questionable", "versus", "vs", "?"],
    "termination": ["but", "however", "though", "although", "which", ";", ","],
}
_PIPELINES: dict[str, Any] = {}


def _token_pattern(phrase: str) -> list[dict]:
    toks = []
    for word in phrase.lower().replace("-", " - ").split():
        if word == "*":
            toks.append({"IS_ALPHA": True})
        elif word.endswith("*"):
            toks.append({"LOWER": {"REGEX": "^" + word[:-1].replace(".", r"\.")}})
        else:
            toks.append({"LOWER": word})
    return toks


def patterns() -> list[dict]:
    """The entity-ruler patterns: label ``<observation>`` for a mention, ``<observation>|normal``
    for a normal statement, ``_other`` for another abnormality."""
    out = []
    for obs, phrases in MENTIONS.items():
        out += [{"label": obs, "pattern": _token_pattern(p)} for p in phrases]
    for obs, phrases in NORMAL_STATEMENTS.items():
        out += [{"label": f"{obs}|normal", "pattern": _token_pattern(p)} for p in phrases]
    out += [{"label": "_other", "pattern": _token_pattern(p)} for p in OTHER_FINDINGS]
    return out


def build_pipeline():
    """The spaCy pipeline: blank English, sentencizer, entity ruler, negex (negation),
    negex (uncertainty, extension ``uncertain``)."""
    try:
        import spacy
        from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)
        from negspacy.termsets import termset
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise DataNotFoundError(f"the chexpert-rules labeller needs spacy and negspacy "
                                f"(pip install spacy negspacy): {exc}") from None
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler", config={"overwrite_ents": True})
    ruler.add_patterns(patterns())
    neg = termset("en_clinical").get_patterns()
    nlp.add_pipe("negex", name="negation", config={"neg_termset": neg})
    nlp.add_pipe("negex", name="uncertainty",
                 config={"neg_termset": UNCERTAINTY, "extension_name": "uncertain"})
    return nlp


def pipeline():
    """The pipeline, built once per process."""
    if "nlp" not in _PIPELINES:
        _PIPELINES["nlp"] = build_pipeline()
    return _PIPELINES["nlp"]


def mentions(text: str) -> list[dict]:
    """Every mention of one text: ``{"text", "observation", "value"}`` (value 1, 0 or -1)."""
    doc = pipeline()(str(text))
    out = []
    for ent in doc.ents:
        label = ent.label_
        if label.endswith("|normal"):
            out.append({"text": ent.text, "observation": label.split("|")[0], "value": 0.0})
            continue
        if ent._.uncertain:
            v = -1.0
        elif ent._.negex:
            v = 0.0
        else:
            v = 1.0
        out.append({"text": ent.text, "observation": label, "value": v})
    return out


def aggregate(found: list[dict]) -> dict[str, float]:
    """CheXpert's aggregation: positive > uncertain > negative > not mentioned (NaN)."""
    rank = {1.0: 3, -1.0: 2, 0.0: 1}
    best: dict[str, float] = {}
    for m in found:
        o, v = m["observation"], m["value"]
        if o not in best or rank[v] > rank[best[o]]:
            best[o] = v
    return best


@register_labeller("chexpert-rules")
class ChexpertRules(Labeller):
    """CheXpert-style rules (mention, negation, uncertainty) on spaCy + negspacy."""

    name = "chexpert-rules"
    description = ("rule-based, CheXpert-style: phrase mentions, negspacy NegEx negation and "
                   "uncertainty, CheXpert aggregation; No Finding derived")

    def label(self, texts: Sequence[str]) -> pd.DataFrame:
        rows = []
        for text in texts:
            agg = aggregate(mentions(text))
            rec = {o: agg.get(o, np.nan) for o in OBSERVATIONS}
            found = any(rec[o] in (1.0, -1.0) for o in OBSERVATIONS if o != "Support Devices")
            found = found or agg.get("_other") == 1.0
            rec[NO_FINDING] = 0.0 if found else 1.0
            rows.append(rec)
        return pd.DataFrame(rows, columns=[*OBSERVATIONS, NO_FINDING])


__all__ = ["ChexpertRules", "MENTIONS", "NORMAL_STATEMENTS", "OTHER_FINDINGS", "UNCERTAINTY",
           "aggregate", "build_pipeline", "mentions", "patterns", "pipeline"]
