"""Open-i / Indiana University chest X-ray collection (Demner-Fushman et al., JAMIA 2016).

Reports are the XML files of ``NLMCXR_reports.tgz`` (``ecgen-radiology/<n>.xml``): for each
report the ``INDICATION``, ``FINDINGS`` and ``IMPRESSION`` sections, the ``MeSH`` terms
(``major`` and ``automatic``) and the images (``parentImage``).  Image metadata come from
``nlmcxr_dicom_metadata.csv`` (DICOM headers: patient id, view, birth and study dates, sex).

Both files are shipped with torchxrayvision, so without a root the cohort is the real
reports and metadata without pixels.  Under ``--root`` it looks for::

    NLMCXR_reports.tgz  or  ecgen-radiology/*.xml
    nlmcxr_dicom_metadata.csv[.gz]                 (optional, else the shipped copy)
    NLMCXR_png/<image id>.png  or  NLMCXR_dcm/<file>.dcm

What the shipped copy holds, checked: 3,955 reports, 7,470 image references; the DICOM
table's ``Patient's Sex`` is empty for every image, so sex falls back to the report text
(``sex_source = "report text"``: "male"/"man"/"boy" vs "female"/"woman"/"girl" in the
indication, when exactly one of the two appears); age is study date minus birth date
from the de-identified headers.  Labels follow torchxrayvision's Open-i mapping of MeSH
terms (substring match on the automatic terms, with its synonyms); "No Finding" is a
report whose only major MeSH term is "normal".
"""

from __future__ import annotations

import re
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataNotFoundError, InputError
from ._common import check_files, finish, read_table, require_columns, require_root, shipped_file
from .base import Cohort, register_cohort
from .splits import add_age_group

OPENI_LABELS = ("Atelectasis", "Calcified Granuloma", "Cardiomegaly", "Edema", "Effusion",
                "Emphysema", "Fibrosis", "Fracture", "Granuloma", "Hernia", "Infiltration",
                "Lesion", "Mass", "Nodule", "Opacity", "Pleural_Thickening", "Pneumonia",
                "Pneumothorax", "No Finding")
SYNONYMS = {"Pleural_Thickening": ("pleural thickening",), "Infiltration": ("infiltrate",),
            "Atelectasis": ("atelectases",)}
SECTIONS = ("COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION")
_MALE = re.compile(r"\b(?:male|man|boy|gentleman)\b", re.I)
_FEMALE = re.compile(r"\b(?:female|woman|girl|lady)\b", re.I)


def parse_report(xml_bytes: bytes, name: str = "report") -> list[dict]:
    """One dict per image of one Open-i XML report (sections, MeSH terms, image id)."""
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise InputError(f"openi: cannot parse {name}: {exc}") from None
    uid = root.find("uId")
    if uid is None or "id" not in uid.attrib:
        raise InputError(f"openi: {name} has no <uId id=...>")
    text = {s: "" for s in SECTIONS}
    for node in root.iter("AbstractText"):
        label = node.attrib.get("Label", "").upper()
        if label in text:
            text[label] = (node.text or "").strip()
    major = sorted({(n.text or "").strip() for n in root.findall(".//MeSH/major") if n.text})
    auto = sorted({(n.text or "").strip().lower() for n in root.findall(".//MeSH/automatic") if n.text})
    base = {"report_id": uid.attrib["id"], **{s.lower(): v for s, v in text.items()},
            "mesh_major": "|".join(major), "mesh_automatic": "|".join(auto)}
    return [{**base, "image_id": img.attrib.get("id", "")} for img in root.findall(".//parentImage")]


def read_reports(source: str | Path) -> pd.DataFrame:
    """All reports of ``NLMCXR_reports.tgz`` or of a folder of XML files."""
    source = Path(source)
    rows: list[dict] = []
    if source.is_file():
        try:
            with tarfile.open(source, "r:gz") as tf:
                for m in tf.getmembers():
                    if m.isfile() and m.name.endswith(".xml"):
                        rows += parse_report(tf.extractfile(m).read(), m.name)
        except (tarfile.TarError, OSError) as exc:
            raise InputError(f"openi: cannot read {source.name}: {exc}") from None
    elif source.is_dir():
        files = sorted(source.glob("*.xml"))
        if not files:
            raise DataNotFoundError(f"openi: no XML reports in {source}")
        for f in files:
            rows += parse_report(f.read_bytes(), f.name)
    else:
        raise DataNotFoundError(f"openi: reports {str(source)!r} not found")
    return pd.DataFrame(rows)


def dicom_key(image_id: pd.Series) -> pd.Series:
    """Report image id -> DICOM-table ``imageid`` (``CXR1_1_IM-0001-3001`` -> ``CXR1_IM-0001-3001``)."""
    return image_id.astype(str).str.replace(r"^(CXR\d+)_\d+_(IM-.*)$", r"\1_\2", regex=True)


def text_sex(text: pd.Series) -> pd.Series:
    """"M"/"F" when the text names exactly one sex, else NaN."""
    t = text.fillna("").astype(str)
    m, f = t.str.contains(_MALE), t.str.contains(_FEMALE)
    return pd.Series(np.where(m & ~f, "M", np.where(f & ~m, "F", None)), index=text.index).replace({None: np.nan})


@register_cohort("openi", description="Open-i (Indiana) reports: indication/findings/impression, MeSH labels",
                 source="real-metadata")
def build_openi(*, root: str | Path | None = None, seed: int = 0, views: tuple[str, ...] | None = None,
                sex_from_text: bool = True, drop_missing: bool = False,
                age_scheme: str = "paper_a") -> Cohort:
    """Build the Open-i cohort (one row per image, with its report's text and MeSH terms)."""
    rootp = require_root(root, "openi") if root is not None else None
    if rootp is None:
        reports_src, meta_src = shipped_file("NLMCXR_reports.tgz"), shipped_file("nlmcxr_dicom_metadata.csv.gz")
    else:
        reports_src = rootp / "NLMCXR_reports.tgz"
        if not reports_src.is_file():
            reports_src = rootp / "ecgen-radiology"
        hits = sorted(rootp.glob("nlmcxr_dicom_metadata.csv*"))
        meta_src = hits[0] if hits else shipped_file("nlmcxr_dicom_metadata.csv.gz")
    reports = read_reports(reports_src)
    meta = read_table(meta_src, "openi")
    require_columns(meta, ("imageid", "Patient ID", "View Position"), "openi", Path(meta_src).name)
    meta = meta.drop_duplicates("imageid").set_index("imageid")
    key = dicom_key(reports["image_id"])
    joined = meta.reindex(key.to_numpy())
    table = reports.copy()
    table["sample_id"] = table["image_id"]
    pid = joined["Patient ID"].to_numpy()
    table["patient_id"] = np.where(pd.isna(pid), table["report_id"], pd.Series(pid).astype("string").str.replace(r"\.0$", "", regex=True))
    table["view"] = joined["View Position"].to_numpy()
    table["dicom_file"] = joined["filename"].to_numpy() if "filename" in joined else np.nan
    sex_col = joined.get("Patient's Sex")
    table["sex"] = sex_col.map({"M": "M", "F": "F"}).to_numpy() if sex_col is not None else np.nan
    table["sex_source"] = np.where(pd.Series(table["sex"]).notna(), "dicom", "")
    if sex_from_text:
        guess = text_sex(table["indication"] + " " + table["findings"])
        fill = pd.Series(table["sex"]).isna() & guess.notna()
        table.loc[fill, "sex"] = guess[fill]
        table.loc[fill, "sex_source"] = "report text"
    if {"Patient's Birth Date", "Study Date"} <= set(joined.columns):
        def _date(col):
            digits = pd.to_numeric(joined[col], errors="coerce").astype("Int64").astype("string")
            return pd.to_datetime(digits, format="%Y%m%d", errors="coerce")

        born, seen = _date("Patient's Birth Date"), _date("Study Date")
        table["age"] = ((seen - born).dt.days / 365.25).to_numpy()
    else:
        table["age"] = np.nan
    table["race"] = np.nan
    auto = table["mesh_automatic"].str.lower()
    for lab in OPENI_LABELS[:-1]:
        hit = auto.str.contains(lab.lower(), regex=False)
        for syn in SYNONYMS.get(lab, ()):
            hit |= auto.str.contains(syn, regex=False)
        table[lab] = hit.astype(float)
    table["No Finding"] = (table["mesh_major"].str.lower() == "normal").astype(float)
    if views:
        table = table[table["view"].isin(views)]
    table["split"] = ""
    notes = [f"reports: {reports['report_id'].nunique()}, images: {len(reports)}; "
             f"DICOM metadata matched for {int(joined['Patient ID'].notna().sum())}"]
    notes.append(f"sex: {int((table['sex_source'] == 'dicom').sum())} from DICOM, "
                 f"{int((table['sex_source'] == 'report text').sum())} from report text, "
                 f"{int(pd.Series(table['sex']).isna().sum())} unknown")
    if rootp is None:
        table["image_path"] = np.nan
        source, pixel_column = "real-metadata", None
    else:
        png = rootp / "NLMCXR_png"
        if png.is_dir():
            table["image_path"] = ["NLMCXR_png/" + i + ".png" for i in table["image_id"]]
        else:
            table["image_path"] = ["NLMCXR_dcm/" + str(f).lstrip("./") for f in table["dicom_file"]]
        table = check_files(table.reset_index(drop=True), "image_path", rootp, "openi", drop_missing=drop_missing)
        source, pixel_column = "real", "image_path"
    table = add_age_group(table.reset_index(drop=True), age_scheme)
    return Cohort(name="openi", table=finish(table, OPENI_LABELS), labels=OPENI_LABELS, source=source,
                  pixel_column=pixel_column, root=str(rootp) if rootp else None, task="multilabel",
                  report="\n".join(notes))
