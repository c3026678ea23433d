import numpy as np
import pandas as pd
import pytest

from compendium.adapt.predictions import labels_from_rows, predictions_table
from compendium.errors import InputError


@pytest.fixture
def rows():
    return pd.DataFrame({
        "sample_id": ["a", "b", "c"], "patient_id": ["p1", "p1", "p2"],
        "split": ["test"] * 3, "sex": ["F", "M", "F"], "age_group": ["<60", ">=60", "<60"],
        "Edema": [1.0, 0.0, 0.0], "Effusion": [0.0, 1.0, 0.0], "Atelectasis": [0.0, 0.0, 1.0],
    })


def test_multiclass_table(rows):
    scores = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    t = predictions_table(rows, scores, ["Edema", "Effusion", "Atelectasis"], "multiclass")
    assert list(t.columns) == ["sample_id", "patient_id", "sex", "age_group", "y_true",
                               "score_Edema", "score_Effusion", "score_Atelectasis", "y_pred"]
    assert t["y_true"].tolist() == ["Edema", "Effusion", "Atelectasis"]
    assert t["y_pred"].tolist() == ["Edema", "Edema", "Atelectasis"]
    np.testing.assert_allclose(t.filter(like="score_").sum(axis=1), 1.0)


def test_binary_table(rows):
    t = predictions_table(rows, np.array([0.9, 0.4, 0.6]), ["Edema"], "binary")
    assert t[["y_true", "y_pred"]].values.tolist() == [[1, 1], [0, 0], [0, 1]]
    t2 = predictions_table(rows, np.array([[0.1, 0.9], [0.6, 0.4], [0.4, 0.6]]), ["Edema"],
                           "binary")
    np.testing.assert_allclose(t2["y_score"], [0.9, 0.4, 0.6])


def test_multilabel_table(rows):
    rows = rows.copy()
    rows.loc[2, "Effusion"] = np.nan
    t = predictions_table(rows, np.full((3, 2), 0.6), ["Edema", "Effusion"], "multilabel")
    assert {"true_Edema", "score_Effusion", "pred_Edema"} <= set(t.columns)
    assert np.isnan(t.loc[2, "true_Effusion"])
    assert t["pred_Edema"].tolist() == [1, 1, 1]


def test_errors(rows):
    with pytest.raises(InputError, match="score rows"):
        predictions_table(rows, np.ones((2, 3)) / 3, ["Edema", "Effusion", "Atelectasis"],
                          "multiclass")
    with pytest.raises(InputError, match="summing to 1"):
        predictions_table(rows, np.ones((3, 3)), ["Edema", "Effusion", "Atelectasis"],
                          "multiclass")
    with pytest.raises(InputError, match="exactly one"):
        labels_from_rows(rows.assign(Edema=1.0), ["Edema", "Effusion", "Atelectasis"],
                         "multiclass")
    with pytest.raises(InputError, match="not in the cohort"):
        predictions_table(rows, np.ones(3) / 2, ["Nope"], "binary")
