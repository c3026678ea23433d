"""Prompt families and zero-shot classification."""

import numpy as np
import pytest
import torch

from compendium.adapt.prompts import (CLIP_TEMPLATES, CXR_CLIP_SYNONYMS, CXR_CLIP_TEMPLATES,
                                      GLORIA_VOCAB, gloria_candidates, list_prompt_families,
                                      prompt_draw)
from compendium.adapt.tiny import TinyClipEncoder
from compendium.adapt.zeroshot import zero_shot, zero_shot_eval
from compendium.errors import ConfigError

from tests.adapt_synth import synthetic_rows

CLASSES = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Pneumothorax"]


def test_families_registered():
    assert list_prompt_families() == ["clip", "cxr-clip", "gloria"]
    with pytest.raises(ConfigError, match="unknown prompt family"):
        prompt_draw("medclip", CLASSES)


def test_clip_prompts_are_the_templates():
    p = prompt_draw("clip", ["Edema"], seed=0)
    assert p["Edema"] == [t.format("edema") for t in CLIP_TEMPLATES]
    assert p == prompt_draw("clip", ["Edema"], seed=123)        # deterministic family


def test_gloria_prompts_compose_vocabularies():
    p = prompt_draw("gloria", CLASSES, seed=7)
    for c in CLASSES:
        vocab = GLORIA_VOCAB[c]
        assert len(p[c]) == 5 and len(set(p[c])) == 5
        for text in p[c]:
            assert any(sub in text for sub in vocab["subtype"])
            assert text in gloria_candidates(c)
            rest = text
            sev = [s for s in vocab["severity"] if s and rest.startswith(s + " ")]
            if sev:
                rest = rest[len(max(sev, key=len)) + 1:]
            sub = [s for s in vocab["subtype"] if rest.startswith(s)]
            assert sub, text
            loc = rest[len(max(sub, key=len)):].strip()
            assert loc in vocab["location"], text
    n_candidates = len(gloria_candidates("Effusion"))
    assert n_candidates == 5 * 4 * 4
    assert p == prompt_draw("gloria", CLASSES, seed=7)
    assert p != prompt_draw("gloria", CLASSES, seed=8)
    # aliases map to the vocabulary, unknown classes get generic compositions
    assert (prompt_draw("gloria", ["Pleural Effusion"], seed=7)["Pleural Effusion"]
            == prompt_draw("gloria", ["Effusion"], seed=7)["Effusion"])
    assert all("nodule" in t for t in prompt_draw("gloria", ["Nodule"], seed=0)["Nodule"])


def test_cxr_clip_prompts():
    p = prompt_draw("cxr-clip", ["Pneumothorax"], seed=1, n_prompts=3)["Pneumothorax"]
    allowed = {(t.format(s)[0].upper() + t.format(s)[1:]) for t in CXR_CLIP_TEMPLATES
               for s in CXR_CLIP_SYNONYMS["Pneumothorax"]}
    assert len(p) == 3 and set(p) <= allowed
    assert p == prompt_draw("cxr-clip", ["Pneumothorax"], seed=1, n_prompts=3)["Pneumothorax"]
    with pytest.raises(ConfigError, match="n_prompts"):
        prompt_draw("cxr-clip", ["Edema"], n_prompts=0)


class AgreeingEncoder:
    """Text of class c embeds near direction c (whatever the family); images likewise."""

    has_text = True

    def __init__(self, dim=16):
        self.dim = dim

    def encode_text(self, texts):
        out = []
        for t in texts:
            low = t.lower()
            hits = [i for i, c in enumerate(CLASSES)
                    if c.lower()[:5] in low or any(w in low for w in _KEYWORDS[c])]
            v = np.zeros(self.dim)
            v[hits[0]] = 1.0
            rng = np.random.default_rng(abs(hash(t)) % 2**32)
            out.append(v + 0.1 * rng.normal(size=self.dim))
        return torch.tensor(np.array(out), dtype=torch.float32)


_KEYWORDS = {"Atelectasis": ("volume loss", "collapse"),
             "Cardiomegaly": ("heart", "cardiac", "cardiothoracic"),
             "Consolidation": ("airspace", "opacity"),
             "Edema": ("congestion", "haziness", "edema"),
             "Effusion": ("pleural", "effusion", "fluid"),
             "Pneumothorax": ("pneumothorax", "air in")}


def _agreeing_data(n=120, seed=0):
    rows, y = synthetic_rows(n, CLASSES, seed=seed)
    rng = np.random.default_rng(seed)
    emb = rng.normal(scale=0.5, size=(n, 16))
    emb[np.arange(n), y] += 1.0
    val = (rows["split"] != "test").to_numpy()
    return {"val": (emb[val], rows[val].reset_index(drop=True)),
            "test": (emb[~val], rows[~val].reset_index(drop=True))}, y


def test_zero_shot_with_agreeing_embeddings_beats_chance():
    data, _ = _agreeing_data()
    table, summary, tables = zero_shot_eval(AgreeingEncoder(), data, CLASSES, n_draws=3)
    assert set(summary["family"]) == {"clip", "gloria", "cxr-clip"}
    assert (summary["test_accuracy"] > 0.7).all()          # chance is 1/6
    assert summary["chosen"].sum() == 1
    best = summary.loc[summary["chosen"], "family"].item()
    assert best == summary.loc[summary["val_accuracy"].idxmax(), "family"]
    assert table.equals(tables[best])
    assert summary.set_index("family").loc["clip", "n_draws"] == 1
    assert summary.set_index("family").loc["gloria", "n_draws"] == 3


def test_zero_shot_on_tiny_open_clip_is_seeded():
    enc = TinyClipEncoder(seed=0)
    emb = enc.encode_images(torch.randn(8, 3, 32, 32)).detach().numpy()
    a = zero_shot(enc, emb, CLASSES[:3], "gloria", n_draws=2, seed=5)
    b = zero_shot(enc, emb, CLASSES[:3], "gloria", n_draws=2, seed=5)
    assert a.probs.shape == (2, 8, 3)
    np.testing.assert_allclose(a.probs.sum(-1), 1.0, rtol=1e-6)
    assert a.prompts == b.prompts and np.array_equal(a.probs, b.probs)
    assert a.prompts[0] != a.prompts[1]


def test_zero_shot_tables_hold_every_draw_as_a_run_or_the_ensemble():
    data, _ = _agreeing_data()
    runs, summary, _ = zero_shot_eval(AgreeingEncoder(), data, CLASSES, n_draws=3,
                                      families=["gloria"])
    ens, _, _ = zero_shot_eval(AgreeingEncoder(), data, CLASSES, n_draws=3,
                               families=["gloria"], combine="ensemble")
    n_test = len(data["test"][1])
    assert len(runs) == 3 * n_test and sorted(runs["run"].unique()) == [0, 1, 2]
    assert len(ens) == n_test and "run" not in ens.columns
    # the runs' mean accuracy is the summary's; the ensemble's mean probabilities are the runs'
    score_cols = [c for c in runs.columns if c.startswith("score_")]
    acc = np.mean([(g[score_cols].to_numpy().argmax(1) ==
                    g["y_true"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()).mean()
                   for _, g in runs.groupby("run")])
    assert acc == pytest.approx(summary["test_accuracy"].item())
    mean_p = runs.groupby("sample_id", sort=False)[score_cols].mean()
    np.testing.assert_allclose(mean_p.loc[ens["sample_id"]].to_numpy(),
                               ens[score_cols].to_numpy(), atol=1e-12)
    with pytest.raises(ConfigError, match="combine"):
        zero_shot_eval(AgreeingEncoder(), data, CLASSES, combine="vote")
