"""The claims ledger (compendium.papers.ledger): every reported number and every checked
statement of the five papers is in it, with the verdict its definition gives."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from compendium.papers.claims import load_claims
from compendium.papers.ledger import (
    COLUMNS,
    PAPERS,
    VERDICTS,
    build_ledger,
    judge_number,
    paper_ledger,
    stage_ledger,
    summary_markdown,
)
from compendium.papers.reported import load_reported


def _write_run(results, paper, profile, *, shift=0.0, with_interval=True, drop=(),
               claim_verdict="holds", untestable=(), params=None):
    """A run folder as a paper notebook publishes it: run.json, the compare_reported table
    (reproduced = reported + shift, with or without an interval) and the claims table."""
    out = results / paper / profile
    (out / "tables").mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({
        "profile": profile, "parameters": params or {}, "seconds": 12.0,
        "finished": "2026-12-03T10:00:00Z"}))
    rep = load_reported(paper)
    comp = rep.copy()
    comp["reproduced"] = comp["value"] + shift
    comp["reproduced_low"] = comp["reproduced"] - 0.01 if with_interval else np.nan
    comp["reproduced_high"] = comp["reproduced"] + 0.01 if with_interval else np.nan
    comp["reproduced_with"] = "this run"
    dropped = comp["id"].isin(list(drop))
    comp.loc[dropped, ["reproduced", "reproduced_low", "reproduced_high"]] = np.nan
    comp.loc[dropped, "reproduced_with"] = "not run"
    comp.to_csv(out / "tables" / "reported_compared.csv", index=False)
    rows = []
    for c in load_claims(paper):
        v = "not testable here" if c.id in untestable else claim_verdict
        rows.append({"claim": c.id, "where": c.where, "the paper's words": c.quote,
                     "checked as": c.checked_as, "numbers": "this run", "verdict": v,
                     "value": "" if v == "not testable here" else "3 of 4",
                     "interval": "", "detail": "needs two models" if v != claim_verdict
                     else ""})
        rows.append({"claim": c.id, "where": c.where, "the paper's words": c.quote,
                     "checked as": c.checked_as, "numbers": "the paper's numbers",
                     "verdict": "holds", "value": "2 of 2", "interval": "", "detail": ""})
    pd.DataFrame(rows).to_csv(out / "tables" / "claims.csv", index=False)
    return out


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


def test_judge_number_by_hand():
    nan = float("nan")
    # reported inside the reproduced interval
    assert judge_number(0.494, nan, nan, 0.511, 0.452, 0.573)[0]
    # reproduced inside the paper's printed interval, reported outside the reproduced one
    assert judge_number(0.071, 0.055, 0.088, 0.060, 0.059, 0.061)[0]
    # outside both
    assert not judge_number(0.071, 0.055, 0.088, -0.112, -0.171, -0.063)[0]
    # no interval: rounding at the printed precision (3 decimals here)
    assert judge_number(0.833, nan, nan, 0.8334, nan, nan)[0]
    assert not judge_number(0.833, nan, nan, 0.8336, nan, nan)[0]
    assert not judge_number(23248, nan, nan, 1000, nan, nan)[0]


def test_every_reported_number_and_claim_is_in_the_ledger(results):
    for paper in PAPERS:
        _write_run(results, paper, "demo")
    ledger = build_ledger("demo")
    assert list(ledger.columns) == list(COLUMNS)
    for paper in PAPERS:
        letter = paper[-1].upper()
        mine = ledger[ledger["paper"] == letter]
        rep = load_reported(paper)
        numbers = mine[mine["kind"] == "number"].set_index("id")
        assert sorted(numbers.index) == sorted(rep["id"]), paper
        # the paper's words verbatim, the reported value as printed
        for _, r in rep.iterrows():
            assert numbers.loc[r["id"], "claim"] == r["quote"]
            assert float(numbers.loc[r["id"], "reported"].replace(",", "")) == r["value"]
        claims = mine[mine["kind"] == "claim"].set_index("id")
        assert sorted(claims.index) == sorted(c.id for c in load_claims(paper)), paper
        for c in load_claims(paper):
            assert claims.loc[c.id, "claim"] == c.quote
    assert set(ledger["verdict"]) <= set(VERDICTS)
    # a demo run rests on the synthetic world: nothing is judged against the paper
    assert set(ledger["verdict"]) == {"waiting for a full run"}
    assert set(ledger["rests_on"]) == {"synthetic world"}


def test_full_run_verdicts(results):
    paper = "paper_c"
    rep = load_reported(paper)
    first = rep["id"].iloc[0]
    claims = [c.id for c in load_claims(paper)]
    _write_run(results, paper, "full", shift=0.0, drop=[first], untestable=claims[:1])
    t = paper_ledger(paper, "demo")  # a full run, when present, is what the ledger rests on
    numbers = t[t["kind"] == "number"].set_index("id")
    assert numbers.loc[first, "verdict"] == "not testable here"
    assert (numbers.drop(first)["verdict"] == "consistent").all()
    assert set(t["profile"]) == {"full"}
    c = t[t["kind"] == "claim"].set_index("id")
    assert c.loc[claims[0], "verdict"] == "not testable here"
    assert c.loc[claims[0], "why"] == "needs two models"
    assert (c.drop(claims[0])["verdict"] == "consistent").all()
    assert c.loc[claims[1], "paper_numbers_say"] == "holds (2 of 2)"


def test_full_run_far_from_the_paper_is_inconsistent(results):
    _write_run(results, "paper_d", "full", shift=0.5, claim_verdict="does not hold")
    t = paper_ledger("paper_d", "full")
    assert set(t["verdict"]) == {"inconsistent"}


def test_no_run_and_an_old_run(results):
    t = paper_ledger("paper_e", "demo")
    assert len(t) == len(load_reported("paper_e")) + len(load_claims("paper_e"))
    assert set(t["rests_on"]) == {"no run yet"}
    out = _write_run(results, "paper_e", "demo")
    (out / "tables" / "reported_compared.csv").unlink()
    from compendium.errors import InputError

    with pytest.raises(InputError, match="run `compendium run paper_e --profile demo` again"):
        paper_ledger("paper_e", "demo")


def test_reading_used_comes_from_the_run(results):
    _write_run(results, "paper_c", "demo", params={"threshold": "half"})
    t = paper_ledger("paper_c", "demo")
    assert "threshold = half" in t["reading"].iloc[0]


def test_stage_ledger_writes_the_book_files(results, tmp_path):
    for paper in PAPERS:
        _write_run(results, paper, "demo")
    folder = tmp_path / "staged"
    ledger = stage_ledger("demo", folder)
    back = pd.read_csv(folder / "ledger.csv", keep_default_na=False)
    assert len(back) == len(ledger)
    assert set(back["id"]) == set(ledger["id"])
    text = (folder / "ledger.md").read_text()
    assert text.startswith("```{container} ledger-table")
    # one table row per ledger row; a "|" in a quote is escaped
    body = [line for line in text.split("```\n\n")[0].splitlines() if line.startswith("| ")]
    assert len(body) == len(ledger) + 1
    assert all(len(re.split(r"(?<!\\)\|", line)) == 10 + 2 for line in body)
    summary = (folder / "paper_c.md").read_text()
    n = len(load_reported("paper_c"))
    assert f"**{n} reported numbers**: {n} waiting for a full run." in summary
    status = (folder / "status.md").read_text()
    assert status.count("{doc}`Paper ") == 5
    assert "yes: 2026-12-03, 12 s" in status
    assert summary_markdown(ledger, "paper_z") == ""


def test_reported_value_text_keeps_the_printed_digits(results):
    _write_run(results, "paper_b", "demo", with_interval=False)
    t = paper_ledger("paper_b", "demo").set_index("id")
    rep = load_reported("paper_b").set_index("id")
    assert t.loc["studies", "reported"] == f"{int(rep.loc['studies', 'value']):,}"
    assert not any(isinstance(v, float) and math.isnan(v) for v in t["reproduced"])
