"""Paper B and the lower-layer pieces it added: slice pooling (mean, max, attention MIL), the
slice CNN + GRU baseline, the toy CT slice encoders, CT volume reading, the paired
bootstrap, the synthetic world's emboli / prognosis / EHR options, Paper B's age bands,
gaps, stand-ins, file-based slice embeddings, claim checks and the full-profile error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium import cli
from compendium.errors import ConfigError, DataNotFoundError, InputError
from compendium.runner import resolve_params


def _cfg(profile="smoke", *overrides):
    return resolve_params("paper_b", profile, overrides=list(overrides))


def _auroc(y, s):
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(y, s)


# ------------------------------------------------------------------ pooling


def test_pool_slices_by_hand():
    from compendium.adapt.pooling import pool_slices

    E = np.array([[[1.0, 5.0], [3.0, -1.0]], [[0.0, 0.0], [2.0, 4.0]]])
    assert pool_slices(E, "mean").tolist() == [[2.0, 2.0], [1.0, 2.0]]
    assert pool_slices(E, "max").tolist() == [[3.0, 5.0], [2.0, 4.0]]
    with pytest.raises(ConfigError, match="attention is learned"):
        pool_slices(E, "attention")
    with pytest.raises(InputError, match="studies, slices, dims"):
        pool_slices(E[0], "mean")


def _focal_bags(n, rng, slices=16, d=8, shift=2.0):
    """Positives carry a shifted feature on one random slice of sixteen: a focal sign."""
    X = rng.normal(size=(n, slices, d))
    y = rng.integers(0, 2, n)
    where = rng.integers(0, slices, n)
    X[np.arange(n), where, 0] += shift * 2 * y
    return X, y, where


def test_attention_mil_finds_a_focal_sign_that_mean_pooling_dilutes():
    from sklearn.linear_model import LogisticRegression

    from compendium.adapt.pooling import AttentionMILProbe, pool_slices

    rng = np.random.default_rng(0)
    Xtr, ytr, _ = _focal_bags(600, rng)
    Xte, yte, where = _focal_bags(300, rng)
    mil = AttentionMILProbe(max_epochs=60, patience=15, random_state=0).fit(Xtr, ytr)
    p_mil = mil.predict_proba(Xte)[:, 1]
    lr = LogisticRegression().fit(pool_slices(Xtr, "mean"), ytr)
    p_mean = lr.predict_proba(pool_slices(Xte, "mean"))[:, 1]
    assert _auroc(yte, p_mil) > 0.85
    assert _auroc(yte, p_mean) < _auroc(yte, p_mil) - 0.1
    a = mil.slice_weights(Xte)
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-6)
    pos = yte == 1
    # on positives the attention goes to the slice with the sign
    assert (a[pos].argmax(1) == where[pos]).mean() > 0.7
    again = AttentionMILProbe(max_epochs=60, patience=15, random_state=0).fit(Xtr, ytr)
    np.testing.assert_array_equal(again.predict_proba(Xte), mil.predict_proba(Xte))


def test_attention_mil_takes_bags_of_different_lengths():
    """Bags of 3 to 12 slices: padding is masked (a bag scores the same alone and padded in
    a batch with longer ones; its slice weights sum to 1 over its own slices), and the
    focal sign is still found."""
    from compendium.adapt.pooling import AttentionMILProbe, pad_bags

    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 12, 8))
    y = rng.integers(0, 2, 500)
    where = rng.integers(0, 12, 500)
    lengths = rng.integers(3, 13, len(y))
    where = np.minimum(where, lengths - 1)
    bags = []
    for i, k in enumerate(lengths):
        b = X[i, :k].copy()
        b[where[i], 0] = rng.normal() + 4.0 * y[i]
        bags.append(b)
    mil = AttentionMILProbe(max_epochs=40, patience=10, random_state=0).fit(bags[:400], y[:400])
    p = mil.predict_proba(bags[400:])[:, 1]
    assert _auroc(y[400:], p) > 0.85
    alone = np.array([mil.predict_proba([b])[0, 1] for b in bags[400:410]])
    np.testing.assert_allclose(alone, p[:10], rtol=1e-5, atol=1e-6)
    w = mil.slice_weights(bags[400:410])
    assert [len(a) for a in w] == list(lengths[400:410])
    np.testing.assert_allclose([a.sum() for a in w], 1.0, atol=1e-6)
    import torch

    batch = pad_bags([{"x": torch.ones(2, 3), "y": torch.tensor(1.0)},
                      {"x": torch.zeros(4, 3), "y": torch.tensor(0.0)}])
    assert batch["x"].shape == (2, 4, 3) and torch.isnan(batch["x"][0, 2:]).all()
    with pytest.raises(InputError, match="different embedding sizes"):
        mil.predict_proba([np.zeros((2, 8)), np.zeros((2, 7))])


def test_attention_mil_refuses_one_class():
    from compendium.adapt.pooling import AttentionMILProbe

    with pytest.raises(InputError, match="both classes"):
        AttentionMILProbe().fit(np.zeros((4, 2, 3)), [1, 1, 1, 1])


def test_slice_recurrent_baseline_learns_a_bright_spot_on_any_slice():
    from compendium.adapt.volume_model import SliceRecurrentClassifier

    rng = np.random.default_rng(1)
    n, S = 120, 4
    V = rng.integers(0, 60, (n, S, 16, 16)).astype(np.uint8)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        z, r, c = rng.integers(0, S), rng.integers(0, 12), rng.integers(0, 12)
        V[i, z, r:r + 4, c:c + 4] = 250
    est = SliceRecurrentClassifier(max_epochs=25, patience=25, random_state=0).fit(V, y)
    p = est.predict_proba(V)
    assert p.shape == (n, 2) and np.allclose(p.sum(1), 1)
    assert _auroc(y, p[:, 1]) > 0.85
    with pytest.raises(InputError, match="uint8"):
        est.predict_proba(V.astype(float))


# ------------------------------------------------------------------ toy slice encoders


def test_slice_toy_features_are_triangle_distances_to_the_centroids():
    """centre_norm - 2 conv(x) + |z|^2 is the squared distance of every whitened patch to
    every centroid: checked patch by patch against numpy."""
    import torch

    from compendium.encoders import toy_ct

    spec = toy_ct.SliceToySpec(n_filters=4, patch=3, stride=1, grid=1, n_patches=500)
    rng = np.random.default_rng(0)
    slices = rng.random((20, 10, 10))
    st = toy_ct.learn_centroids(slices, spec, seed=0)
    net = toy_ct._net(spec)
    net.load_state_dict({k: torch.tensor(v) for k, v in st.items()})
    x = rng.random((1, 1, 6, 6)).astype(np.float32)
    feats = net(torch.from_numpy(x)).detach().numpy()[0]
    # recompute by hand: whiten every patch as learn_centroids did
    p = spec.patch
    patches = np.lib.stride_tricks.sliding_window_view(slices, (p, p), axis=(1, 2))
    r2 = np.random.default_rng([0, 31])
    n = spec.n_patches
    idx, ys, xs = (r2.integers(0, patches.shape[k], n) for k in range(3))
    P = patches[idx, ys, xs].reshape(n, -1)
    mu = P.mean(0)
    w, u = np.linalg.eigh(np.cov(P - mu, rowvar=False))
    W = u @ np.diag(1 / np.sqrt(np.clip(w, 0, None) + spec.whitening_eps)) @ u.T
    cw = st["conv.weight"].reshape(4, -1)                 # (W c_k)
    C = np.linalg.lstsq(W, cw.T, rcond=None)[0].T          # the centroids c_k
    xp = np.lib.stride_tricks.sliding_window_view(x[0, 0], (p, p)).reshape(-1, p * p)
    z = (xp - mu) @ W
    d = ((z[:, None, :] - C[None]) ** 2).sum(-1)           # (patches, K)
    tri = np.maximum(0, d.mean(1, keepdims=True) - d)
    np.testing.assert_allclose(feats, tri.mean(0), rtol=1e-3, atol=1e-3)


def test_slice_toys_are_registered_with_sizes_in_the_models_ratio():
    from compendium.encoders import get_entry
    from compendium.papers.paper_b.spec import STAND_INS

    dims = {m: get_entry(t).embed_dim for m, t in STAND_INS.items()}
    real = {m: get_entry(m).embed_dim for m in STAND_INS}
    assert dims["biomedclip"] < dims["medimageinsight"] < dims["medsiglip"]
    for m in dims:
        assert dims[m] / dims["medimageinsight"] == pytest.approx(real[m] / real["medimageinsight"])
    assert all(get_entry(t).kind == "toy" for t in STAND_INS.values())


# ------------------------------------------------------------------ CT volumes


def test_read_ct_volume_nifti_and_dicom_series(tmp_path):
    import nibabel as nib
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from compendium.imaging.io import ct_slices, read_ct_volume

    vol = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3) * 10 - 1000
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "v.nii.gz")
    np.testing.assert_allclose(read_ct_volume(tmp_path / "v.nii.gz"), vol)
    series = tmp_path / "series"
    series.mkdir()
    for k, z in enumerate([20.0, 0.0, 10.0]):          # written out of order
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = pydicom.uid.CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(series / f"s{k}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.Rows, ds.Columns = 2, 3
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.ImagePositionPatient = [0, 0, z]
        ds.PixelData = (np.full((2, 3), int(z) + 1024, np.uint16)).tobytes()
        ds.save_as(series / f"s{k}.dcm", enforce_file_format=True)
    v = read_ct_volume(series)
    assert v.shape == (3, 2, 3)                        # (columns, rows, slices): axial last
    assert v[0, 0].tolist() == [0.0, 10.0, 20.0]       # sorted by z, in HU
    s = ct_slices(np.stack([np.full((8, 8), -1350.0), np.full((8, 8), 150.0)], -1),
                  n_slices=2, size=4)
    assert s.shape == (2, 4, 4) and s.dtype == np.uint8
    assert s[0].max() == 0 and s[1].min() == 255       # the lung window's two ends


# ------------------------------------------------------------------ statistics


def test_paired_bootstrap_vector_and_p_values():
    from compendium.audit.stats import paired_bootstrap

    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = a + 0.5 + rng.normal(scale=0.1, size=200)      # consistently larger
    d = paired_bootstrap(lambda r: np.array([b[r].mean() - a[r].mean(), 0 * a[r].mean()]),
                         200, n_bootstrap=200, seed=1)
    assert d["estimate"].iat[0] == pytest.approx((b - a).mean())
    assert d["ci_low"].iat[0] > 0.45 and d["p_value"].iat[0] <= 2 / 201
    assert d["p_value"].iat[1] == 1.0
    clustered = paired_bootstrap(lambda r: b[r].mean() - a[r].mean(), 200, n_bootstrap=50,
                                 seed=1, clusters=np.repeat(np.arange(50), 4))
    assert len(clustered) == 1 and clustered["ci_low"].iat[0] > 0


# ------------------------------------------------------------------ synthetic world


def test_emboli_add_defects_and_one_embolus_is_unchanged():
    from compendium.synthetic import render_volumes, synthetic_inspect

    c1 = synthetic_inspect(n=40, seed=3, knobs="zero")
    c3 = synthetic_inspect(n=40, seed=3, knobs="zero", emboli=3)
    i = int(np.flatnonzero(c1.table["PE"].to_numpy() == 1)[0])
    v1, _, d1 = render_volumes(c1, [i], size=32, depth=16, return_masks=True)
    v3, _, d3 = render_volumes(c3, [i], size=32, depth=16, return_masks=True)
    assert (d1 <= d3).all() and d3.sum() > d1.sum()
    np.testing.assert_array_equal(v1[~d3], v3[~d3])    # only the new defects differ
    with pytest.raises(ConfigError, match="emboli"):
        synthetic_inspect(n=5, emboli=0)


def test_prognosis_strength_makes_mortality_follow_frailty():
    from compendium.synthetic import synthetic_inspect

    auc = {}
    for s in (1.0, 3.0):
        t = synthetic_inspect(n=3000, seed=0, knobs="zero", prognosis_strength=s).table
        auc[s] = _auroc(t["mortality_12m"], t["frailty"])
    assert auc[3.0] > auc[1.0] + 0.1


def test_render_ehr_findings_leave_pe_out():
    from compendium.synthetic import render_ehr, synthetic_inspect

    c = synthetic_inspect(n=30, seed=0, knobs="zero")
    no_pe = c.table.copy()
    no_pe[["PE", "true_PE"]] = 0.0
    import dataclasses

    c0 = dataclasses.replace(c, table=no_pe)
    np.testing.assert_array_equal(render_ehr(c, findings=["frailty"]), render_ehr(c0))
    assert not np.array_equal(render_ehr(c), render_ehr(c0))
    with pytest.raises(ConfigError, match="unknown finding"):
        render_ehr(c, findings=["Nope"])


# ------------------------------------------------------------------ Paper B


def test_age_bands_and_their_edges():
    from compendium.papers.paper_b.pipeline import age_groups

    ages = pd.Series([18, 39, 40, 60, 75, 89, 90, 17])
    low = age_groups(ages, "lower_closed").tolist()
    up = age_groups(ages, "upper_closed").tolist()
    assert low[:6] == ["18-40", "18-40", "40-60", "60-75", "75-90", "75-90"]
    assert pd.isna(low[6]) and pd.isna(low[7])
    assert up[1:7] == ["18-40", "18-40", "40-60", "60-75", "75-90", "75-90"]


def test_gap_statistic_matches_the_audit():
    from compendium.audit import audit
    from compendium.papers.paper_b.pipeline import _GapStat

    rng = np.random.default_rng(0)
    n = 300
    pred = pd.DataFrame({"y_true": rng.integers(0, 2, n), "y_score": rng.random(n),
                         "race": rng.choice(["A", "B", "C"], n), "sex": rng.choice(["F", "M"], n),
                         "age_group": rng.choice(["18-40", "75-90", "tiny"], n, p=[.45, .45, .1])})
    small = {"race": [], "sex": [], "age_group": ["tiny"]}
    got = _GapStat(pred, 0.5, small)(np.arange(n))
    keep = pred[pred["age_group"] != "tiny"]
    for j, (a, table) in enumerate((("race", pred), ("sex", pred), ("age_group", keep)), 1):
        ref = audit(table, task="binary", attributes=[a], n_bootstrap=0, n_permutations=0,
                    threshold=0.5, metrics=["udr_gap"])
        assert got[j] == pytest.approx(ref.loc[ref["kind"] == "gap", "estimate"].iat[0])
    assert got[0] == pytest.approx(_auroc(pred["y_true"], pred["y_score"]))


def test_paper_b_stand_ins_and_parameter_checks():
    cfg = _cfg("smoke", "models=[medsiglip]")
    assert [p.encoder for p in cfg.model_plans()] == ["toy-slice-kmeans-576"]
    over = _cfg("smoke", "stand_ins={biomedclip: toy-slice-kmeans-512}")
    assert [p.encoder for p in over.model_plans()][2] == "toy-slice-kmeans-512"
    for bad, msg in (("tasks=[mortality_1m, pe]", "first task must be 'pe'"),
                     ("pooling_tasks=[ph_12m]", None), ("mitigation_attributes=[income]", "income")):
        spec = _cfg("smoke", bad, *(["tasks=[pe, mortality_12m]"] if msg is None else []))
        with pytest.raises(ConfigError, match=msg or "pooling_tasks"):
            spec.check()
    with pytest.raises(ConfigError, match="its stand-in: toy-slice-kmeans-512"):
        _cfg("demo", "use_stand_ins=false", "models=[medimageinsight]").check()


def test_vendor_slice_embeddings_are_read_per_slice(tmp_path):
    from compendium.papers.paper_b import pipeline

    cfg = _cfg("full", "models=[medimageinsight]", "n_slices=3",
               f"weights={{medimageinsight: {tmp_path / 'mii.npz'}}}")
    table = pd.DataFrame({"sample_id": ["a", "b"]})
    studies = pipeline.Studies(None, table, "INSPECT")
    ids = pipeline.slice_ids(["a", "b"], 3)
    assert ids == ["a#z00", "a#z01", "a#z02", "b#z00", "b#z01", "b#z02"]
    emb = np.arange(6 * 1024, dtype=float).reshape(6, 1024)
    np.savez(tmp_path / "mii.npz", sample_id=np.array(ids[::-1]), embeddings=emb[::-1])
    E = pipeline.embed(studies, None, cfg, progress=False)[0].E
    assert E.shape == (2, 3, 1024)
    np.testing.assert_array_equal(E.reshape(6, -1), emb)
    np.savez(tmp_path / "mii.npz", sample_id=np.array(ids[:5]), embeddings=emb[:5])
    with pytest.raises(DataNotFoundError, match="lacks 1 of the 6 slices"):
        pipeline.embed(studies, None, cfg, progress=False)


def test_claim_checks_on_hand_made_tables():
    from compendium.papers.paper_b import tables

    mlp = pd.DataFrame({"model": ["a", "b", "c"],
                        "paper_model": ["medimageinsight", "medsiglip", "biomedclip"],
                        "LR minus best MLP": [0.01, 0.02, -0.05]})
    assert tables.claim_checks(None, mlp=mlp)["lr-beats-mlp"]().verdict == "holds"
    mlp.loc[1, "LR minus best MLP"] = -0.001
    assert tables.claim_checks(None, mlp=mlp)["lr-beats-mlp"]().verdict == "does not hold"
    res = pd.DataFrame({"mitigation": "resampling", "measure": "AUROC",
                        "change": [-0.12, -0.08, -0.03]})
    v = tables.claim_checks(None, mit=res)["resampling-collapses"]()
    assert v.verdict == "does not hold" and "-0.120" in v.value
    mit = pd.DataFrame({"mitigation": ["adversarial", "importance_weighting"],
                        "attribute": ["sex", "sex"], "target": ["sex", "sex"],
                        "change": [-0.1, -0.2], "p_value": [0.01, 0.3]})
    assert tables.claim_checks(None, mit=mit)["adversarial-only-mitigation"]().verdict == "holds"
    mit.loc[1, "p_value"] = 0.01
    assert tables.claim_checks(None, mit=mit)["adversarial-only-mitigation"]().verdict == \
        "does not hold"


def test_full_profile_without_data_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    code = cli.main(["run", "paper_b", "--profile", "full"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for what in ("data_roots.inspect", "weights.medimageinsight", "medsiglip", "biomedclip",
                 "ehr_features"):
        assert what in err
    assert "5 input(s) missing" in err
    assert not (tmp_path / "results").exists()


def test_compute_threads_limits_blas_and_torch_and_restores_them():
    import torch
    from threadpoolctl import threadpool_info

    from compendium.runtime import compute_threads

    before_torch = torch.get_num_threads()
    before = [p["num_threads"] for p in threadpool_info()]
    with compute_threads(1):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert torch.get_num_threads() == before_torch
    assert [p["num_threads"] for p in threadpool_info()] == before


def test_hispanic_disparity_under_each_reading():
    """Hispanic studies against White (reading ``white``) or every other study of a group
    that is not small (``rest``): UDRs by hand, the p-value the audit's permutation test
    gives on the two groups, small groups left out of ``rest``, and the run's reading
    feeding the reported keys (min and max over the models)."""
    from compendium.audit import audit
    from compendium.papers.paper_b import pipeline, tables

    cfg = _cfg("smoke", "threshold='0.5'", "min_group_size=5", "n_permutations=200")
    rng = np.random.default_rng(0)
    race = np.array(["Hispanic"] * 40 + ["White"] * 80 + ["Black"] * 40 + ["NHPI"] * 3)
    n = len(race)
    y = np.tile([1, 0], n)[:n]
    # Hispanic positives missed more often: score 0.2 on 3 of every 4 Hispanic positives
    s = np.where(y == 1, 0.9, 0.1)
    hisp_pos = np.flatnonzero((race == "Hispanic") & (y == 1))
    s[hisp_pos[np.arange(len(hisp_pos)) % 4 != 0]] = 0.2
    s[np.flatnonzero((race == "Black") & (y == 1))[:5]] = 0.2
    test = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)],
                         "patient_id": [f"p{i}" for i in range(n)], "y_true": y, "y_score": s,
                         "race": race, "sex": rng.choice(["F", "M"], n),
                         "age_group": rng.choice(["18-40", "75-90"], n)})
    table = test.assign(split="test")
    studies = pipeline.Studies(None, table, "hand-made")
    fits = [pipeline.Fit(m, pm, "pe", "logreg CT", test, test)
            for m, pm in (("a", "medimageinsight"), ("b", "biomedclip"))]
    d = pipeline.group_disparity(fits, studies, cfg)
    assert len(d) == 4 and d["this run"].tolist() == [True, False, True, False]
    w = d[d["reading"] == "white"].iloc[0]
    assert w["udr_group"] == pytest.approx(15 / 20) and w["udr_reference"] == 0.0
    assert w["n_group"] == 40 and w["n_reference"] == 80
    sub = test[test["race"].isin(["Hispanic", "White"])]
    ref = audit(sub, task="binary", attributes=["race"], n_bootstrap=0, n_permutations=200,
                seed=cfg.seed, threshold=0.5, metrics=["udr_gap"], min_group_size=0,
                correction=None)
    assert w["p_value"] == pytest.approx(ref.loc[ref["kind"] == "gap", "p_value"].iat[0])
    assert w["p_value"] < 0.01
    r = d[d["reading"] == "rest"].iloc[0]
    assert r["n_reference"] == 120                     # White + Black; NHPI (3) is small
    assert r["udr_reference"] == pytest.approx(5 / 60)
    assert r["difference"] == pytest.approx(15 / 20 - 5 / 60)
    rep = tables.reproduced_values(*[pd.DataFrame(columns=c) for c in (
        ["paper_model", "task", "variant", "auroc"], ["kind", "paper_model", "metric", "group",
                                                      "attribute", "estimate"],
        ["metric", "paper_model", "attribute", "estimate", "p_value"],
        ["kind", "metric", "task", "paper_model", "estimate"], ["paper_model",
                                                                "LR minus best MLP"],
        ["fusion gain"], [], ["mitigation", "measure", "attribute", "target", "after",
                              "paper_model", "change"],
        ["attribute", "paper_model", "macro_f1"])], disparity=d)
    h = rep[rep["group"] == "Hispanic"].set_index("metric")["estimate"]
    white = d[d["reading"] == "white"]["p_value"]
    assert h["p_value_min"] == white.min() and h["p_value_max"] == white.max()
    other = pipeline.group_disparity(fits, studies, _cfg(
        "smoke", "threshold='0.5'", "min_group_size=5", "n_permutations=200",
        "hispanic_reference=rest"))
    assert other["this run"].tolist() == [False, True, False, True]


def test_ehr_features_file_under_full(tmp_path):
    """The user's EHR features: one row per study by impression_id (leading zeros kept),
    numeric columns only, a missing value filled with its column's mean; a study without a
    row, a repeated id or no numeric column is a one-line error."""
    from compendium.papers.paper_b import pipeline

    path = tmp_path / "ehr.csv"
    cfg = _cfg("full", f"ehr_features={path}")
    studies = pipeline.Studies(None, pd.DataFrame({"sample_id": ["007", "2"]}), "INSPECT")
    path.write_text("impression_id,age_at_scan,note,bmi\n2,50,x,\n007,70,y,30\n9,1,z,10\n")
    X = pipeline.ehr_matrix(studies, cfg)
    np.testing.assert_allclose(X, [[70, 30], [50, 20]])
    path.write_text("impression_id,bmi\n007,30\n")
    with pytest.raises(DataNotFoundError, match="1 studies have no EHR features"):
        pipeline.ehr_matrix(studies, cfg)
    path.write_text("impression_id,bmi\n007,30\n2,1\n2,3\n")
    with pytest.raises(InputError, match="'2' has more than one row"):
        pipeline.ehr_matrix(studies, cfg)
    path.write_text("impression_id,note\n007,a\n2,b\n")
    with pytest.raises(InputError, match="no numeric feature column"):
        pipeline.ehr_matrix(studies, cfg)
