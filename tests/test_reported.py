"""Reported numbers: one schema for every paper, every quote found in the paper's text, and
the comparison with reproduced values."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from compendium.errors import ConfigError, InputError
from compendium.papers import reported as R
from compendium.runner import project_root

PAPERS = sorted(p.parent.name for p in (project_root() / "compendium" / "papers").glob(
    "*/reported.yaml"))
TEXTS = project_root().parent / "shared" / "papers"


def _squash(text: str) -> str:
    """The paper texts break lines (and hyphenate words) anywhere: compare without either."""
    return re.sub(r"[\s\-]+", "", text)


def test_every_paper_package_has_reported_numbers():
    assert PAPERS == ["paper_a", "paper_b", "paper_c", "paper_d", "paper_e"]


@pytest.mark.parametrize("paper", PAPERS)
def test_schema_and_ids(paper):
    t = R.load_reported(paper)
    assert t["id"].is_unique and t["quote"].str.len().gt(5).all()
    assert t["where"].str.match(r"^(Table|Fig\.|Section) ").all()
    assert t.attrs["text"].endswith(".txt") and t.attrs["paper"]


@pytest.mark.parametrize("paper", PAPERS)
def test_every_quote_is_in_the_papers_text(paper):
    t = R.load_reported(paper)
    path = TEXTS / t.attrs["text"]
    if not path.is_file():
        pytest.skip(f"the paper texts are not beside this checkout ({TEXTS})")
    text = _squash(path.read_text(encoding="utf-8"))
    for _, row in t.iterrows():
        for fragment in row["quote"].split(" ... "):
            assert _squash(fragment) in text, f"{row['id']}: {fragment!r}"
        # and the number itself is printed in the quote (as a percentage or a fraction, with
        # the decimals the paper prints, a whole percentage, the first end of a printed range
        # "84–90%", or a count with thousands separators)
        v = row["value"]
        printed = (f"{100 * v:.1f}%", f"{100 * v:.0f}%", f"{v:.3f}", f"{v:.2f}", f"{v:g}",
                   f"{v:,.0f}")
        if abs(100 * v - round(100 * v)) < 1e-9:
            printed += (f"{100 * v:.0f}–",)
        assert any(s in row["quote"] for s in printed), row["id"]


def test_schema_errors_name_the_problem(tmp_path, monkeypatch):
    pkg = tmp_path / "paper_z"
    pkg.mkdir()
    monkeypatch.setattr(R, "__file__", str(tmp_path / "reported.py"))
    head = "paper: Z\ntext: z.txt\nnumbers:\n"
    for numbers, message in (
            ("  - {id: a, where: Table 1, metric: auroc, value: 0.9, quote: q, half_width: 0.1,"
             " interval: [0.8, 1.0]}\n", "a: give interval or half_width, not both"),
            ("  - {id: a, where: Table 1, metric: auroc, value: 0.9, quote: q}\n"
             "  - {id: a, where: Table 1, metric: f1, value: 0.8, quote: q}\n",
             "duplicate id 'a'"),
            ("  - {id: a, value: 1}\n", "missing required key 'where'")):
        (pkg / "reported.yaml").write_text(head + numbers)
        with pytest.raises(ConfigError, match=message):
            R.load_reported("paper_z")
    with pytest.raises(ConfigError, match="no reported numbers for paper 'paper_q'"):
        R.load_reported("paper_q")


def test_compare_reported_matches_on_every_key():
    rep = pd.DataFrame({"id": ["x", "y", "z"], "where": "Table 1",
                        "metric": ["auroc", "auroc", "f1"], "model": "m",
                        "method": "", "dataset": ["nih", "mimic-cxr", "nih"], "attribute": "",
                        "group": "", "label": "Edema", "value": [0.9, 0.8, 0.7],
                        "ci_low": np.nan, "ci_high": np.nan, "quote": "q"})
    got = pd.DataFrame({"metric": ["auroc", "auroc"], "model": "m",
                        "dataset": ["nih", "mimic-cxr"], "label": "Edema",
                        "estimate": [0.85, 0.95], "ci_low": [0.8, 0.9], "ci_high": [0.95, 0.99],
                        "reproduced_with": "toy"})
    out = R.compare_reported(rep, got).set_index("id")
    assert out.loc["x", "reproduced"] == 0.85 and out.loc["x", "inside"] == True  # noqa: E712
    assert out.loc["y", "inside"] == False                                          # noqa: E712
    assert out.loc["y", "difference"] == pytest.approx(0.15)
    assert out.loc["z", "reproduced_with"] == "not run" and np.isnan(out.loc["z", "reproduced"])
    with pytest.raises(InputError, match="two rows"):
        R.compare_reported(rep, pd.concat([got, got]))


@pytest.mark.parametrize("paper", PAPERS)
def test_every_reading_quotes_the_paper_and_is_a_parameter(paper):
    from compendium.papers.readings import load_readings
    from compendium.runner import resolve_params

    readings = load_readings(paper)
    cfg = resolve_params(paper, "demo")
    from compendium.papers.readings import candidate_name

    for r in readings:
        assert candidate_name(getattr(cfg, r.parameter)) == r.default   # the default is the spec's
        assert len(r.candidates) >= 2
    _assert_in_paper(paper, [(r.parameter, r.quote) for r in readings])


@pytest.mark.parametrize("paper", PAPERS)
def test_every_claim_quotes_the_paper_and_has_a_check(paper):
    import importlib

    from compendium.papers.claims import load_claims

    claims = load_claims(paper)
    assert len(claims) >= 4
    checks = importlib.import_module(f"compendium.papers.{paper}.tables").claim_checks
    assert set(inspect_check_ids(checks)) == {c.id for c in claims}
    _assert_in_paper(paper, [(c.id, c.quote) for c in claims])


def _assert_in_paper(paper: str, quotes: list[tuple[str, str]]) -> None:
    """Every ``" ... "``-joined fragment of every quote occurs in the paper's text (the test
    skips when the texts are not beside this checkout)."""
    path = TEXTS / R.load_reported(paper).attrs["text"]
    if not path.is_file():
        pytest.skip(f"the paper texts are not beside this checkout ({TEXTS})")
    text = _squash(path.read_text(encoding="utf-8"))
    for name, quote in quotes:
        for fragment in quote.split(" ... "):
            assert _squash(fragment) in text, f"{name}: {fragment!r}"


def inspect_check_ids(claim_checks):
    """The claim ids a paper's ``claim_checks`` answers, from an empty-but-valid table."""
    cols = {"paper_model": [], "model": [], "model_label": [], "method": [], "metric": [],
            "attribute": [], "group": [], "label": [], "estimate": [], "ci_low": [],
            "ci_high": [], "p_value": [], "p_adjusted": [], "dataset": [],
            "registry_model": [], "mean": []}
    return claim_checks(pd.DataFrame(cols)).keys()


def test_claims_table_refuses_unchecked_or_unknown_claims():
    from compendium.papers.claims import Verdict, claims_table, judged

    with pytest.raises(ConfigError, match="has no check"):
        claims_table("paper_d", {"this run": {}})
    from compendium.papers.claims import load_claims

    ok = {c.id: (lambda: judged(True, "1")) for c in load_claims("paper_d")}
    with pytest.raises(ConfigError, match="unknown claim 'nope'"):
        claims_table("paper_d", {"this run": {**ok, "nope": lambda: judged(True, "")}})
    t = claims_table("paper_d", {"this run": ok})
    assert len(t) == len(ok) and (t["verdict"] == "holds").all()
    with pytest.raises(ConfigError, match="verdict 'maybe'"):
        Verdict("maybe", "")


@pytest.mark.parametrize("paper", PAPERS)
def test_every_phrase_a_chapter_quotes_is_in_the_paper(paper):
    """A phrase of three or more words in double quotes in a paper's chapter is the paper's
    own words (code spans and blocks are left out: they quote code, not the paper)."""
    path = TEXTS / R.load_reported(paper).attrs["text"]
    if not path.is_file():
        pytest.skip(f"the paper texts are not beside this checkout ({TEXTS})")
    text = _squash(path.read_text(encoding="utf-8").replace("$\\pm$", "±"))
    md = (project_root() / "book" / "papers" / f"{paper}.md").read_text(encoding="utf-8")
    md = re.sub(r"```.*?```", "", md, flags=re.S)
    md = re.sub(r"`[^`]*`", "", md)
    quoted = [q for q in re.findall(r"[\"“]([^\"”]*)[\"”]", md) if len(q.split()) >= 3]
    assert quoted, "the chapter quotes nothing: is the pattern right?"
    for q in quoted:
        for fragment in q.split(" ... "):
            assert _squash(fragment) in text, f"{paper}.md quotes {fragment!r}"
