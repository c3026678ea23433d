"""The course: auto-checked exercises, 'find the bias' challenges played by a scripted
student, the command's one-line errors, the lesson pages' exercise/solution blocks, and the
student and teacher builds of a small book (no solution text in the student's HTML)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from compendium.cli import main
from compendium.errors import ConfigError
from compendium.runner import notebook_files, project_root
from compendium.teaching import EXERCISES, check, exercises
from compendium.teaching import lessons
from compendium.teaching.challenge import (HANDOUT_FILES, draw_secret, grade, read_answer,
                                           write_challenge)
from compendium.teaching.world import GROUPS, MECHANISMS, STRENGTHS

ROOT = project_root()
KNOB_WORDS = ("underdiagnosis", "sign_strength", "ap_portable", "ehr_missing", "soft_tissue",
              "mislabel", "report_style")
TEST_KEY = "5e" * 32


def _one_line(capsys, argv) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:     # argparse's own errors (compendium.cli._Parser)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ exercises


@pytest.fixture(scope="module")
def results():
    """Each lesson's tables at a small size (the student's run)."""
    return {
        "teaching_metrics": lessons.metrics_lesson(n=400, tpr={"A": 0.9, "B": 0.6}, fpr=0.2,
                                                   n_bootstrap=100, n_permutations=100, seed=1),
        "teaching_noise": lessons.noise_lesson(sizes=[100, 400], n_sims=6, n_groups=3, tpr=0.8,
                                               gap=0.3, n_bootstrap=50, n_permutations=50,
                                               seed=1),
        "teaching_knobs": lessons.knobs_lesson(n=600, group="sex=F", strength="strong", seed=1),
        "teaching_labels": lessons.labels_lesson(n=500, report_style=0.6, group="race=Black",
                                                 reference="race=White", seed=1, n_bootstrap=50),
        "teaching_mitigation": lessons.mitigation_lesson(n=800, minority=0.2, seed=1),
        "teaching_claims": lessons.claims_lesson(accuracy=0.6, n_per_class=40, n_classes=6,
                                                 n_sims=100, seed=1),
        "teaching_adaptation": lessons.adaptation_lesson(n=1000, n_train=200,
                                                         shares=[0.05, 0.5], seed=1),
    }


def _student_answers(r) -> dict:
    """What a student computes from the tables, with pandas, as the solutions say."""
    m = r["teaching_metrics"]
    tpr = m["groups"][m["groups"]["metric"] == "tpr"]["estimate"]
    fpr_p = m["gaps"].set_index("metric").loc["fpr_gap", "p_adjusted"]
    runs = r["teaching_noise"]["runs"]
    fair = runs[runs["world"] == "fair"]
    summ = r["teaching_noise"]["summary"]
    inj = summ[(summ["world"] == "injected") & (summ["share_p_below_005"] >= 0.8)]
    sig = r["teaching_knobs"]["signatures"].set_index("mechanism")
    lab = r["teaching_labels"]
    gaps = lab["gaps"].set_index("labels")["estimate"]
    meth = r["teaching_mitigation"]["methods"].set_index("method")
    claims = r["teaching_claims"]["gaps"]
    ad = r["teaching_adaptation"]["methods"].set_index(["method", "share_B_in_training"])
    zero_shot = ad.xs("zero-shot")[["auroc_A", "auroc_B"]].iloc[0]
    return {
        "adaptation-zero-shot-favours": zero_shot.idxmax()[-1],
        "adaptation-gap-change": (zero_shot["auroc_A"] - zero_shot["auroc_B"])
        - (ad.loc[("adapted", 0.5), "auroc_A"] - ad.loc[("adapted", 0.5), "auroc_B"]),
        "metrics-tpr-gap": tpr.max() - tpr.min(),
        "metrics-fpr-significant": "yes" if fpr_p < 0.05 else "no",
        "noise-ci-covers-zero": ((fair["ci_low"] <= 0) & (fair["ci_high"] >= 0)).mean(),
        "noise-false-positive": (fair["p_value"] < 0.05).mean(),
        "noise-power-size": str(int(inj["size"].min())) if len(inj) else "none",
        "knobs-fpr-mechanism": sig["fpr"].drop("none").idxmax(),
        "knobs-cohort-visible": [k for k in MECHANISMS
                                 if abs(sig.loc[k, "ap_share"]) > 0.1
                                 or abs(sig.loc[k, "ehr_measured"]) > 1],
        "labels-differs-group": lab["agreement"].iloc[0]["share_differs"],
        "labels-gap-direction": "grows" if gaps["report labeller"] > gaps["recorded"]
        else "shrinks",
        "mitigation-smallest-gap": meth["auroc_gap"].idxmin(),
        "mitigation-cost": meth.loc["none", "auroc"] - meth.loc["importance_weighting", "auroc"],
        "claims-exceed": int((claims["reported"] > claims["fair_95th_percentile"]).sum()),
        "claims-bonferroni": 0.05 / len(claims),
    }


def _wrong(ex, right):
    e = EXERCISES[ex]
    if e.kind == "number":
        return float(right) + max(10 * e.tol, 0.05) + 1
    if e.kind == "set":
        return [m for m in MECHANISMS if m not in right][:1]
    options = e.choices or ("100", "400", "none")
    return next(o for o in options if o != right)


def test_every_exercise_has_a_page_and_a_lesson():
    lesson_names = {e.lesson for e in EXERCISES.values()}
    assert lesson_names <= set(notebook_files(ROOT))
    for ex in EXERCISES:
        lesson = EXERCISES[ex].lesson.removeprefix("teaching_")
        page = (ROOT / "book" / "teaching" / f"lesson_{lesson}.md").read_text()
        assert f":label: ex-{ex}" in page and f"{{solution}} ex-{ex}" in page, ex
        nb = nbformat.read(str(notebook_files(ROOT)[EXERCISES[ex].lesson]), as_version=4)
        assert any(f'check("{ex}"' in c.source for c in nb.cells), ex


@pytest.mark.slow
def test_checks_say_right_and_wrong_without_the_answer(results):
    answers = _student_answers(results)
    assert set(answers) == set(EXERCISES)
    # the noise lesson's fact: the audit's interval of a max-min gap (simultaneous intervals
    # of the groups' differences) contains 0 in most fair runs, unlike a percentile interval
    assert answers["noise-ci-covers-zero"] > 0.5
    # label noise is the mechanism that raises the FPR the most; cohort-visible ones are two
    assert answers["knobs-fpr-mechanism"] == "label_noise"
    assert sorted(answers["knobs-cohort-visible"]) == ["acquisition", "missingness"]
    # the zero-shot direction is group A's (disparity_embeddings' construction)
    assert answers["adaptation-zero-shot-favours"] == "A"
    for ex, right in answers.items():
        r = results[EXERCISES[ex].lesson]
        ok = check(ex, right, r)
        assert ok.correct is True, (ex, ok)
        wrong = check(ex, _wrong(ex, right), r)
        assert wrong.correct is False, (ex, wrong)
        assert "Hint" in wrong.message or "answer one of" in wrong.message
        if EXERCISES[ex].kind == "number":
            for digits in (2, 3, 4):
                assert f"{float(right):.{digits}f}" not in wrong.message, (ex, wrong.message)
        else:
            hidden = right if isinstance(right, str) else None
            if hidden and not EXERCISES[ex].choices:
                assert hidden not in wrong.message
        assert check(ex, None, r).correct is None
    # answers are read leniently: case, spaces and strings of numbers
    assert check("knobs-fpr-mechanism", " Label Noise ", results["teaching_knobs"]).correct
    assert check("metrics-tpr-gap", str(answers["metrics-tpr-gap"]),
                 results["teaching_metrics"]).correct
    assert check("metrics-tpr-gap", "a lot", results["teaching_metrics"]).correct is False


def test_check_rejects_unknown_exercise():
    with pytest.raises(ConfigError, match="unknown exercise"):
        check("nope", 1, {})
    assert exercises("teaching_metrics") == ["metrics-tpr-gap", "metrics-fpr-significant"]


# ----------------------------------------------------------------- challenges


def _z_share(a, b):
    p = np.concatenate([a, b]).mean()
    return (a.mean() - b.mean()) / np.sqrt(max(p * (1 - p), 1e-9) * (1 / len(a) + 1 / len(b)))


def _z_mean(a, b):
    return (a.mean() - b.mean()) / max(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)),
                                       1e-9)


def _auroc_z(ya, sa, yb, sb):
    def auc_se(y, s):   # Hanley and McNeil's standard error
        a = roc_auc_score(y, s)
        n1, n0 = y.sum(), (1 - y).sum()
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        return a, np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a))
                          / (n1 * n0))
    a1, s1 = auc_se(ya, sa)
    a0, s0 = auc_se(yb, sb)
    return (a1 - a0) / np.hypot(s1, s0)


def scripted_student(folder: Path) -> dict:
    """The audit a student who followed lesson 3 does: each candidate group against the
    rest, differences scaled by their standard errors, the mechanisms' fingerprints in order
    (cohort first, then labels, then the model)."""
    pred = pd.read_csv(folder / "predictions.csv")
    cohort = pd.read_csv(folder / "cohort.csv")
    d = pred.merge(cohort[["sample_id", "view", "ehr_measured"]], on="sample_id")
    y = d["y_true"].to_numpy()
    s = d["y_score"].to_numpy()
    flag = s >= 0.5
    ap = (d["view"] == "AP").to_numpy().astype(float)
    ehr = d["ehr_measured"].to_numpy().astype(float)
    z = {}
    for g in GROUPS:
        col, _, val = g.partition("=")
        m = (d[col].astype(str) == val).to_numpy()
        z[g] = {"ap": _z_share(ap[m], ap[~m]), "ehr": _z_mean(ehr[m], ehr[~m]),
                "prev": _z_share(y[m].astype(float), y[~m].astype(float)),
                "fpr": _z_share(flag[m & (y == 0)].astype(float),
                                flag[~m & (y == 0)].astype(float)),
                "auroc": _auroc_z(y[m], s[m], y[~m], s[~m])}
    z = pd.DataFrame(z).T
    if z["ap"].max() > 6:
        return {"group": z["ap"].idxmax(), "mechanism": "acquisition"}
    if z["ehr"].min() < -6:
        return {"group": z["ehr"].idxmin(), "mechanism": "missingness"}
    noisy = z[z["prev"] < -3]
    if len(noisy) and noisy["fpr"].max() > 4:
        return {"group": noisy["fpr"].idxmax(), "mechanism": "label_noise"}
    if z["prev"].max() > 4:
        return {"group": z["prev"].idxmax(), "mechanism": "prevalence"}
    return {"group": z["auroc"].idxmin(), "mechanism": "sign_visibility"}


@pytest.fixture(scope="module")
def handouts(tmp_path_factory):
    base = tmp_path_factory.mktemp("course")
    key = base / "teacher.key"
    key.write_text(TEST_KEY + "\n")
    out = base / "handouts"
    assert main(["teaching", "challenge", "--seed", "40", "--students", "8", "--out", str(out),
                 "--key", str(key)]) == 0
    return out, key


def _answer(path: Path, **fields) -> Path:
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    return path


@pytest.mark.slow
def test_a_scripted_student_is_graded_right_and_a_wrong_one_wrong(handouts, tmp_path, capsys):
    out, key = handouts
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(folders) == 8
    index = pd.read_csv(out / "index.csv")
    assert index["challenge"].tolist() == list(range(40, 48))
    secrets_ = [draw_secret(bytes.fromhex(TEST_KEY), i) for i in range(40, 48)]
    assert len({s.mechanism for s in secrets_}) >= 3 and len({s.group for s in secrets_}) >= 3
    for folder in folders:
        found = scripted_student(folder)
        right = _answer(tmp_path / f"{folder.name}.yaml", **found)
        capsys.readouterr()
        assert main(["teaching", "grade", "--challenge", str(folder), "--answer", str(right),
                     "--key", str(key)]) == 0
        printed = capsys.readouterr().out
        assert "RIGHT" in printed and "secret" not in printed, (folder.name, found, printed)
        names = list(MECHANISMS)
        other = names[(names.index(found["mechanism"]) + 1) % len(names)]
        wrong = _answer(tmp_path / f"{folder.name}-wrong.yaml", group=found["group"],
                        mechanism=other, strength="strong")
        main(["teaching", "grade", "--challenge", str(folder), "--answer", str(wrong),
              "--key", str(key), "--reveal"])
        printed = capsys.readouterr().out
        assert "WRONG" in printed and "mechanism: wrong" in printed and "secret:" in printed
        g = grade(folder, read_answer(right), key=bytes.fromhex(TEST_KEY))
        assert g.correct and g.points >= 2
        wrong_group = next(x for x in GROUPS if x != found["group"])
        g = grade(folder, {"group": wrong_group, "mechanism": found["mechanism"]},
                  key=bytes.fromhex(TEST_KEY))
        assert not g.correct and g.strength is None


@pytest.mark.slow
def test_the_handout_alone_does_not_reveal_the_secret(handouts):
    out, key = handouts
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    readmes, infos = set(), []
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == sorted(HANDOUT_FILES)
        info = json.loads((folder / "challenge.json").read_text())
        assert set(info) == {"format", "challenge", "rows", "key_id", "seal", "synthetic"}
        infos.append(info)
        readmes.add((folder / "README.md").read_text().replace(f"challenge {info['challenge']}",
                                                                "challenge N"))
        for name in ("predictions.csv", "cohort.csv"):
            text = (folder / name).read_text()
            assert not any(w in text for w in KNOB_WORDS + tuple(MECHANISMS)), name
            assert not re.search(r"\b(?:sex|race|age_group)=", text)
        secret = draw_secret(bytes.fromhex(TEST_KEY), info["challenge"])
        for p in folder.iterdir():
            text = p.read_text()
            assert TEST_KEY not in text
            # nor the world's seed, from which the secret could be re-simulated
            assert str(secret.world_seed) not in text, p.name
        pred = pd.read_csv(folder / "predictions.csv")
        assert list(pred.columns) == ["sample_id", "patient_id", "sex", "race", "age_group",
                                      "y_true", "y_score"]
        assert list(pd.read_csv(folder / "cohort.csv").columns) == [
            "sample_id", "patient_id", "age", "sex", "race", "age_group", "view", "ehr_measured"]
    # every file but the data is the same whatever the secret
    assert len(readmes) == 1
    # the id alone does not determine the secret: another key draws other secrets
    other = bytes.fromhex("a1" * 32)
    mine = bytes.fromhex(TEST_KEY)
    assert any(draw_secret(other, i) != draw_secret(mine, i) for i in range(40, 48))
    # a hand-out sealed with one key is refused with another
    with pytest.raises(Exception, match="another key"):
        grade(folders[0], {"group": GROUPS[0], "mechanism": "prevalence"}, key=other)


def test_challenge_is_reproducible_and_refuses_an_edited_seal(tmp_path):
    key = bytes.fromhex(TEST_KEY)
    a = write_challenge(tmp_path / "a", key=key, challenge_id=3, n=600)
    b = write_challenge(tmp_path / "b", key=key, challenge_id=3, n=600)
    for name in HANDOUT_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    info = json.loads((a / "challenge.json").read_text())
    info["challenge"] = 4
    (a / "challenge.json").write_text(json.dumps(info))
    with pytest.raises(Exception, match="seal does not match"):
        grade(a, {"group": GROUPS[0], "mechanism": "prevalence"}, key=key)
    assert not list(tmp_path.glob("*.partial*"))
    assert set(STRENGTHS) == {"moderate", "strong"}


@pytest.fixture(scope="module")
def one_handout(tmp_path_factory):
    base = tmp_path_factory.mktemp("one")
    (base / "key").write_text(TEST_KEY + "\n")
    write_challenge(base / "c", key=bytes.fromhex(TEST_KEY), challenge_id=1, n=500)
    (base / "other.key").write_text("b2" * 32 + "\n")
    (base / "bad.key").write_text("not a key\n")
    (base / "ok.yaml").write_text("group: sex=F\nmechanism: prevalence\n")
    (base / "bad.yaml").write_text("group: [unclosed\n")
    (base / "extra.yaml").write_text("group: sex=F\nmechanism: prevalence\nconfidence: 3\n")
    (base / "nogroup.yaml").write_text("mechanism: prevalence\n")
    (base / "badgroup.yaml").write_text("group: sex=X\nmechanism: prevalence\n")
    (base / "badmech.yaml").write_text("group: sex=F\nmechanism: luck\n")
    (base / "badstrength.yaml").write_text("group: sex=F\nmechanism: prevalence\nstrength: 3\n")
    (base / "list.yaml").write_text("- sex=F\n")
    (base / "full").mkdir()
    (base / "full" / "thesis.txt").write_text("mine\n")
    return base


@pytest.mark.parametrize("argv, expected", [
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/missing.yaml", "--key", "{b}/key"],
     "answer file not found"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/bad.yaml", "--key", "{b}/key"],
     "not valid YAML"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/extra.yaml", "--key", "{b}/key"],
     "unknown key 'confidence'"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/nogroup.yaml", "--key", "{b}/key"],
     "missing 'group'"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/badgroup.yaml", "--key", "{b}/key"],
     "is not a candidate"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/badmech.yaml", "--key", "{b}/key"],
     "mechanism 'luck' is not one of"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/badstrength.yaml", "--key", "{b}/key"],
     "strength '3' is not one of"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/list.yaml", "--key", "{b}/key"],
     "expected 'group:'"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/ok.yaml", "--key", "{b}/bad.key"],
     "not a challenge key"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/ok.yaml", "--key", "{b}/nokey"],
     "key file not found"),
    (["grade", "--challenge", "{b}/c", "--answer", "{b}/ok.yaml", "--key", "{b}/other.key"],
     "sealed with another key"),
    (["grade", "--challenge", "{b}/full", "--answer", "{b}/ok.yaml", "--key", "{b}/key"],
     "not a challenge folder"),
    (["challenge", "--seed", "1", "--out", "{b}/new", "--key", "{b}/new/k"], "inside --out"),
    (["challenge", "--seed", "1", "--out", "{b}/full", "--key", "{b}/k2"], "holds other files"),
    (["challenge", "--seed", "1", "--out", "{b}/new2", "--key", "{b}/bad.key"],
     "not a challenge key"),
    (["challenge", "--seed", "-1", "--out", "{b}/new3", "--key", "{b}/key"], "--seed"),
    (["challenge", "--seed", "1", "--students", "0", "--out", "{b}/new4", "--key", "{b}/key"],
     "--students"),
    (["challenge", "--seed", "1", "--out", "{b}/new5"], "--key"),
])
def test_teaching_command_mistakes_are_one_line(one_handout, capsys, argv, expected):
    line = _one_line(capsys, ["teaching", *[a.replace("{b}", str(one_handout)) for a in argv]])
    assert expected in line, line
    assert not (one_handout / "new").exists() and not (one_handout / "new2").exists()


# ------------------------------------------------------------- notebooks, pages


def test_teaching_notebooks_live_in_their_folder_and_names_are_unique(tmp_path):
    files = notebook_files(ROOT)
    for name in {e.lesson for e in EXERCISES.values()}:
        assert files[name].parent.name == "teaching"
    (tmp_path / "notebooks" / "teaching").mkdir(parents=True)
    (tmp_path / "params").mkdir()
    for p in (tmp_path / "notebooks" / "x.ipynb", tmp_path / "notebooks" / "teaching" / "x.ipynb"):
        nbformat.write(nbformat.v4.new_notebook(), str(p))
    with pytest.raises(ConfigError, match="two notebooks are named 'x'"):
        notebook_files(tmp_path)


def test_every_solution_follows_its_exercise_in_the_teaching_pages():
    for page in (ROOT / "book" / "teaching").glob("*.md"):
        text = page.read_text()
        labels = re.findall(r"```\{exercise\}\n:label: (\S+)", text)
        solved = re.findall(r"```\{solution\} (\S+)", text)
        assert set(solved) <= set(labels), page.name
        for label in solved:
            assert text.index(f":label: {label}") < text.index(f"{{solution}} {label}")


_PAGE = """# A lesson

```{exercise}
:label: ex-one

What is the exercise-prompt-text-7c1d?
```

```{solution} ex-one
:class: dropdown

The answer is solution-text-9f3b, computed from the run.
```
"""


def _build(project: Path, solutions: bool, out: Path) -> Path:
    from compendium.book import staged_config

    (project / "_config.yml").write_text(
        staged_config((ROOT / "_config.yml").read_text(), solutions=solutions))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb)] if jb.exists() else [sys.executable, "-m", "jupyter_book"]
    proc = subprocess.run([*cmd, "build", str(project), "--path-output", str(out),
                           "--builder", "html"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "_build" / "html"


@pytest.mark.slow
def test_student_build_has_no_solution_text_and_teacher_build_has_it(tmp_path):
    project = tmp_path / "src"
    (project / "book").mkdir(parents=True)
    (project / "book" / "intro.md").write_text("# Course\n\nA page.\n")
    (project / "book" / "lesson.md").write_text(_PAGE)
    (project / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                      "  - file: book/lesson\n")
    student = _build(project, False, tmp_path / "student")
    shutil.rmtree(project / "_build", ignore_errors=True)
    teacher = _build(project, True, tmp_path / "teacher")

    def texts(html: Path) -> str:
        return "\n".join(p.read_text(errors="ignore") for p in html.rglob("*")
                         if p.is_file() and p.suffix in {".html", ".js", ".txt", ".md", ".json",
                                                         ".ipynb", ".inv"})

    s, t = texts(student), texts(teacher)
    assert "exercise-prompt-text-7c1d" in s and "exercise-prompt-text-7c1d" in t
    assert "solution-text-9f3b" not in s
    assert not (student / "_sources").exists()
    assert "solution-text-9f3b" in (teacher / "book" / "lesson.html").read_text()
    assert "edition, with solutions" in (teacher / "book" / "lesson.html").read_text()
    assert "edition, with solutions" not in (student / "book" / "lesson.html").read_text()


def test_staged_config_hides_solutions_unless_asked():
    import yaml

    from compendium.book import staged_config

    text = (ROOT / "_config.yml").read_text()
    assert "sphinx_exercise" in yaml.safe_load(text)["sphinx"]["extra_extensions"]
    student = yaml.safe_load(staged_config(text, solutions=False))
    teacher = yaml.safe_load(staged_config(text, solutions=True))
    assert student["sphinx"]["config"]["hide_solutions"] is True
    assert student["sphinx"]["config"]["html_copy_source"] is False
    assert teacher["sphinx"]["config"]["hide_solutions"] is False
    assert "with solutions" in teacher["title"] and "with solutions" not in student["title"]
    # everything else is the project's configuration
    for cfg in (student, teacher):
        assert cfg["sphinx"]["extra_extensions"] == yaml.safe_load(text)["sphinx"]["extra_extensions"]


def test_book_command_passes_solutions(monkeypatch, tmp_path, capsys):
    import compendium.book as book

    seen = {}

    def fake_build(profile, **kw):
        seen.update(kw, profile=profile)
        index = tmp_path / "index.html"
        index.write_text("")
        return index

    monkeypatch.setattr(book, "build_book", fake_build)
    assert main(["book", "--profile", "smoke", "--solutions"]) == 0
    assert seen["solutions"] is True and seen["profile"] == "smoke"
    assert main(["book", "--profile", "smoke"]) == 0
    assert seen["solutions"] is False
