"""NIH 6x200 (Paper A, Sun et al., ISBI 2025): a demographically balanced NIH subset.

Construction, from the real NIH ChestX-ray14 table:

1. *Candidate diseases*: the NIH findings that are also CheXpert observations
   (:data:`CANDIDATES`: Atelectasis, Cardiomegaly, Consolidation, Edema, Effusion =
   CheXpert's "Pleural Effusion", Pneumonia, Pneumothorax).
2. *Single-label images*: ``Finding Labels`` is exactly that one disease, with known age
   and sex.
3. *Four groups*: young (< 60) / old (>= 60) x male / female (Paper A's age bands).
4. *Qualification*: a disease qualifies when each of its four groups has at least ``n``
   (50) images.  Exception: within one age group, a shortfall of at most
   ``max_shortfall`` images of one sex is made up by extra images of the other sex of the
   same age group (the age group still has ``2 n``).  With the real table this admits
   Edema with 47 old-female + 53 old-male images, the exception Paper A reports; Pneumonia
   has only 14 old-female single-label images and does not qualify.
5. *Sampling*: ``n`` images per group (or ``n - s`` / ``n + s`` in an exception), drawn
   without replacement by a seeded generator.
6. *Split* 7:1:2, patient-wise, stratified by disease x group (scikit-learn's
   ``StratifiedGroupKFold`` over 10 folds: 7 train, 1 val, 2 test).

``max_shortfall`` ("a few") defaults to 5, i.e. 10 % of ``n``: large enough for Edema's
3, far below Pneumonia's 36.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ._common import finish
from .base import Cohort, register_cohort
from .nih import nih_table, read_nih_metadata
from .splits import age_bands, patient_split

log = logging.getLogger(__name__)

#: NIH finding -> the CheXpert observation it corresponds to.
CANDIDATES: dict[str, str] = {
    "Atelectasis": "Atelectasis",
    "Cardiomegaly": "Cardiomegaly",
    "Consolidation": "Consolidation",
    "Edema": "Edema",
    "Effusion": "Pleural Effusion",
    "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax",
}
GROUPS = ("young-M", "young-F", "old-M", "old-F")


def single_label_images(table: pd.DataFrame, diseases=tuple(CANDIDATES)) -> pd.DataFrame:
    """Rows of an NIH cohort table with exactly one finding, one of ``diseases``,
    known age and sex; adds ``disease``, ``age_band`` (young/old) and ``group``."""
    one = table[(table["n_findings"] == 1) & table["finding_labels"].isin(diseases)]
    one = one[one["age"].notna() & one["sex"].isin(["M", "F"])].copy()
    band = age_bands("paper_a").assign(one["age"])
    one["disease"] = one["finding_labels"]
    one["age_band"] = band.map({"<60": "young", ">=60": "old"}).to_numpy()
    one["group"] = one["age_band"] + "-" + one["sex"]
    return one


def qualification_table(table: pd.DataFrame | None = None, *, n: int = 50,
                        max_shortfall: int = 5) -> pd.DataFrame:
    """Disease x group counts of available single-label images, and the verdict.

    Parameters
    ----------
    table : DataFrame, optional
        An NIH cohort table (:func:`compendium.cohorts.nih.nih_table`); default: built
        from the metadata shipped with torchxrayvision.
    n, max_shortfall : int
        Images per group, and the largest shortfall one sex of an age group may have.

    Returns
    -------
    DataFrame indexed by disease with one count column per group, ``take_<group>``
    (images drawn per group; 0 when not qualified), ``qualifies`` (bool) and ``reason``.
    """
    if table is None:
        table = nih_table(read_nih_metadata())
    if n < 1 or max_shortfall < 0 or max_shortfall >= n:
        raise ConfigError(f"nih-6x200: need n >= 1 and 0 <= max_shortfall < n (got {n}, {max_shortfall})")
    one = single_label_images(table)
    counts = (one.groupby(["disease", "group"]).size().unstack("group")
              .reindex(index=list(CANDIDATES), columns=list(GROUPS)).fillna(0).astype(int))
    rows = []
    for disease, c in counts.iterrows():
        take, reasons, ok = {}, [], True
        for band in ("young", "old"):
            m, f = int(c[f"{band}-M"]), int(c[f"{band}-F"])
            if m >= n and f >= n:
                take[f"{band}-M"], take[f"{band}-F"] = n, n
                continue
            short_sex, short, other = ("F", f, m) if f < m else ("M", m, f)
            deficit = n - short
            if m < n and f < n:
                ok = False
                reasons.append(f"{band}-M has {m} and {band}-F has {f}: both < {n}")
                continue
            if deficit <= max_shortfall and other >= n + deficit:
                take[f"{band}-{short_sex}"] = short
                take[f"{band}-{'M' if short_sex == 'F' else 'F'}"] = n + deficit
                reasons.append(f"{band}-{short_sex} has {short} < {n}: made up by "
                               f"{deficit} extra {band}-{'M' if short_sex == 'F' else 'F'}")
            else:
                ok = False
                why = (f"{band}-{short_sex} has only {short} < {n}" if deficit > max_shortfall
                       else f"{band}-{short_sex} has {short} and the other sex too few to make it up")
                reasons.append(why + (f" (shortfall {deficit} > max_shortfall {max_shortfall})"
                                      if deficit > max_shortfall else ""))
        row = {**c.to_dict()}
        for g in GROUPS:
            row[f"take_{g}"] = take.get(g, 0) if ok else 0
        row["qualifies"] = ok
        row["reason"] = "; ".join(reasons) if reasons else f"every group has >= {n}"
        rows.append(pd.Series(row, name=disease))
    out = pd.DataFrame(rows)
    out.index.name = "disease"
    return out


def rule_comparison(table: pd.DataFrame | None = None, *, n: int = 50,
                    max_shortfall: int = 5) -> pd.DataFrame:
    """Which NIH findings qualify for NIH 6x200 under each reading of Paper A's rule.

    Paper A states one criterion, "the image number in any of the four groups should be
    larger than N" (N = 50), and does not say which images count.  Per finding (all 14 NIH
    findings) and reading: ``stated, any-label`` (every group has more than ``n`` images
    carrying the finding), ``stated, single-label`` (more than ``n`` images whose only finding
    it is), and ``ours`` (:func:`qualification_table`: candidates that are CheXpert
    observations, single-label images, a shortfall of at most ``max_shortfall`` of one sex
    made up by the other).  Columns: ``finding``, the smallest group under each image set, and
    one boolean column per reading.
    """
    from .nih import NIH_FINDINGS

    if table is None:
        table = nih_table(read_nih_metadata())
    known = table[table["age"].notna() & table["sex"].isin(["M", "F"])]
    band = age_bands("paper_a").assign(known["age"]).map({"<60": "young", ">=60": "old"})
    group = band.to_numpy() + "-" + known["sex"].to_numpy()
    ours = qualification_table(table, n=n, max_shortfall=max_shortfall)["qualifies"]
    rows = []
    for finding in NIH_FINDINGS:
        has = (known[finding] == 1).to_numpy()
        only = has & (known["n_findings"] == 1).to_numpy()
        any_min = min(int((has & (group == g)).sum()) for g in GROUPS)
        one_min = min(int((only & (group == g)).sum()) for g in GROUPS)
        rows.append({"finding": finding, "smallest group, any-label": any_min,
                     "smallest group, single-label": one_min,
                     "stated, any-label": any_min > n, "stated, single-label": one_min > n,
                     "ours": bool(ours.get(finding, False))})
    return pd.DataFrame(rows)


@register_cohort("nih-6x200", description="Paper A's balanced NIH subset: 6 diseases x 4 age/sex groups x 50",
                 source="real-metadata")
def build_nih_6x200(*, root: str | Path | None = None, seed: int = 0,
                    metadata: str | Path | None = None, n: int = 50, max_shortfall: int = 5,
                    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                    drop_missing: bool = False) -> Cohort:
    """Build NIH 6x200 (see the module docstring for every step).

    With ``root`` the rows point at the PNGs of a local NIH copy (checked to exist);
    without it the cohort is metadata only.  ``task="multiclass"``: each row has exactly
    one of the qualifying diseases as its label.
    """
    from .nih import build_nih

    nih = build_nih(root=root, seed=seed, metadata=metadata, drop_missing=drop_missing)
    qual = qualification_table(nih.table, n=n, max_shortfall=max_shortfall)
    diseases = tuple(d for d in qual.index if qual.loc[d, "qualifies"])
    if not diseases:
        raise InputError(f"nih-6x200: no disease has {n} single-label images in every group")
    one = single_label_images(nih.table, diseases)
    rng = np.random.default_rng(seed)
    parts = []
    for disease in diseases:
        for g in GROUPS:
            pool = one[(one["disease"] == disease) & (one["group"] == g)].sort_values("sample_id")
            k = int(qual.loc[disease, f"take_{g}"])
            parts.append(pool.iloc[np.sort(rng.choice(len(pool), size=k, replace=False))])
    table = pd.concat(parts, ignore_index=True)
    keep = [c for c in table.columns if c not in set(nih.labels)]
    table = table[keep].copy()
    for d in diseases:
        table[d] = (table["disease"] == d).astype(float)
    table["age_group"] = table["age_band"]
    table = patient_split(table.drop(columns=["split"]), fractions,
                          stratify=["disease", "group"], seed=seed)
    table = finish(table, diseases)
    lines = [f"NIH 6x200 from {'local NIH copy' if root else 'shipped NIH metadata'}: "
             f"n={n} per group, max_shortfall={max_shortfall}, seed={seed}"]
    for d, r in qual.iterrows():
        counts = ", ".join(f"{g}={r[g]}" for g in GROUPS)
        lines.append(f"  {d:<14} {'QUALIFIES' if r['qualifies'] else 'excluded '}  [{counts}]  {r['reason']}")
    sizes = table["split"].value_counts()
    lines.append("split sizes: " + ", ".join(f"{s}={sizes.get(s, 0)}" for s in ("train", "val", "test")))
    return Cohort(name="nih-6x200", table=table, labels=diseases, source=nih.source,
                  pixel_column=nih.pixel_column, root=nih.root, task="multiclass",
                  report="\n".join(lines), meta={"qualification": qual, "n": n,
                                                 "max_shortfall": max_shortfall})
