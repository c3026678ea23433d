"""What each paper's ``full`` profile reads, written small, and its budget shrunk.

One preparer per paper (registered in :data:`compendium.rehearse.core.PREPARERS`).  Each
returns the run's parameters: only the data folders, the weights and the budget parameters
(epochs, sample counts, bootstrap sizes) differ from ``params/<paper>/full.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohorts.base import Cohort
from ..errors import InputError
from .core import Prepared, preparer
from .layouts import write_embeddings, write_mimic_cxr, write_nih

#: Pixel size of the miniature images (the decoders resize to each encoder's size).
IMAGE_SIZE = 128


# ----------------------------------------------------------------------------- shared parts


def nih_rows(wanted: dict[str, Sequence[str]], per_label: int, *, seed: int,
             negatives: int | None = None, views=("PA", "AP")) -> pd.DataFrame:
    """Rows of the real ``Data_Entry_2017_v2020`` table (shipped by torchxrayvision): per
    entry of ``wanted`` (name -> NIH findings, any of them positive) ``per_label`` patients'
    first images, plus ``negatives`` "No Finding" patients; one image per patient."""
    from ..cohorts.nih import nih_table, read_nih_metadata

    raw = read_nih_metadata()
    table = nih_table(raw)
    first = table[table["view"].isin(views)].drop_duplicates("patient_id")
    rng = np.random.default_rng([seed, 24])
    keep: list[str] = []
    for findings in wanted.values():
        pos = first[(first[list(findings)].to_numpy() == 1).any(axis=1)
                    & ~first["sample_id"].isin(keep)]
        keep += list(rng.choice(pos["sample_id"].to_numpy(), per_label, replace=False))
    neg = first[(first["No Finding"] == 1) & ~first["sample_id"].isin(keep)]
    keep += list(rng.choice(neg["sample_id"].to_numpy(), negatives or per_label, replace=False))
    return raw[raw["Image Index"].isin(set(keep))].reset_index(drop=True)


def synthetic_pixels_of(raw_nih: pd.DataFrame, *, seed: int) -> np.ndarray:
    """Synthetic-world pixels of real NIH rows (what each row's findings look like)."""
    from ..cohorts.nih import NIH_LABELS, nih_table
    from ..synthetic import render_rows, with_synthetic_pixels

    t = nih_table(raw_nih).reset_index(drop=True).assign(split="")
    c = Cohort(name="nih", table=t, labels=NIH_LABELS, source="real-metadata",
               pixel_column=None, task="multilabel")
    return render_rows(with_synthetic_pixels(c, seed=seed), None, size=IMAGE_SIZE)


def synthetic_cxr_rows(labels: Sequence[str], per_label: int, *, seed: int,
                       pool: int = 3000, ages: Sequence[float] = ()
                       ) -> tuple[Cohort, np.ndarray]:
    """Synthetic-world rows (MIMIC-CXR stand-ins): ``per_label`` positives of each label and
    as many "No Finding" rows, with their pixels.  ``ages``: ages drawn uniformly for the
    rows instead of the world's (so that a small sample holds every age band a paper
    compares)."""
    from ..synthetic import render_rows, synthetic_cxr

    c = synthetic_cxr(n=pool, seed=seed, name="mimic-cxr-rehearsal")
    t = c.table
    rng = np.random.default_rng([seed, 25])
    keep: list[int] = []
    for lab in [*labels, "No Finding"]:
        pos = np.flatnonzero((t[lab] == 1).to_numpy() & ~t.index.isin(keep))
        keep += list(rng.choice(pos, min(per_label, len(pos)), replace=False))
    keep = sorted(keep)
    sub = dataclasses.replace(c, table=t.iloc[keep].reset_index(drop=True))
    if len(ages):
        from ..synthetic.knobs import age_group

        sub.table["age"] = rng.choice(np.asarray(ages, dtype=float), len(sub.table))
        sub.table["age_group"] = age_group(sub.table["age"]).to_numpy()
    return sub, render_rows(sub, None, size=IMAGE_SIZE)


def nih_identifiers(raw: pd.DataFrame) -> set[str]:
    names = raw["Image Index"].astype(str)
    return set(names) | {n.rsplit(".", 1)[0] for n in names}


def mimic_identifiers(ids: pd.DataFrame) -> set[str]:
    return (set(ids["dicom_id"].astype(str)) | set(ids["subject_id"].astype(str))
            | set(ids["study_id"].astype(str)))


# ----------------------------------------------------------------------------- Paper D


@preparer("paper_d")
def prepare_paper_d(out: Path, *, seed: int = 0, device: str = "cpu") -> Prepared:
    """Paper D: MIMIC-CXR-JPG (+ MIMIC-IV hosp tables) and NIH in their layouts; the two
    vendors' embeddings files over every image and its five augmented views."""
    from ..imaging.augment import augment_views, view_ids

    per_label = 24
    data = out / "data"
    raw = nih_rows({"Atelectasis": ["Atelectasis"], "Edema": ["Edema"],
                    "Effusion": ["Effusion"],
                    "Opacity": ["Infiltration", "Consolidation", "Pneumonia"]},
                   per_label, seed=seed)
    nih_pix = synthetic_pixels_of(raw, seed=seed)
    rng = np.random.default_rng([seed, 26])
    patients = raw["Patient ID"].astype(str).unique()
    nih = write_nih(data / "nih-cxr14", raw, nih_pix,
                    test_patients=rng.choice(patients, len(patients) // 5, replace=False))
    cohort, mimic_pix = synthetic_cxr_rows(["Atelectasis", "Edema", "Effusion", "Opacity"],
                                           per_label, seed=seed)
    mimic, ids = write_mimic_cxr(data / "mimic-cxr-jpg", cohort, mimic_pix, seed=seed,
                                 mimic_iv=data / "mimic-iv")
    all_ids = [*raw["Image Index"].astype(str), *ids["dicom_id"]]
    pix = np.concatenate([nih_pix, mimic_pix])
    views = augment_views(pix, all_ids, seed=seed)
    vids = view_ids(all_ids)
    every, every_pix = [*all_ids, *vids], np.concatenate([pix, views.reshape(-1, *pix.shape[1:])])
    weights = {
        "medimageinsight": str(write_embeddings(out / "weights" / "medimageinsight.npz", every,
                                                every_pix, dim=1024, seed=seed)),
        "cxr-foundation": str(write_embeddings(out / "weights" / "cxr-foundation.npz", every,
                                               every_pix, dim=768, tokens=32, seed=seed))}
    params = {"data_roots": {"mimic-cxr": str(mimic), "nih": str(nih),
                             "mimic-iv": str(data / "mimic-iv")},
              "weights": weights,
              # budget: samples per class, bootstrap, k-means restarts and k range, UMAP
              # neighbours, boosting rounds, replicates of the interval-reading simulation
              "n_per_class": 20, "n_bootstrap": 20, "kmeans_n_init": 2, "k_range": [2, 3],
              "umap_neighbors": 5, "lightgbm": {"n_estimators": 20}, "interval_sims": 20}
    return Prepared(
        params=params, identifiers=nih_identifiers(raw) | mimic_identifiers(ids),
        covers=["NIH ChestX-ray14 layout (Data_Entry_2017_v2020.csv of real rows, "
                "images_001/images/*.png, train_val_list.txt/test_list.txt) read by the nih "
                "builder",
                "MIMIC-CXR-JPG layout (files/pXX/p<subject>/s<study>/<dicom>.jpg, metadata, "
                "split, CheXpert and NegBio tables) with MIMIC-IV hosp/patients.csv and "
                "admissions.csv for sex, age and race",
                "both vendors' .npz embeddings files (MedImageInsight (n, 1024); CXR "
                "Foundation (n, 32, 768) tokens, mean-pooled) including the ids "
                "'<sample_id>#aug1..5' of the augmented views",
                "sampling, patient-wise CV, LightGBM, held-out test, UMAP, k-means, per-group "
                "AUROC, augmentation comparison, tables and figures, full's small-cell rule"],
        skips=["the vendor tools themselves (they run outside the compendium): the .npz "
               "holds a fixed random projection of each image's pixels",
               "image decoding: with embeddings files the run never reads the JPEG/PNG pixels"])


# ----------------------------------------------------------------------------- Paper C


@preparer("paper_c")
def prepare_paper_c(out: Path, *, seed: int = 0, device: str = "cpu") -> Prepared:
    """Paper C: MIMIC-CXR-JPG with MIMIC-IV, an LLM labels CSV, DenseNet-121 (full size) and
    tiny RAD-DINO / DINOv2 in the Hugging Face cache, CXR Foundation's ``.npz``."""
    import tempfile

    from .weights import dinov2_repo, hf_snapshot, torchvision_densenet121

    data, hf = out / "data", out / "hf"
    # ages spread so that both of the paper's age groups (18-40, 80+) reach the test split
    cohort, pix = synthetic_cxr_rows(["Effusion", "Edema", "Opacity", "Cardiomegaly"], 12,
                                     seed=seed, ages=[25, 35, 55, 70, 82, 88])
    mimic, ids = write_mimic_cxr(data / "mimic-cxr-jpg", cohort, pix, seed=seed,
                                 mimic_iv=data / "mimic-iv")
    # the user's LLM labels: CheXpert's "No Finding" of each study with 10 % read otherwise
    chex = pd.read_csv(mimic / "mimic-cxr-2.0.0-chexpert.csv")
    rng = np.random.default_rng([seed, 27])
    nf = chex["No Finding"].fillna(0).to_numpy(dtype=int)
    flip = rng.random(len(nf)) < 0.1
    llm = data / "llm_no_finding.csv"
    pd.DataFrame({"study_id": chex["study_id"], "No Finding": np.where(flip, 1 - nf, nf)}
                 ).to_csv(llm, index=False)
    dinov2_repo(hf, "microsoft/rad-dino", size=518, patch=37, seed=seed)  # 14 x 14 tokens
    dinov2_repo(hf, "facebook/dinov2-base", size=224, seed=seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        torchvision_densenet121(Path(tmp), seed=seed)
        hf_snapshot(hf, "timm/densenet121.tv_in1k", Path(tmp))
    cxr_f = write_embeddings(out / "weights" / "cxr-foundation.npz", ids["dicom_id"], pix,
                             dim=768, tokens=32, seed=seed)
    params = {"data_roots": {"mimic-cxr": str(mimic), "mimic-iv": str(data / "mimic-iv")},
              "weights": {"cxr-foundation": str(cxr_f)}, "llm_labels": str(llm),
              # budget: epochs of the CNN, bootstrap, Open-i reports audited and labelled
              "finetune_epochs": 1, "n_bootstrap": 20, "openi_reports": 150,
              "openi_labelled": 100, "batch_size": 16}
    return Prepared(
        params=params, identifiers=mimic_identifiers(ids),
        covers=["MIMIC-CXR-JPG layout with MIMIC-IV hosp tables (as for Paper D); JPEG "
                "decoding and each encoder's preprocessing from the registry",
                "the LLM labels CSV (study_id, No Finding) read by compendium.labels",
                "RAD-DINO and DINOv2 as transformers Dinov2Model snapshots in the Hugging Face "
                "cache layout (config.json + model.safetensors; tiny: one layer, RAD-DINO "
                "with 37-px patches at its 518 px), read by the real loader",
                "DenseNet-121 at full size (random, safetensors in the Hugging Face cache as "
                "timm/densenet121.tv_in1k) trained end to end",
                "CXR Foundation's .npz (n, 32, 768), logistic heads, thresholds, FPR gaps "
                "with patient bootstrap, label-source tests, Open-i audit on the shipped "
                "real reports, tables and figures"],
        skips=["Google's CXR Foundation tool (its .npz is a random projection of the pixels)",
               "the user's LLM (its labels file is CheXpert's with 10 % flipped)",
               "pretrained weights' values (random weights of the real architectures)",
               "scale: MIMIC-CXR's 377k images (the end-to-end CNN streams its images from "
               "the pixel cache a batch at a time, as it would there: "
               "benchmarks/bench_stream.py measures the memory)"])


# ----------------------------------------------------------------------------- Paper B


@preparer("paper_b")
def prepare_paper_b(out: Path, *, seed: int = 0, device: str = "cpu") -> Prepared:
    """Paper B: INSPECT (NIfTI volumes, the TSVs, the OMOP person table), the user's EHR
    features CSV, MedImageInsight's slice ``.npz``, MedSigLIP (tiny, Hugging Face cache) and
    BiomedCLIP (tiny, Hugging Face cache)."""
    from ..papers.paper_b.spec import TASKS
    from ..synthetic import render_volumes, synthetic_inspect
    from .layouts import write_inspect
    from .weights import bert_tokenizer_repo, open_clip_repo, siglip_repo

    n_slices, n, depth, size = 2, 120, 16, 48
    data, hf = out / "data", out / "hf"
    cohort = synthetic_inspect(n=n, seed=seed, prognosis_strength=3.0)
    vols = render_volumes(cohort, None, size=size, depth=depth)
    root, ids = write_inspect(data / "inspect", cohort, vols, seed=seed,
                              labels={real: syn for syn, real, _ in TASKS.values()})
    # the user's EHR features: one row per study (impression_id + numeric columns); here
    # the synthetic world's 48-h record summarised, as Paper B's synthetic run does
    from ..synthetic import render_ehr

    ehr = render_ehr(cohort, None, findings=["frailty"]).mean(axis=1)
    ehr_csv = data / "inspect" / "ehr_features.csv"
    pd.DataFrame(ehr, columns=[f"ehr_{j:03d}" for j in range(ehr.shape[1])]).assign(
        impression_id=ids["impression_id"]).to_csv(ehr_csv, index=False)
    # MedImageInsight's slice embeddings, ids '<impression_id>#z<k>' (the pipeline's slices)
    from ..imaging.io import ct_slices, read_ct_volume
    from ..papers.paper_b.pipeline import slice_ids

    sl = np.stack([ct_slices(read_ct_volume(root / "CTPA" / f"{i}.nii.gz"), n_slices=n_slices,
                             size=64, window=(-600.0, 1500.0)) for i in ids["image_id"]])
    mii = write_embeddings(out / "weights" / "medimageinsight_slices.npz",
                           slice_ids(ids["impression_id"], n_slices),
                           sl.reshape(-1, *sl.shape[2:]), dim=1024, seed=seed)
    # tiny: MedSigLIP with 32-px patches (196 tokens at 448 px), BiomedCLIP with the
    # loader's tiny config (their configs travel with the weights)
    siglip_repo(hf, "google/medsiglip-448", size=448, embed_dim=1152, patch=32, seed=seed)
    bert_tokenizer_repo(hf, "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract")
    open_clip_repo(hf, "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", "biomedclip",
                   {}, seed=seed, tiny=True)
    params = {"data_roots": {"inspect": str(root)}, "weights": {"medimageinsight": str(mii)},
              "ehr_features": str(ehr_csv),
              # budget: slices per study and their size, bootstrap, permutations, the
              # smallest group audited, epochs of the MLP, adversary, baseline and MIL
              "n_slices": n_slices, "slice_size": 64, "n_bootstrap": 20,
              "n_permutations": 20, "min_group_size": 5, "mlp_epochs": 2,
              "adversary_epochs": 2, "baseline_epochs": 1, "mil_epochs": 2,
              "sweep_points": 11, "batch_size": 16}
    idents = (set(ids["impression_id"]) | set(ids["image_id"])
              | {str(p) for p in ids["person_id"]})
    return Prepared(
        params=params, identifiers=idents,
        covers=["INSPECT layout (labels_/study_mapping_/splits_<date>.tsv, CTPA/<image_id>"
                ".nii.gz int16 with scaling, OMOP person.csv) read by the inspect builder; "
                "NIfTI decoding, the lung window, slice sampling and resizing",
                "the EHR features CSV (impression_id + numeric columns)",
                "MedImageInsight's slice .npz (ids '<impression_id>#z<k>')",
                "MedSigLIP as a transformers SiglipModel snapshot in the Hugging Face cache "
                "(tiny: one layer per tower, 32-px patches), BiomedCLIP as an open_clip hub "
                "repository (open_clip_config.json + open_clip_model.safetensors, tiny: "
                "timm's ViT-Ti/16 image tower; BiomedBERT's config.json beside its "
                "tokenizer), read by the real loaders",
                "probes, thresholds, the audit with its group-size rule, mitigations, the "
                "baseline, MIL pooling, tables and figures"],
        skips=["MedImageInsight's tool (its .npz is a random projection of the slices)",
               "the tokenizers (Paper B encodes images only)",
               "pretrained weights' values (random weights of the real architectures) and "
               "their full sizes (tiny configs of the same classes)",
               "scale: 32 slices at 448 px (the budget here: 2 slices at 64 px)"])


# ----------------------------------------------------------------------------- Paper A


@preparer("paper_a")
def prepare_paper_a(out: Path, *, seed: int = 0, device: str = "cpu") -> Prepared:
    """Paper A: the NIH layout holding real NIH 6x200 rows (``GROUP_SIZE`` of each disease
    and age/sex group), and the six encoders' weights where a user's would be: CLIP
    ViT-B/16, BiomedCLIP (with BiomedBERT's config beside its tokenizer) and the ImageNet
    ViT-B/16 tiny in the Hugging Face cache (their configs travel with the weights), GLoRIA
    as a safetensors file and the MedCLIP models as folders holding ``pytorch_model.bin``,
    their image towers at full size (bare state dicts of architectures fixed in the authors'
    code), their BioClinicalBERT text towers tiny (from that repository's config.json)."""
    from ..cohorts import build_cohort
    from ..cohorts.nih import read_nih_metadata
    from .weights import (
        TINY_VIT_ARGS,
        bert_tokenizer_repo,
        clinical_bert_repo,
        full_size_checkpoint,
        open_clip_repo,
        timm_repo,
        torch_checkpoint,
    )

    group_size = 10
    data, hf, w = out / "data", out / "hf", out / "weights"
    six = build_cohort("nih-6x200", seed=seed).table
    # the paper's six diseases: group_size real rows of each disease x age/sex group
    rng = np.random.default_rng([seed, 28])
    keep = [sid for _, g in six.groupby(["disease", "group"], sort=True)
            for sid in rng.choice(g["sample_id"].astype(str).to_numpy(), group_size,
                                  replace=False)]
    raw = read_nih_metadata()
    raw = raw[raw["Image Index"].isin(set(keep))].reset_index(drop=True)
    nih = write_nih(data / "nih-cxr14", raw, synthetic_pixels_of(raw, seed=seed))
    bert_tokenizer_repo(hf, "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract")
    clinical_bert_repo(hf)
    open_clip_repo(hf, "timm/vit_base_patch16_clip_224.openai", "clip-vit-b-16", {},
                   seed=seed, tiny=True)
    open_clip_repo(hf, "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", "biomedclip",
                   {}, seed=seed, tiny=True)
    timm_repo(hf, "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", "vit-b-16-imagenet",
              "vit_base_patch16_224", seed=seed, model_args=TINY_VIT_ARGS)
    gloria = full_size_checkpoint("gloria", w / "chexpert_resnet50.safetensors", seed=seed)
    mvit = torch_checkpoint("medclip-vit", w / "medclip-vit" / "pytorch_model.bin", seed=seed)
    mrn = torch_checkpoint("medclip-rn50", w / "medclip-resnet" / "pytorch_model.bin", seed=seed)
    params = {"data_roots": {"nih": str(nih)},
              "weights": {"gloria": str(gloria), "medclip-vit": str(mvit.parent),
                          "medclip-rn50": str(mrn.parent)},
              # budget: images per disease and group (10: the least the stratified split
              # takes), draws of the random prompt families, epochs of the probes and of
              # LoRA / fine-tuning, early stopping, the training images of LoRA and
              # fine-tuning (one per disease and group: the full-size ResNet-50 / Swin-T
              # towers train at 224 px on a CPU), one learning rate for LoRA and
              # fine-tuning (the probes keep the full grids), bootstrap, permutations, null
              # simulations
              "group_size": group_size, "n_draws": 2, "epochs": 2,
              "adapt_epochs": 1, "patience": 1, "adapt_train_rows": 24,
              "learning_rates": {"linear": [0.0001, 0.001, 0.01], "mlp": [0.0001, 0.001, 0.01],
                                 "lora": [0.001], "finetune": [0.0001]},
              "n_bootstrap": 20, "n_permutations": 20, "null_sims": 20, "batch_size": 8}
    return Prepared(
        params=params, identifiers=nih_identifiers(raw),
        covers=[f"NIH ChestX-ray14 layout holding {len(raw)} real Data_Entry rows of NIH 6x200 "
                f"({group_size} per disease and age/sex group; synthetic pixels), read by the "
                "nih-6x200 builder (qualification, sampling, patient-wise split)",
                "CLIP ViT-B/16 and BiomedCLIP as open_clip hub repositories "
                "(open_clip_config.json + open_clip_model.safetensors; BiomedBERT's "
                "config.json beside its tokenizer) and the ImageNet ViT-B/16 as a timm hub "
                "repository (config.json with model_args + model.safetensors) in the Hugging "
                "Face cache, tiny (configs read by the real loaders); BioClinicalBERT's "
                "tokenizer and config.json there; GLoRIA as a safetensors file and MedCLIP "
                "ViT / ResNet as folders holding pytorch_model.bin (weights_only=True): image "
                "towers full size, text towers tiny (BioClinicalBERT's config)",
                "PNG decoding and each encoder's preprocessing from the registry (224 px), the "
                "embeddings cache, zero-shot prompts, linear / MLP probes with their learning-"
                "rate grids, LoRA of every model, full fine-tuning (CLIP's in the ImageNet "
                "ViT-B/16), the audit with bootstrap and permutation tests, the null "
                "simulation, tables and figures, full's small-cell rule"],
        skips=["pretrained weights' values and the authors' exact key names (the checkpoints "
               "are the registry's own architectures, random)",
               "the real vocabularies (the tokenizers hold ~150 WordPieces)",
               "full-size CLIP, BiomedCLIP, ViT-B/16 and BioClinicalBERT (tiny configs of "
               "the same classes: one or a few blocks, real embedding and input sizes); the "
               "image towers of GLoRIA and MedCLIP run full size (their releases are bare "
               "state dicts of a ResNet-50 / Swin-T fixed in the authors' code)",
               "scale: 1,200 images and the learning-rate grids of LoRA and fine-tuning "
               f"(here {group_size} images per disease and group, one learning rate each, "
               "and LoRA and fine-tuning train on 24 of the training images)"])


# ----------------------------------------------------------------------------- Paper E


@preparer("paper_e")
def prepare_paper_e(out: Path, *, seed: int = 0, device: str = "cpu") -> Prepared:
    """Paper E: MIMIC-CXR-JPG with the MIMIC-IV benchmark stays linked to it, NIH, VinDr-CXR
    (DICOM) and CheXpert in their layouts, and every model's release-style checkpoint; every
    cohort is built with its builder and every encoder loaded with its real loader, then the
    full profile runs (alignment, fine-tuning and the audit on streamed images)."""
    from ..encoders import load_encoder
    from .layouts import write_chexpert, write_mimic_iv_ehr, write_vindr
    from .weights import clinical_bert_repo, full_size_checkpoint, torch_checkpoint

    data, w = out / "data", out / "weights"
    clinical_bert_repo(out / "hf")
    cohort, pix = synthetic_cxr_rows(["Effusion", "Edema", "Cardiomegaly"], 8, seed=seed)
    mimic, ids = write_mimic_cxr(data / "mimic-cxr-jpg", cohort, pix, seed=seed,
                                 mimic_iv=data / "mimic-iv")
    meta = pd.read_csv(mimic / "mimic-cxr-2.0.0-metadata.csv")
    when = pd.to_datetime(meta["StudyDate"].astype(str), format="%Y%m%d") + pd.Timedelta(hours=12)
    t = cohort.table
    stays = pd.DataFrame({
        "subject_id": meta["subject_id"], "hadm_id": 20_000_000 + np.arange(len(meta)),
        "stay_id": 30_000_000 + np.arange(len(meta)),
        "intime": (when - pd.Timedelta(hours=10)).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "outtime": (when + pd.Timedelta(hours=30)).dt.strftime("%Y-%m-%d %H:%M:%S"),
        "gender": t["sex"].to_numpy(), "age": t["age"].fillna(60).astype(int).to_numpy(),
        "race": "WHITE", "mortality_inhospital": (np.arange(len(meta)) % 5 == 0).astype(int)})
    ehr = write_mimic_iv_ehr(data / "mimic-iv-benchmark", stays, seed=seed)
    raw = nih_rows({"Effusion": ["Effusion"], "Edema": ["Edema"]}, 8, seed=seed)
    nih = write_nih(data / "nih-cxr14", raw, synthetic_pixels_of(raw, seed=seed))
    _, other_pix = synthetic_cxr_rows(["Effusion", "Cardiomegaly"], 8, seed=seed + 1)
    vindr, vindr_ids = write_vindr(data / "vindr-cxr", other_pix, seed=seed, n_test=6)
    chex, _ = write_chexpert(data / "chexpert", other_pix, seed=seed, n_valid=6)
    weights = {
        "resnet50-barlowtwins-cxr": torch_checkpoint("resnet50-barlowtwins-cxr",
                                                     w / "barlowtwins-cxr.pth", seed=seed),
        "eva-x-tiny": torch_checkpoint("eva-x-tiny", w / "eva_x_ti_16.pt", seed=seed),
        "eva-x-small": torch_checkpoint("eva-x-small", w / "eva_x_s_16.pt", seed=seed),
        "convirt": torch_checkpoint("convirt", w / "convirt.pth", seed=seed),
        "gloria": full_size_checkpoint("gloria", w / "chexpert_resnet50.safetensors",
                                       seed=seed),
        "medclip-rn50": torch_checkpoint("medclip-rn50", w / "medclip-resnet" /
                                         "pytorch_model.bin", seed=seed).parent,
        "medclip-vit": torch_checkpoint("medclip-vit", w / "medclip-vit" / "pytorch_model.bin",
                                        seed=seed).parent}
    roots = {"mimic-cxr": str(mimic), "mimic-iv-ehr": str(ehr), "nih": str(nih),
             "vindr": str(vindr), "chexpert": str(chex)}
    params = {"data_roots": roots, "weights": {k: str(v) for k, v in weights.items()},
              # budget: one epoch of everything, one learning rate, small grids and
              # resamples; every strategy is fine-tuned on MIMIC-CXR, and BarlowTwins-CXR and
              # MedCAM (the pair of the gain table) also on each out-of-distribution dataset
              # (the other six repeat that code path with other towers, each of them already
              # fine-tuned on MIMIC-CXR)
              "ood_strategies": ["barlowtwins-cxr", "medcam"],
              "align_epochs": 1, "pretrain_epochs": 1, "max_epochs": 1, "eval_every": 1,
              "patience": 1, "lrs": [1e-3], "ft_batch_size": 8, "ablation_k": [10],
              "ablation_tau": [0.1], "min_eval_rows": 4, "n_bootstrap": 20,
              "n_permutations": 20}

    def verify() -> list[str]:
        from ..cohorts import build_cohort
        from ..runner import resolve_params

        lines = []
        e = build_cohort("mimic-iv-ehr", root=ehr, mimic_cxr=mimic, require_cxr=True)
        if len(e.table) != len(stays):
            raise InputError(f"rehearse paper_e: {len(e.table)} of {len(stays)} stays linked "
                             "to their CXR")
        lines.append(f"mimic-iv-ehr builder: {len(e.table)} stays, each linked to its frontal "
                     "MIMIC-CXR image")
        for name, kw in (("mimic-cxr", {"root": mimic, "mimic_iv": data / "mimic-iv"}),
                         ("nih", {"root": nih}), ("vindr-cxr", {"root": vindr}),
                         ("chexpert", {"root": chex})):
            c = build_cohort(name, **kw)
            lines.append(f"{name} builder: {len(c.table)} rows from the rehearsal's files")
        spec = resolve_params("paper_e", "full", overrides=[
            f"data_roots={json.dumps(roots)}",
            f"weights={json.dumps(params['weights'])}"])
        for enc in spec.encoders_needed():
            load_encoder(enc, weights=spec.weights.get(enc) or None, progress=False)
            lines.append(f"{enc}: built and loaded by its real loader")
        return lines

    return Prepared(
        params=params,
        identifiers=mimic_identifiers(ids) | nih_identifiers(raw) | set(vindr_ids),
        covers=["MIMIC-CXR-JPG with MIMIC-IV hosp tables, the MIMIC-IV benchmark extraction "
                "(<subject_id>/stays.csv, episode1_timeseries.csv with the 17 variables), NIH, "
                "VinDr-CXR (annotations of real VinBigData rows, DICOM images) and CheXpert "
                "(real rows of the released table, JPEGs) in their layouts",
                "every model's checkpoint as its release ships it (.pth / .pt state dicts read "
                "with weights_only=True, GLoRIA as safetensors, MedCLIP folders), full size "
                "but the BioClinicalBERT text towers (tiny, from that repository's "
                "config.json beside its tokenizer)",
                "the full profile's preflight (spec.check: every folder and weight found)",
                "the run: stays linked to their images and EHR windows, images streamed from "
                "the pixel cache through each model's preprocessing, image-EHR pretraining, "
                "MedCAM alignment, fine-tuning, the audit, tables and figures, full's "
                "small-cell rule"],
        skips=["the budget: one epoch, one learning rate, a few resamples",
               "Tables 3-4's other six strategies on NIH, VinDr-CXR and CheXpert (each is "
               "fine-tuned on MIMIC-CXR; BarlowTwins-CXR and MedCAM run on every dataset)",
               "the released weights' values (the checkpoints are the registry's "
               "architectures, random)"],
        verify=verify)
