"""Paper E's steps; each takes the validated spec (:class:`~.spec.PaperESpec`) and returns
typed, tidy results.

1. :func:`build_datasets` - MIMIC-CXR with its linked 76-feature EHR (2-hour bins, Paper E
   section 4.1) and the out-of-distribution datasets without EHR, split patient-wise with
   Table 1's fractions.  ``pixels: synthetic``: each dataset is a synthetic world (MIMIC-CXR
   the world itself, NIH and CheXpert over their real metadata rows' ages and sexes, VinDr
   parametric), the OOD worlds with an acquisition / prevalence shift (``ood_shift``).
2. :func:`pretraining_corpus` - the synthetic images and reports the image-only and
   image-text towers pretrain on (a world of its own seed).
3. :func:`pretrain_towers` - one image tower per strategy, by the strategy's recipe:
   supervised (none), image-only self-supervised (Barlow Twins), image-EHR objectives
   (ConVIRT, VICReg, ALIGN) from scratch on MIMIC's training pairs, MedCAM (eq. 8 on the
   BarlowTwins tower), image-text objectives (ConVIRT, GLoRIA-like global + local, MedCLIP's
   soft targets) on the corpus reports (:mod:`compendium.adapt.alignment`).
4. :func:`finetune_all` - every tower + a linear head, BCE, learning-rate grid, validation
   macro AUROC every ``eval_every`` epochs (:mod:`compendium.adapt.multilabel`); test-split
   predictions tables.
5. :func:`audit_all` - macro AUROC / AUPRC with bootstrap intervals (Tables 2-4), and per
   sex, age band and race with gaps and permutation p-values (the subgroup audit).
6. :func:`ablation` and :func:`missingness` - global / local / both, k, tau, what alignment
   updates; and whether group-dependent EHR missingness reaches the image-only predictions.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...errors import ConfigError
from ..base import audit_predictions
from .spec import (
    DATASET_LABELS,
    DATASET_NAMES,
    OOD_STRATEGIES,
    SHARED_LABELS,
    SPLITS,
    STRATEGIES,
    PaperESpec,
)

log = logging.getLogger(__name__)

#: How each synthetic world draws demographics (real metadata rows where shipped).
DEMOGRAPHICS = {"mimic-cxr": "parametric", "nih": "nih", "vindr": "parametric",
                "chexpert": "chexpert"}
#: Seed offsets of the synthetic worlds (each dataset its own patients).
WORLD_OFFSET = {"mimic-cxr": 0, "nih": 11, "vindr": 23, "chexpert": 37, "corpus": 101}


@dataclasses.dataclass
class Data:
    """One dataset: its rows, labels, images, EHR (N, t, 76) or None.

    ``images``: the synthetic world's (N, 1, S, S) float tensor, or, under ``pixels: real``,
    :class:`~compendium.imaging.dataset.StreamedImages` over the memory-mapped uint8 cache
    (rows read and preprocessed per batch, by each model's own preprocessing)."""

    name: str
    rows: pd.DataFrame
    labels: tuple[str, ...]
    images: Any
    ehr: torch.Tensor | None
    knobs: dict

    def part(self, split: str, transform=None) -> tuple[Any, np.ndarray, pd.DataFrame]:
        """Images, label matrix and rows of a split; streamed images get ``transform``
        (a model's preprocessing)."""
        m = (self.rows["split"] == split).to_numpy().copy()
        rows = self.rows[m].reset_index(drop=True)
        y = rows[list(self.labels)].to_numpy(float)
        if _is_streamed(self.images):
            x = self.images.subset(m)
            x.transform = transform
            return x, y, rows
        return self.images[torch.from_numpy(m)], y, rows

    def ehr_part(self, split: str) -> torch.Tensor:
        if self.ehr is None:
            raise ConfigError(f"{self.name} has no EHR")
        return self.ehr[torch.from_numpy((self.rows["split"] == split).to_numpy().copy())]


@dataclasses.dataclass
class Tower:
    """A strategy's image tower (-> (B, out_dim)) after its pretraining; ``transform``: its
    preprocessing of streamed images (``pixels: real``; None for the synthetic tensors)."""

    strategy: str
    module: nn.Module
    out_dim: int
    recipe: str
    history: list[float]
    transform: Any = None


def _is_streamed(x) -> bool:
    from ...imaging.dataset import StreamedImages

    return isinstance(x, StreamedImages)


def _device(cfg: PaperESpec) -> str:
    """Where training runs: the run's device under ``pixels: real``; the synthetic world
    always trains on the CPU (its numbers do not depend on the machine)."""
    from ...runtime import resolve_device

    return str(resolve_device(cfg.device)) if cfg.pixels == "real" else "cpu"


def _threads(cfg: PaperESpec):
    """``threads`` torch threads; 0 (the default): one in the synthetic world (its numbers
    then do not depend on the machine's core count), torch's own setting under ``pixels:
    real`` (full-size towers on the user's cores; found by the rehearsal, which ran Paper E's
    full profile on one core)."""
    from ...runtime import torch_threads

    return torch_threads(cfg.threads or (None if cfg.pixels == "real" else 1))


def labels_of(dataset: str, cfg: PaperESpec) -> tuple[str, ...]:
    """The multi-label task's labels on ``dataset`` under the ``label_set`` reading."""
    if cfg.label_set == "shared":
        return SHARED_LABELS
    return DATASET_LABELS[dataset]


def shifted_knobs(base: Any, shift: dict[str, float] | None = None,
                  group: dict[str, dict[str, float]] | None = None) -> dict:
    """The knobs of a world: ``base`` plus ``shift`` for everyone (added to both sexes'
    groups) plus ``group`` (knob values that replace those of named groups)."""
    from ...synthetic.knobs import resolve_knobs

    k = resolve_knobs(base).to_dict()["groups"]
    k = {g: dict(v) for g, v in k.items()}
    for sex in ("sex=F", "sex=M") if shift else ():
        g = k.setdefault(sex, {})
        for name, v in shift.items():
            g[name] = g.get(name, 0.0) + float(v)
    for key, vals in (group or {}).items():
        k.setdefault(key, {}).update({n: float(v) for n, v in vals.items()})
    return k


def _split(table: pd.DataFrame, fractions, min_rows: int, seed: int) -> pd.DataFrame:
    """Patient-wise split with ``fractions``; validation and test keep at least
    ``min_rows`` rows' worth of patients (0: the fractions as they are)."""
    from ...cohorts.splits import patient_split

    n = max(table["patient_id"].nunique(), 1)
    tr, va, te = fractions
    if min_rows:
        va, te = max(va, min_rows / n), max(te, min_rows / n)
        tr = max(1.0 - va - te, 0.05)
        tot = tr + va + te
        tr, va, te = tr / tot, va / tot, te / tot
    return patient_split(table, (tr, va, 1.0 - tr - va), seed=seed)


def _pixels_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, S, S) -> float (N, 1, S, S), intensities standardised as (x/255 - 0.5)/0.25."""
    return ((torch.as_tensor(images).float() / 255.0 - 0.5) / 0.25)[:, None]


def build_datasets(cfg: PaperESpec) -> dict[str, Data]:
    """Every dataset of the run (see the module docstring)."""
    if cfg.pixels == "real":
        return _real_datasets(cfg)
    from ...synthetic import render_ehr, render_rows, synthetic_cxr

    out = {}
    for d in cfg.datasets:
        knobs = shifted_knobs(cfg.knobs, cfg.ood_shift.get(d) if d != "mimic-cxr" else None)
        seed = cfg.world_seed + WORLD_OFFSET[d]
        c = synthetic_cxr(n=int(cfg.n_rows.get(d, 300)), seed=seed, knobs=knobs,
                          demographics=DEMOGRAPHICS[d], name=f"{d}-synthetic")
        c.table["split"] = _split(c.table, SPLITS[d], cfg.min_eval_rows, seed)["split"].to_numpy()
        images = _pixels_to_tensor(render_rows(c, None, cfg.image_size))
        ehr = (torch.as_tensor(render_ehr(c, None, hours=cfg.ehr_hours))
               if d == "mimic-cxr" else None)
        out[d] = Data(d, c.table, labels_of(d, cfg), images, ehr, knobs)
        _check_labels(out[d])
    return out


def mimic_with_missingness(data: Data, level: float, cfg: PaperESpec) -> Data:
    """The same MIMIC world (same images, labels, rows) with ``cfg.missing_group``'s EHR
    measurements missing with probability ``level``."""
    from ...synthetic import render_ehr, synthetic_cxr

    knobs = shifted_knobs(cfg.knobs, group={cfg.missing_group: {"ehr_missing": level}})
    c = synthetic_cxr(n=len(data.rows), seed=cfg.world_seed, knobs=knobs,
                      demographics=DEMOGRAPHICS["mimic-cxr"], name="mimic-cxr-synthetic")
    same = ["sample_id", *data.labels]
    if not c.table[same].equals(data.rows[same]):
        raise ConfigError("the missingness knob changed the MIMIC rows or labels "
                          f"({cfg.missing_group}: only ehr_missing may differ)")
    ehr = torch.as_tensor(render_ehr(c, None, hours=cfg.ehr_hours))
    return dataclasses.replace(data, ehr=ehr, knobs=knobs)


def _check_labels(d: Data) -> None:
    for split in ("train", "val", "test"):
        _, y, _ = d.part(split)
        if len(y) == 0:
            raise ConfigError(f"{d.name}: the {split} split is empty (raise n_rows or "
                              "min_eval_rows)")


#: Registry cohort of each dataset under ``pixels: real``.
COHORTS = {"mimic-cxr": "mimic-cxr", "nih": "nih", "vindr": "vindr-cxr",
           "chexpert": "chexpert"}
#: The ``label_set`` names (DATASET_LABELS, SHARED_LABELS) as each real dataset spells them
#: (names not listed are spelled the same): MIMIC-CXR and CheXpert carry CheXpert's 14
#: labels, VinDr-CXR its annotators' classes.
REAL_LABEL_NAMES = {
    "mimic-cxr": {"Effusion": "Pleural Effusion", "Opacity": "Lung Opacity"},
    "chexpert": {"Effusion": "Pleural Effusion", "Opacity": "Lung Opacity"},
    "vindr": {"Effusion": "Pleural effusion", "Opacity": "Lung Opacity",
              "Nodule": "Nodule/Mass"},
    "nih": {}}


def _real_datasets(cfg: PaperESpec) -> dict[str, Data]:
    """The real datasets: MIMIC-CXR frontal images of the MIMIC-IV ICU stays they were taken
    in (the ``mimic-iv-ehr`` builder's link: the last frontal image between admission and
    discharge), with the stay's EHR of the ``ehr_hours`` before the image; NIH, VinDr-CXR and
    CheXpert without EHR.  Each is split patient-wise with Table 1's fractions; labels are
    the ``label_set`` reading's, renamed from each dataset's spelling; images stream from
    the memory-mapped pixel cache at ``image_size`` px."""
    from ...cohorts import build_cohort

    roots = cfg.data_roots
    out = {}
    for d in cfg.datasets:
        seed = cfg.seed + WORLD_OFFSET[d]
        if d == "mimic-cxr":
            cohort, ehr = _mimic_with_ehr(roots["mimic-cxr"], roots["mimic-iv-ehr"], cfg)
        else:
            extra = {"uncertainty": cfg.uncertain_labels} if d == "chexpert" else {}
            cohort, ehr = build_cohort(COHORTS[d], root=roots[d], seed=cfg.world_seed,
                                       **extra), None
        labels = labels_of(d, cfg)
        names = REAL_LABEL_NAMES[d]
        absent = [names.get(lab, lab) for lab in labels
                  if names.get(lab, lab) not in cohort.table.columns]
        if absent:
            raise ConfigError(f"{DATASET_NAMES[d]}: no label column {absent[0]!r} in the "
                              f"dataset (label_set: {cfg.label_set})")
        rename = {names.get(lab, lab): lab for lab in labels}
        t = cohort.table.rename(columns=rename)
        # images without any label (a study missing from the label file) are left out; a
        # finding the report does not mention is absent (CheXpert's blank; -1 as the
        # uncertain_labels reading says)
        keep = t[list(labels)].notna().any(axis=1).to_numpy()
        t = t[keep].copy()
        if ehr is not None:
            ehr = ehr[torch.from_numpy(keep)]
        t[list(labels)] = t[list(labels)].fillna(0.0)
        t = t.drop(columns=["split"])
        t["split"] = _split(t, SPLITS[d], cfg.min_eval_rows, seed)["split"].to_numpy()
        cohort = dataclasses.replace(cohort, table=t.reset_index(drop=True),
                                     labels=tuple(rename.get(lab, lab) for lab in cohort.labels))
        out[d] = Data(d, cohort.table, labels, _stream(cohort, cfg), ehr, {})
        _check_labels(out[d])
    return out


def _stream(cohort, cfg: PaperESpec):
    """The cohort's images as streamed rows of the uint8 cache at ``image_size`` px."""
    from ...imaging.cache import cached_pixels
    from ...imaging.dataset import StreamedImages

    return StreamedImages(cached_pixels(cohort, cfg.image_size, progress=False))


def _mimic_with_ehr(cxr_root: str, ehr_root: str, cfg: PaperESpec):
    """MIMIC-IV stays linked to their frontal MIMIC-CXR image, with the image's CheXpert
    labels, and each stay's EHR window before the image (standardised with the training
    stays' means)."""
    from ...cohorts import build_cohort
    from ...cohorts.mimic_iv_ehr import StayNormalizer

    stays = build_cohort("mimic-iv-ehr", root=ehr_root, mimic_cxr=cxr_root, require_cxr=True,
                         seed=cfg.world_seed)
    if not len(stays.table):
        raise ConfigError("mimic-iv-ehr: no stay has a frontal MIMIC-CXR image taken during "
                          "it (check that both folders hold the same subjects)")
    cxr = build_cohort("mimic-cxr", root=cxr_root, frontal_only=True, seed=cfg.world_seed,
                       unmentioned="negative", uncertainty=cfg.uncertain_labels)
    keep = ["sample_id", *[c for c in cxr.labels]]
    labels = cxr.table[keep].rename(columns={"sample_id": "dicom_id"})
    t = stays.table.drop(columns=["split"]).merge(labels, on="dicom_id", how="left")
    t = t[t[list(cxr.labels)].notna().any(axis=1)].reset_index(drop=True)
    if not len(t):
        raise ConfigError("mimic-cxr: none of the linked images has a row in the CheXpert "
                          "labels file")
    root = stays.meta["ehr_root"]
    series = [_ehr_window(root, r, r["cxr_time"], cfg.ehr_hours) for _, r in t.iterrows()]
    t = t.assign(split="")
    t["split"] = _split(t, SPLITS["mimic-cxr"], cfg.min_eval_rows, cfg.seed)["split"].to_numpy()
    norm = StayNormalizer().fit([s for s, sp in zip(series, t["split"]) if sp == "train"])
    ehr = torch.as_tensor(np.stack([norm.transform(s) for s in series]))
    cohort = dataclasses.replace(stays, table=t, labels=tuple(cxr.labels))
    return cohort, ehr


def _ehr_window(ehr_root: str, row, at, hours: int) -> np.ndarray:
    """The (hours / 2, 76) EHR of a stay (a row of the ``mimic-iv-ehr`` cohort under
    ``ehr_root``) in the 2-hour bins before time ``at`` (the image): measurements after the
    image are left out; bins before the stay began hold what the builder's imputation gives
    a bin with no measurement yet (normal values, mask 0)."""
    from pathlib import Path

    from ...cohorts._common import read_table
    from ...cohorts.mimic_iv_ehr import TIMESTEP_HOURS, discretize

    steps = max(1, int(hours // TIMESTEP_HOURS))
    ts = read_table(Path(ehr_root) / str(row["timeseries_path"]), "mimic-iv-ehr")
    h = max((pd.Timestamp(at) - pd.Timestamp(row["intime"])) / pd.Timedelta(hours=1), 0.0)
    hrs = pd.to_numeric(ts["Hours"], errors="coerce")
    have = max(1, int(np.ceil(h / TIMESTEP_HOURS)))
    arr = discretize(ts[hrs < h], max_hours=have * TIMESTEP_HOURS)[-steps:]
    if len(arr) < steps:
        empty = discretize(pd.DataFrame({"Hours": []}), max_hours=TIMESTEP_HOURS)
        arr = np.concatenate([np.repeat(empty, steps - len(arr), axis=0), arr])
    return arr.astype(np.float32)


@dataclasses.dataclass
class Corpus:
    """Synthetic pretraining images with their reports and recorded labels."""

    images: torch.Tensor
    reports: list[str]
    labels: np.ndarray


def pretraining_corpus(cfg: PaperESpec) -> Corpus | None:
    """The synthetic world's pretraining corpus (NIH-like ages and sexes, its own seed);
    None under ``pixels: real``, where the image-only and image-text models come with their
    released pretrained weights."""
    if cfg.pixels == "real":
        return None
    from ...encoders.toy import impression
    from ...synthetic import render_rows, synthetic_cxr

    c = synthetic_cxr(n=cfg.n_pretrain, seed=cfg.world_seed + WORLD_OFFSET["corpus"],
                      knobs=cfg.knobs, demographics="nih", name="pretraining-corpus")
    labs = [lab for lab in c.labels if lab != "No Finding"]
    return Corpus(_pixels_to_tensor(render_rows(c, None, cfg.image_size)),
                  [impression(r) for r in c.table["report"].astype(str)],
                  c.table[labs].to_numpy(float))


# ----------------------------------------------------------------------------- towers


def _new_tower(encoder: str, cfg: PaperESpec, seed: int) -> tuple[nn.Module, int]:
    """The synthetic world's stand-in architecture of a registry encoder: the ResNet-50s a
    small CNN, EVA-X Tiny / Small and MedCLIP-ViT tiny EVA-style ViTs (widths 1:2)."""
    from ...encoders.small import SmallCNN, TinyEva

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if encoder == "eva-x-tiny":
            m = TinyEva(img_size=cfg.image_size, patch_size=8, dim=24, depth=2, heads=2)
        elif encoder in ("eva-x-small", "medclip-vit"):
            m = TinyEva(img_size=cfg.image_size, patch_size=8, dim=48, depth=2, heads=3)
        else:
            m = SmallCNN(width=cfg.cnn_width)
    return m, m.out_dim


class ImageTower(nn.Module):
    """A registry encoder's image path as a module: preprocessed images -> its image
    embedding (``encode_images``: the backbone's pooled output, and the projection where
    the model has one, e.g. MedCLIP's and GLoRIA's)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode_images(x)


def _real_tower(encoder: str, cfg: PaperESpec, seed: int):
    """The image tower of a registry encoder (its released weights; ``resnet50-random``
    random; a text tower, unused, is dropped), its output width and its preprocessing."""
    from ...adapt.finetune import _output_dim
    from ...encoders import load_encoder

    enc = load_encoder(encoder, pretrained=cfg.pretrained,
                       weights=cfg.weights.get(encoder) or None, seed=seed, progress=False)
    if getattr(enc, "text_model", None) is not None:
        enc.text_model = None
    tower = ImageTower(enc)
    for p in tower.parameters():
        p.requires_grad_(True)
    return tower, _output_dim(enc, tower), enc.preprocessor


def align_spec(cfg: PaperESpec, **over: Any):
    from ...adapt.alignment import AlignSpec

    base = {"objective": "medcam", "k": cfg.k, "tau": cfg.tau, "epochs": cfg.align_epochs,
            "lr": cfg.align_lr, "batch_size": 64, "seed": cfg.seed, "device": _device(cfg)}
    base.update(over)
    return AlignSpec(**base)


def align_tower(tower: nn.Module, out_dim: int, mimic: Data, cfg: PaperESpec, *,
                objective: str = "medcam", update: str | None = None,
                attention: str | None = None, transform=None,
                **over: Any) -> tuple[nn.Module, list[float]]:
    """A copy of ``tower`` aligned with MIMIC's training EHR (``objective``); returns the
    adapted image encoder and the epoch losses.  ``transform``: the tower's preprocessing
    of streamed images."""
    from ...adapt.alignment import AlignmentModel, EHREncoder, train_alignment

    x, _, _ = mimic.part("train", transform)
    e = mimic.ehr_part("train")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + 7)
        model = AlignmentModel(copy.deepcopy(tower), out_dim,
                               EHREncoder(e.shape[-1], hidden=cfg.ehr_hidden), cfg.ehr_hidden,
                               dim=cfg.proj_dim, attention=attention or cfg.attention,
                               update=update or cfg.update)
    hist = train_alignment(model, x, e, align_spec(cfg, objective=objective, **over))
    return model.adapted_image_encoder(), hist


def pretrain_towers(data: dict[str, Data], corpus: Corpus, cfg: PaperESpec) -> dict[str, Tower]:
    """One tower per strategy (MedCAM's unaligned backbone, BarlowTwins-CXR, always built)."""
    from ...adapt.alignment import (
        AlignmentModel,
        BagOfWordsEncoder,
        bag_of_words,
        pretrain_barlow_twins,
        train_alignment,
    )

    mimic = data["mimic-cxr"]
    towers: dict[str, Tower] = {}
    needed = list(cfg.strategies)
    if "medcam" in needed and "barlowtwins-cxr" not in needed:
        needed.insert(0, "barlowtwins-cxr")
    if cfg.pixels == "real":
        return _real_towers(needed, mimic, cfg)
    bow, _ = bag_of_words(corpus.reports)
    with _threads(cfg):
        for i, s in enumerate(needed):
            _, _, how, encoder = STRATEGIES[s]
            seed = cfg.seed + 1000 * (i + 1)
            if s == "medcam":
                base = towers["barlowtwins-cxr"]
                mod, hist = align_tower(base.module, base.out_dim, mimic, cfg)
                towers[s] = Tower(s, mod, base.out_dim, _recipe(s, cfg), hist)
                continue
            mod, dim = _new_tower(encoder, cfg, seed)
            hist: list[float] = []
            if how == "image":
                hist = pretrain_barlow_twins(mod, corpus.images, out_dim=dim,
                                             epochs=cfg.pretrain_epochs, lr=cfg.pretrain_lr,
                                             seed=seed)
            elif how.startswith("image-ehr:"):
                mod, hist = align_tower(mod, dim, mimic, cfg, objective=how.split(":")[1],
                                        update="full", epochs=cfg.pretrain_epochs,
                                        lr=cfg.pretrain_lr)
            elif how.startswith("image-text:"):
                obj = how.split(":")[1]
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    model = AlignmentModel(mod, dim, BagOfWordsEncoder(bow.shape[1], 64), 64,
                                           dim=cfg.proj_dim, update="full")
                spec = align_spec(cfg, objective="convirt" if obj == "medclip" else
                                  ("medcam" if obj == "gloria" else obj),
                                  soft_targets=obj == "medclip", epochs=cfg.pretrain_epochs,
                                  lr=cfg.pretrain_lr, seed=seed)
                hist = train_alignment(model, corpus.images, bow, spec,
                                       labels=torch.as_tensor(corpus.labels))
                mod = model.adapted_image_encoder()
            towers[s] = Tower(s, mod.eval(), dim, _recipe(s, cfg), hist)
    return towers


def _real_towers(needed: list[str], mimic: Data, cfg: PaperESpec) -> dict[str, Tower]:
    """Under ``pixels: real``: the released weights are the image-only and image-text
    pretraining; the image-EHR objectives train a random ResNet-50 on MIMIC's training
    pairs; MedCAM aligns BarlowTwins-CXR's ResNet-50 (eq. 8)."""
    towers: dict[str, Tower] = {}
    with _threads(cfg):
        for i, s in enumerate(needed):
            _, _, how, encoder = STRATEGIES[s]
            seed = cfg.seed + 1000 * (i + 1)
            if s == "medcam":
                base = towers["barlowtwins-cxr"]
                mod, hist = align_tower(base.module, base.out_dim, mimic, cfg,
                                        transform=base.transform)
                towers[s] = Tower(s, mod.eval(), base.out_dim, _recipe(s, cfg), hist,
                                  base.transform)
                continue
            mod, dim, pre = _real_tower(encoder, cfg, seed)
            hist: list[float] = []
            if how.startswith("image-ehr:"):
                mod, hist = align_tower(mod, dim, mimic, cfg, objective=how.split(":")[1],
                                        update="full", epochs=cfg.pretrain_epochs,
                                        lr=cfg.pretrain_lr, transform=pre)
            towers[s] = Tower(s, mod.eval(), dim, _recipe(s, cfg), hist, pre)
    return towers


def _recipe(strategy: str, cfg: PaperESpec) -> str:
    """What a strategy's tower is in this run (the stand-in's recipe under synthetic)."""
    _, shown, how, encoder = STRATEGIES[strategy]
    if cfg.pixels == "real":
        what = {"supervised": "random init", "image": "released weights",
                "medcam": f"released weights aligned with MIMIC-IV EHR (eq. 8, k={cfg.k}, "
                          f"tau={cfg.tau:g}, {cfg.update} update)"}.get(how)
        if what is None:
            what = (f"{how.split(':')[1]} objective with MIMIC-IV EHR from random init"
                    if how.startswith("image-ehr:") else "released weights")
        return f"{encoder}: {what}"
    arch = ("tiny EVA ViT (dim 24)" if encoder == "eva-x-tiny" else
            "tiny EVA ViT (dim 48)" if encoder in ("eva-x-small", "medclip-vit") else
            f"small CNN (width {cfg.cnn_width})")
    what = {
        "supervised": "random init",
        "image": "Barlow Twins on the synthetic corpus",
        "medcam": f"BarlowTwins-CXR stand-in aligned with MIMIC EHR (eq. 8, k={cfg.k}, "
                  f"tau={cfg.tau:g}, {cfg.update} update)",
    }.get(how)
    if what is None and how.startswith("image-ehr:"):
        what = f"{how.split(':')[1]} objective with MIMIC EHR from scratch"
    if what is None:
        obj = how.split(":")[1]
        what = {"convirt": "ConVIRT loss with synthetic reports",
                "gloria": "global + local (words) InfoNCE with synthetic reports",
                "medclip": "MedCLIP soft-target loss with synthetic reports"}[obj]
    return f"{arch}, {what} (stand-in for {shown})"


# ----------------------------------------------------------------------------- fine-tuning


@dataclasses.dataclass
class Evaluation:
    """Test-split predictions per (strategy, dataset) and the learning-rate selections."""

    predictions: dict[tuple[str, str], pd.DataFrame]
    selection: pd.DataFrame


def finetune_spec(cfg: PaperESpec, lrs=None):
    from ...adapt.multilabel import FinetuneSpec

    return FinetuneSpec(lrs=list(lrs or cfg.lrs), max_epochs=cfg.max_epochs,
                        batch_size=cfg.ft_batch_size, eval_every=cfg.eval_every,
                        patience=cfg.patience, seed=cfg.seed, device=_device(cfg))


def finetune_predict(tower: nn.Module, out_dim: int, data: Data, cfg: PaperESpec, *,
                     lrs=None, transform=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fine-tune ``tower`` on ``data``'s training split (validation selection) and return
    the test split's predictions table and the learning-rate selection table
    (``transform``: the tower's preprocessing of streamed images)."""
    from ...adapt.multilabel import finetune_multilabel, predict_multilabel
    from ...adapt.predictions import predictions_table

    xtr, ytr, _ = data.part("train", transform)
    xva, yva, _ = data.part("val", transform)
    xte, _, rte = data.part("test", transform)
    with _threads(cfg):
        res = finetune_multilabel(tower, out_dim, (xtr, ytr), (xva, yva), finetune_spec(cfg, lrs))
        scores = predict_multilabel(res.model, xte)
    attrs = [a for a in cfg.attributes if a in rte]
    return (predictions_table(rte, scores, list(data.labels), "multilabel", attributes=attrs),
            res.selection)


def runs_of(cfg: PaperESpec) -> list[tuple[str, str]]:
    """(strategy, dataset) pairs the tables need: every strategy on MIMIC-CXR, those of
    Tables 3 and 4 on the out-of-distribution datasets."""
    ood = cfg.ood_strategies or OOD_STRATEGIES
    return [(s, d) for d in cfg.datasets for s in cfg.strategies
            if d == "mimic-cxr" or s in ood]


def finetune_all(towers: dict[str, Tower], data: dict[str, Data], cfg: PaperESpec
                 ) -> Evaluation:
    preds, sel = {}, []
    for s, d in runs_of(cfg):
        t = towers[s]
        pred, selection = finetune_predict(t.module, t.out_dim, data[d], cfg,
                                           transform=t.transform)
        preds[(s, d)] = pred
        sel.append(selection.assign(strategy=s, dataset=d))
    return Evaluation(preds, pd.concat(sel, ignore_index=True))


# ----------------------------------------------------------------------------- audit


def defined_labels(pred: pd.DataFrame, labels, groups: pd.Series | None = None) -> list[str]:
    """Labels with a positive and a negative in the table (in every group of ``groups``):
    the labels whose AUROC, and so the macro AUROC, is defined."""
    keep = []
    for lab in labels:
        y = pred[f"true_{lab}"]
        parts = [y] if groups is None else [y[groups == g] for g in groups.unique()]
        if all(((p == 1).any() and (p == 0).any()) for p in parts):
            keep.append(lab)
    return keep


def restrict_labels(pred: pd.DataFrame, labels, keep) -> pd.DataFrame:
    """The predictions table with only the labels ``keep`` (their true/score/pred columns)."""
    drop = [f"{p}_{lab}" for lab in labels if lab not in keep for p in ("true", "score", "pred")]
    return pred.drop(columns=[c for c in drop if c in pred])


def audit_run(pred: pd.DataFrame, labels, cfg: PaperESpec, *, attributes=None,
              metrics=("auroc", "auprc", "auroc_gap")) -> pd.DataFrame:
    """Audit of one test split: the overall macro over the labels defined on it, then per
    attribute the groups of at least ``min_group_rows`` rows over the labels defined in
    every one of them (``labels_used`` counts them; smaller groups are left out).  The macro
    gap is the gap between the groups' macro AUROCs (largest minus smallest: the audit's
    ``gap_of_macro``), so that it is the difference of the groups' rows."""
    from ...audit import audit

    attributes = cfg.attributes if attributes is None else attributes
    keep = defined_labels(pred, labels)
    if not keep:   # no label has both classes here: the macro is undefined, not guessed
        return pd.DataFrame([{"metric": m, "attribute": "all", "group": "all", "label": "macro",
                              "estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                              "n": len(pred), "flag": "no label has both classes",
                              "kind": "overall", "labels_used": 0}
                             for m in metrics if "gap" not in m])
    parts = [audit_predictions(restrict_labels(pred, labels, keep), task="multilabel",
                               attributes=[], metrics=[m for m in metrics if "gap" not in m],
                               n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
             .assign(labels_used=len(keep))]
    for a in attributes:
        if a not in pred or pred[a].isna().all():
            continue
        counts = pred[a].value_counts()
        big = counts[counts >= cfg.min_group_rows].index
        sub = pred[pred[a].isin(big)]
        if len(big) < 2:
            continue
        k = defined_labels(sub, labels, sub[a])
        if not k:
            continue
        t = audit(restrict_labels(sub, labels, k), task="multilabel", attributes=[a],
                  metrics=list(metrics), n_bootstrap=cfg.n_bootstrap, seed=cfg.seed,
                  n_permutations=cfg.n_permutations, threshold=0.5, gap_macro="gap_of_macro")
        t = t[t["metric"].isin(metrics) | (t["kind"] == "pair")]   # a two-group gap's signed row
        parts.append(t[t["kind"] != "overall"].assign(labels_used=len(k)))
    return pd.concat(parts, ignore_index=True)


def audit_all(ev: Evaluation, cfg: PaperESpec) -> pd.DataFrame:
    """Macro AUROC / AUPRC (bootstrap intervals) of every run, and per group with the
    AUROC gaps (permutation p-values): one long table with ``strategy`` and ``dataset``."""
    parts = [audit_run(pred, labels_of(d, cfg), cfg).assign(strategy=s, dataset=d)
             for (s, d), pred in ev.predictions.items()]
    return pd.concat(parts, ignore_index=True)


def macro_overall(audit: pd.DataFrame) -> pd.DataFrame:
    """The overall macro rows of an audit table: strategy, dataset, metric, estimate, CI."""
    m = (audit["kind"] == "overall") & (audit["label"] == "macro")
    return audit.loc[m, ["strategy", "dataset", "metric", "estimate", "ci_low", "ci_high",
                         "n"]].reset_index(drop=True)


def gain_over_backbone(ev: Evaluation, cfg: PaperESpec) -> pd.DataFrame:
    """MedCAM minus its unaligned backbone (BarlowTwins-CXR), macro AUROC on each dataset's
    test split, with a paired bootstrap interval over the test images."""
    from ...adapt.multilabel import paired_macro_auroc_difference

    rows = []
    for d in cfg.datasets:
        a, b = ev.predictions.get(("medcam", d)), ev.predictions.get(("barlowtwins-cxr", d))
        if a is None or b is None:
            continue
        labels = list(labels_of(d, cfg))
        y = a[[f"true_{lab}" for lab in labels]].to_numpy(float)
        diff, lo, hi = paired_macro_auroc_difference(
            y, a[[f"score_{lab}" for lab in labels]].to_numpy(float),
            b[[f"score_{lab}" for lab in labels]].to_numpy(float),
            n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
        rows.append({"dataset": d, "gain": diff, "ci_low": lo, "ci_high": hi,
                     "n_test": len(a)})
    return pd.DataFrame(rows, columns=["dataset", "gain", "ci_low", "ci_high", "n_test"])


# ----------------------------------------------------------------------------- ablations


def ablation_variants(cfg: PaperESpec) -> list[dict[str, Any]]:
    """MedCAM's variants (ours): the loss terms, k, tau, and what alignment updates."""
    v = [{"variant": "global + local (MedCAM)", "use_global": True, "use_local": True},
         {"variant": "global only", "use_global": True, "use_local": False},
         {"variant": "local only", "use_global": False, "use_local": True}]
    v += [{"variant": f"k = {k}", "k": int(k)} for k in cfg.ablation_k if int(k) != cfg.k]
    v += [{"variant": f"tau = {t:g}", "tau": float(t)} for t in cfg.ablation_tau
          if float(t) != cfg.tau]
    other = "adapter" if cfg.update == "full" else "full"
    v += [{"variant": f"{other} update", "update": other}]
    v += [{"variant": f"{'learned' if cfg.attention == 'similarity' else 'similarity'} "
                      "attention", "attention": "learned" if cfg.attention == "similarity"
           else "similarity"}]
    return v


def _variant_run(base: Tower, mimic: Data, cfg: PaperESpec, variant: dict, lr: float
                 ) -> pd.DataFrame:
    over = {k: variant[k] for k in ("use_global", "use_local", "k", "tau") if k in variant}
    with _threads(cfg):
        mod, _ = align_tower(base.module, base.out_dim, mimic, cfg, update=variant.get("update"),
                             attention=variant.get("attention"), transform=base.transform,
                             **over)
    pred, _ = finetune_predict(mod, base.out_dim, mimic, cfg, lrs=[lr], transform=base.transform)
    return pred


def ablation(towers: dict[str, Tower], data: dict[str, Data], ev: Evaluation,
             cfg: PaperESpec) -> pd.DataFrame:
    """Each variant aligned from the BarlowTwins tower and fine-tuned on MIMIC with the
    learning rate MedCAM's grid selected; macro AUROC on MIMIC's test split, with the
    unaligned backbone as the reference row."""
    if not cfg.ablation:
        return pd.DataFrame(columns=["variant", "estimate", "ci_low", "ci_high"])
    mimic = data["mimic-cxr"]
    sel = ev.selection
    lr = float(sel[(sel["strategy"] == "medcam") & (sel["dataset"] == "mimic-cxr")
                   & sel["selected"]]["lr"].iat[0])
    rows = []
    preds = {"no alignment (BarlowTwins-CXR)": ev.predictions[("barlowtwins-cxr", "mimic-cxr")]}
    for v in ablation_variants(cfg):
        preds[v["variant"]] = _variant_run(towers["barlowtwins-cxr"], mimic, cfg, v, lr)
    for name, pred in preds.items():
        t = audit_run(pred, mimic.labels, cfg, attributes=[], metrics=("auroc",))
        r = t[t["label"] == "macro"].iloc[0]
        rows.append({"variant": name, "estimate": r["estimate"], "ci_low": r["ci_low"],
                     "ci_high": r["ci_high"], "lr": lr})
    return pd.DataFrame(rows)


def _first(t: pd.DataFrame, mask: pd.Series) -> pd.Series:
    return t[mask].iloc[0] if mask.any() else pd.Series(dtype=object)


def missingness(towers: dict[str, Tower], data: dict[str, Data], ev: Evaluation,
                cfg: PaperESpec) -> pd.DataFrame:
    """Does group-dependent EHR missingness reach the image-only predictions?

    The MIMIC world is rebuilt with ``missing_group``'s measurements missing at each level
    of ``missing_levels`` (images and labels identical); global-only, local-only and full
    MedCAM are aligned on each and fine-tuned; the AUROC gap between the group and the rest
    (test split, bootstrap interval, permutation p-value) is compared across levels.  The
    unaligned backbone, which never sees the EHR, is the control."""
    from ...synthetic.knobs import _split_key

    col, val = _split_key(cfg.missing_group)
    mimic = data["mimic-cxr"]
    sel = ev.selection
    lr = float(sel[(sel["strategy"] == "medcam") & (sel["dataset"] == "mimic-cxr")
                   & sel["selected"]]["lr"].iat[0])
    base = towers["barlowtwins-cxr"]
    variants = [{"variant": "global + local (MedCAM)"},
                {"variant": "global only", "use_local": False},
                {"variant": "local only", "use_global": False}]
    rows = []
    runs = [("no alignment (control)", None, ev.predictions[("barlowtwins-cxr", "mimic-cxr")])]
    if cfg.pixels == "real":
        # real EHR: no knob sets a group's missingness; MedCAM as run, beside the control
        runs.append(("global + local (MedCAM), the data's own EHR", None,
                     ev.predictions[("medcam", "mimic-cxr")]))
    for level in (cfg.missing_levels if cfg.pixels != "real" else []):
        world = mimic_with_missingness(mimic, float(level), cfg)
        measured = float(world.ehr_part("train")[..., 59:].mean())
        for v in variants:
            runs.append((v["variant"], (float(level), measured),
                         _variant_run(base, world, cfg, v, lr)))
    for name, lev, pred in runs:
        grp = (pred[col].astype(str) == val).map({True: val, False: "rest"})
        t = audit_run(pred.assign(missing_group=grp), mimic.labels, cfg,
                      attributes=["missing_group"], metrics=("auroc", "auroc_gap"))
        t = t[t["label"] == "macro"]
        g = _first(t, (t["kind"] == "group") & (t["group"] == val))
        r = _first(t, (t["kind"] == "group") & (t["group"] == "rest"))
        gap = _first(t, t["kind"] == "gap")
        pair = _first(t, (t["kind"] == "pair") & (t["metric"] == "auroc_diff"))
        # the audit's signed row is first minus second group (sorted); the table's is
        # rest minus the group
        sign = -1.0 if str(pair.get("group", "")).startswith(f"{val} vs ") else 1.0
        s_lo, s_hi = (sign * pair.get(k, np.nan) for k in ("ci_low", "ci_high"))
        rows.append({"variant": name, "ehr_missing": np.nan if lev is None else lev[0],
                     "measured_share": np.nan if lev is None else lev[1],
                     "auroc_group": g.get("estimate", np.nan),
                     "auroc_rest": r.get("estimate", np.nan),
                     "gap": r.get("estimate", np.nan) - g.get("estimate", np.nan),
                     "signed_ci_low": min(s_lo, s_hi), "signed_ci_high": max(s_lo, s_hi),
                     "gap_ci_low": gap.get("ci_low", np.nan),
                     "gap_ci_high": gap.get("ci_high", np.nan),
                     "p_value": gap.get("p_value", np.nan),
                     "n_group": int((grp == val).sum()), "n_rest": int((grp != val).sum()),
                     "labels_used": g.get("labels_used", 0)})
    return pd.DataFrame(rows)


__all__ = [
    "DATASET_NAMES",
    "Corpus",
    "Data",
    "Evaluation",
    "Tower",
    "ablation",
    "ablation_variants",
    "audit_all",
    "build_datasets",
    "finetune_all",
    "finetune_predict",
    "gain_over_backbone",
    "labels_of",
    "macro_overall",
    "missingness",
    "pretrain_towers",
    "pretraining_corpus",
    "runs_of",
    "shifted_knobs",
]
