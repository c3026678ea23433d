"""How published tables and figures are shown (compendium.display, Results.figure's alt
text): checked against hand-written expectations."""

from __future__ import annotations

import pandas as pd

from compendium.display import TableView, column_formatter, readable_header
from compendium.results import Results, describe_figure


def test_readable_headers():
    assert readable_header("take_young-M") == "take young-M"
    assert readable_header("p_value") == "p-value"
    assert readable_header("ci_low") == "CI low"
    assert readable_header("auroc_gap") == "AUROC gap"
    assert readable_header("udr") == "UDR"
    assert readable_header("reproduced with") == "reproduced with"   # written for readers
    assert readable_header("Young-M") == "Young-M"


def test_number_formats():
    whole = column_formatter("samples", [1805, 23248.0, float("nan")])
    assert [whole(v) for v in (1805, 23248.0, float("nan"), None)] == ["1,805", "23,248", "–", "–"]
    frac = column_formatter("estimate", [0.5, 0.12345])
    assert [frac(0.5), frac(0.12345), frac(-0.0004)] == ["0.500", "0.123", "-0.000"]
    tiny = column_formatter("variance", [0.0012, 0.0004])
    assert tiny(0.0012) == "0.0012"
    p = column_formatter("p_value", [0.04, 1e-5, 1.0])
    assert [p(0.04), p(1e-5), p(1.0)] == ["0.04", "1.0e-05", "1"]
    text = column_formatter("model", ["toy", "MedCLIP"])
    assert text("MedCLIP") == "MedCLIP"


def test_table_view_has_no_index_and_readable_headers():
    df = pd.DataFrame({"model_label": ["a", "b"], "p_value": [0.5, 0.01], "n": [12, 3400]})
    html = TableView(df, caption="Two models").__repr__()
    assert html.splitlines()[0] == "Two models"
    page = TableView(df, caption="Two models")._repr_html_()
    assert "<caption>Two models</caption>" in page
    heads = [h.split("</th>")[0] for h in page.split('<th scope="col">')[1:]]
    assert heads == ["model label", "p-value", "n"]        # no empty index header
    assert '<td class="num">3,400</td>' in page
    assert page.count("<tr>") == 3
    # a meaningful index becomes a column
    indexed = TableView(df.set_index("model_label"))._repr_html_()
    assert '<th scope="col">model label</th>' in indexed


def test_long_tables_show_their_first_rows_and_say_so():
    df = pd.DataFrame({"x": range(250)})
    page = TableView(df, max_rows=200)._repr_html_()
    assert page.count("<tr>") == 201
    assert "First 200 of 250 rows" in page


def test_results_table_keeps_the_csv_raw(tmp_path):
    out = Results(tmp_path, glue=False)
    df = pd.DataFrame({"take_young-M": [1.23456789], "p_value": [0.5]})
    back = out.table(df, "t", display=False)
    assert back is df
    assert (tmp_path / "tables" / "t.csv").read_text().splitlines() == [
        "take_young-M,p_value", "1.23457,0.5"]


def test_figure_alt_text_is_written_beside_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    fig.suptitle("Gaps")
    axes[0].set(title="sex", xlabel="model", ylabel="F1 gap")
    axes[1].set(title="age")
    assert describe_figure(fig) == ('Plot: Gaps. Panel "sex": model (x) against F1 gap (y); '
                                    'Panel "age".')
    Results(tmp_path, glue=False).figure(fig, "gaps", display=False)
    assert (tmp_path / "figures" / "gaps.alt.txt").read_text().startswith("Plot: Gaps.")
    fig2, _ = plt.subplots()
    Results(tmp_path, glue=False).figure(fig2, "plain", display=False, alt="A blank plot.")
    assert (tmp_path / "figures" / "plain.alt.txt").read_text() == "A blank plot.\n"


def _caption(out: Results, source: str) -> str:
    """The caption a table of ``out`` shows in the book (its HTML ``<caption>``)."""
    import re

    shown = []
    out._glue = lambda name, obj, display: shown.append(obj)  # what would be glued
    out.table(pd.DataFrame({"x": [1]}), "t", display=False, caption="One number.",
              source=source)
    page = shown[0]._repr_html_()
    return re.sub(r"<[^>]+>", "", page.split("<caption>")[1].split("</caption>")[0])


def test_a_run_table_says_synthetic_under_demo_and_your_data_under_full(tmp_path):
    from compendium.notebook import setup
    from compendium.runner import resolve_params

    demo = Results(tmp_path / "demo", glue=False, profile="demo", knobs="default")
    text = _caption(demo, "run")
    assert text.startswith("One number. Source: this run")
    assert "synthetic world, not real patients" in text and "profile demo" in text
    assert "bias knobs default" in text and "your data" not in text
    full = Results(tmp_path / "full", glue=False, profile="full")
    text = _caption(full, "run")
    assert "your data (profile full)" in text and "synthetic" not in text
    # a run with knobs of its own names them (no nested parentheses)
    spec = resolve_params("paper_c", "smoke", overrides=["knobs={sex=F: {soft_tissue: 0.5}}"])
    _, out = setup("paper_c", {k: getattr(spec, k) for k in spec.field_names()}, banner=False)
    assert "bias knobs sex=F soft_tissue 0.5)" in out.provenance("run")
    assert "((" not in out.provenance("run") and "))" not in out.provenance("run")
    # setup's writer knows the run: a paper under demo is synthetic, under full real;
    # a lesson's full profile is a larger synthetic run
    for name, profile, synthetic in (("paper_a", "demo", True), ("paper_a", "full", False),
                                     ("teaching_metrics", "full", True)):
        spec = resolve_params(name, profile)
        _, out = setup(name, {k: getattr(spec, k) for k in spec.field_names()}, banner=False)
        assert out.profile == profile
        assert ("synthetic world" in out.provenance("run")) is synthetic, (name, profile)


def test_metadata_paper_and_simulation_sources_do_not_depend_on_the_profile(tmp_path):
    for profile in ("smoke", "demo", "full"):
        out = Results(None, glue=False, profile=profile, knobs="default")
        meta = _caption(out, "metadata")
        assert "real dataset metadata, not synthetic" in meta
        assert "synthetic world" not in meta and "knobs" not in meta
        assert "synthetic under every profile" in _caption(out, "simulation")
        assert "paper reports" in _caption(out, "paper")
    both = _caption(Results(None, glue=False, profile="smoke"), "paper+run")
    assert "Sources: what the paper reports; this run on the synthetic world" in both
    # no profile given: the run's numbers are still called synthetic, never real
    assert "synthetic world" in Results(None, glue=False).provenance("run")


def test_an_unknown_source_is_refused_naming_the_allowed_ones():
    import pytest

    out = Results(None, glue=False, profile="demo")
    for bad in ("synthetic", "run+run", "paper+run+metadata", ""):
        with pytest.raises(ValueError, match="not one of run, metadata, paper, simulation"):
            out.table(pd.DataFrame({"x": [1]}), "t", display=False, caption="c", source=bad)


def test_the_csv_holds_no_caption(tmp_path):
    Results(tmp_path, glue=False, profile="demo").table(
        pd.DataFrame({"x": [1]}), "t", display=False, caption="One number.", source="run")
    assert (tmp_path / "tables" / "t.csv").read_text() == "x\n1\n"
