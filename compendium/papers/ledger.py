"""The claims ledger: every number the five papers print and every headline claim, with what
a run of the compendium says about it, in one tidy table.

Sources, per paper package ``compendium/papers/<paper>/``:

- ``reported.yaml`` (:func:`~compendium.papers.reported.load_reported`): every printed number,
  its location and its verbatim quote;
- ``claims.yaml`` (:func:`~compendium.papers.claims.load_claims`): the headline claims,
  verbatim, and how each is checked;
- ``readings.yaml``: the readings of the paper's ambiguities, whose values the run records;

and the run the ledger rests on, ``results/<paper>/<profile>/`` (the ``full`` run when one
exists, else the run of the requested profile): ``tables/reported_compared.csv`` (the
notebook's :func:`~compendium.papers.reported.compare_reported` table), ``tables/claims.csv``
(the checked statements) and ``run.json`` (parameters, profile, time).

The verdicts are the compendium's, defined in :data:`VERDICT_DEFINITIONS`.  A reported number
or a claim is never dropped: one the compendium cannot reproduce stays in the ledger with the
verdict "not testable here".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from .claims import load_claims
from .readings import load_readings
from .reported import KEYS, load_reported

#: The four verdicts, in the order a summary lists them.
VERDICTS = ("consistent", "inconsistent", "not testable here", "waiting for a full run")

#: What each verdict means (ours: the papers define none of them).
VERDICT_DEFINITIONS = {
    "consistent": (
        "the run rests on the paper's data and models (profile `full`), or on real metadata "
        "alone, and: for a number, the reported value lies inside the reproduced 95 % interval "
        "or the reproduced value inside the paper's printed interval (without either interval, "
        "the reproduced value rounds to the printed one at the printed precision); for a claim, "
        "its check holds on the run"),
    "inconsistent": (
        "the same conditions as *consistent*, and the number is outside both intervals (or "
        "rounds to another value), or the claim's check does not hold"),
    "not testable here": (
        "the compendium computes no counterpart of the number, or the claim's check cannot be "
        "evaluated on this run (the reason is given)"),
    "waiting for a full run": (
        "the run has a counterpart, but it rests on the synthetic world (profiles `smoke` and "
        "`demo`: synthetic pixels, reports and outcomes, toy stand-ins for the paper's "
        "models), so agreement or disagreement says nothing about the paper; the `full` "
        "profile, with the paper's data and models, decides"),
}

#: What a row's number rests on.
RESTS_ON = {
    "full": "full run (the paper's data and models)",
    "real": "real metadata",
    "synthetic": "synthetic world",
    "none": "no run yet",
}

#: Columns of the ledger, in order.
COLUMNS = ("paper", "kind", "id", "where", "claim", "what", "reported", "reported_interval",
           "reproduced", "reproduced_interval", "reproduced_with", "this_run_says",
           "paper_numbers_say", "profile", "rests_on", "verdict", "why", "reading")

PAPERS = ("paper_a", "paper_b", "paper_c", "paper_d", "paper_e")


def paper_letter(paper: str) -> str:
    """``paper_c`` -> ``C``."""
    return paper.rsplit("_", 1)[-1].upper()


def ledger_run_dir(paper: str, profile: str, root: str | Path | None = None) -> tuple[Path, str]:
    """The run the ledger rests on: the ``full`` run when it exists, else ``profile``'s."""
    from ..runner import results_dir

    full = results_dir(paper, "full", root)
    if profile != "full" and (full / "run.json").is_file():
        return full, "full"
    return results_dir(paper, profile, root), profile


def _number_text(v: float) -> str:
    """A reported value as printed: whole numbers with separators, else the shortest repr."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    v = float(v)
    return f"{int(v):,}" if v.is_integer() else repr(v)


def _interval(lo: Any, hi: Any, fmt: str = ".3f") -> str:
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return ""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return ""
    return f"[{lo:{fmt}}, {hi:{fmt}}]"


def _decimals(v: float) -> int:
    text = repr(float(v))
    if "e" in text:
        return 6
    return 0 if float(v).is_integer() else len(text.split(".")[1])


def judge_number(value: float, lo: float, hi: float, reproduced: float, rep_lo: float,
                 rep_hi: float) -> tuple[bool, str]:
    """Whether a reproduced number agrees with a reported one (:data:`VERDICT_DEFINITIONS`),
    and why.

    >>> judge_number(0.5, float("nan"), float("nan"), 0.52, 0.45, 0.6)[0]
    True
    >>> judge_number(0.5, 0.48, 0.52, 0.7, 0.65, 0.75)[0]
    False
    >>> judge_number(23248, float("nan"), float("nan"), 23248, float("nan"), float("nan"))[0]
    True
    """
    has_rep = math.isfinite(rep_lo) and math.isfinite(rep_hi)
    has_rep_int = math.isfinite(lo) and math.isfinite(hi)
    if has_rep and rep_lo <= value <= rep_hi:
        return True, "the reported value lies inside the reproduced 95 % interval"
    if has_rep_int and lo <= reproduced <= hi:
        return True, "the reproduced value lies inside the paper's printed interval"
    if has_rep or has_rep_int:
        return False, "each value lies outside the other's interval"
    d = _decimals(value)
    same = round(reproduced, d) == round(value, d)
    return same, (f"rounded to {d} decimals the reproduced value "
                  f"{'equals' if same else 'differs from'} the printed one")


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _readings_used(paper: str, params: dict[str, Any]) -> str:
    parts = []
    for r in load_readings(paper):
        v = params.get(r.parameter, r.default)
        v = str(v).lower() if isinstance(v, bool) else v
        parts.append(f"{r.parameter} = {v}")
    return "; ".join(parts)


def _rests_on(profile: str, has_run: bool, reproduced_with: str) -> str:
    if not has_run:
        return RESTS_ON["none"]
    if profile == "full":
        return RESTS_ON["full"]
    if "real metadata" in reproduced_with.lower():
        return RESTS_ON["real"]
    return RESTS_ON["synthetic"]


def _what(row: pd.Series) -> str:
    return ", ".join(f"{k} {row[k]}" for k in KEYS if str(row[k]) not in ("", "nan"))


def paper_ledger(paper: str, profile: str = "demo", root: str | Path | None = None
                 ) -> pd.DataFrame:
    """The ledger rows of one paper: one per reported number, then one per claim."""
    run_dir, used_profile = ledger_run_dir(paper, profile, root)
    has_run = (run_dir / "run.json").is_file()
    params: dict[str, Any] = {}
    compared = claims = None
    if has_run:
        params = json.loads((run_dir / "run.json").read_text()).get("parameters", {})
        compared = _read_csv(run_dir / "tables" / "reported_compared.csv")
        claims = _read_csv(run_dir / "tables" / "claims.csv")
        if compared is None or claims is None:
            raise InputError(f"{run_dir} has no tables/reported_compared.csv or claims.csv "
                             f"(a run older than the claims ledger): run `compendium run "
                             f"{paper} --profile {used_profile}` again")
    reading = _readings_used(paper, params)
    reported = load_reported(paper)
    rows = []
    got = compared.set_index("id") if compared is not None else None
    for _, r in reported.iterrows():
        rep = got.loc[r["id"]] if got is not None and r["id"] in got.index else None
        value = float(r["value"])
        reproduced = float(rep["reproduced"]) if rep is not None else float("nan")
        rep_lo = float(rep["reproduced_low"]) if rep is not None else float("nan")
        rep_hi = float(rep["reproduced_high"]) if rep is not None else float("nan")
        with_ = str(rep["reproduced_with"]) if rep is not None else ""
        with_ = "" if with_ == "nan" else with_
        rests = _rests_on(used_profile, has_run, with_)
        if not has_run:
            verdict, why, says = "waiting for a full run", "no run of this paper yet", ""
        elif not math.isfinite(reproduced):
            verdict = "not testable here"
            why = "this run computes no counterpart of this number" + (
                f" ({with_})" if with_ and with_ != "not run" else "")
            says = ""
        else:
            ok, why = judge_number(value, float(r["ci_low"]), float(r["ci_high"]), reproduced,
                                   rep_lo, rep_hi)
            says = "agrees" if ok else "disagrees"
            if rests == RESTS_ON["synthetic"]:
                verdict = "waiting for a full run"
                why = (f"synthetic world: the toy run {says} ({why}), which says nothing "
                       "about the paper")
            else:
                verdict = "consistent" if ok else "inconsistent"
        d = max(_decimals(value), 3) if not value.is_integer() else 0
        rows.append({
            "paper": paper_letter(paper), "kind": "number", "id": r["id"], "where": r["where"],
            "claim": r["quote"], "what": _what(r), "reported": _number_text(value),
            "reported_interval": _interval(r["ci_low"], r["ci_high"], f".{_decimals(value)}f"),
            "reproduced": (f"{reproduced:,.{d}f}" if math.isfinite(reproduced) else ""),
            "reproduced_interval": _interval(rep_lo, rep_hi, f".{d}f"),
            "reproduced_with": with_, "this_run_says": says, "paper_numbers_say": "",
            "profile": used_profile if has_run else "", "rests_on": rests, "verdict": verdict,
            "why": why, "reading": reading})
    for c in load_claims(paper):
        run_row = paper_row = None
        if claims is not None:
            mine = claims[claims["claim"] == c.id]
            run = mine[mine["numbers"] == "this run"]
            own = mine[mine["numbers"] != "this run"]
            run_row = run.iloc[0] if len(run) else None
            paper_row = own.iloc[0] if len(own) else None
        if claims is not None and run_row is None:
            raise InputError(f"{run_dir}/tables/claims.csv has no 'this run' row for claim "
                             f"{c.id!r}")
        text = (lambda row, k: "" if row is None or str(row[k]) == "nan" else str(row[k]))
        says = text(run_row, "verdict")
        rests = _rests_on(used_profile, has_run, "")
        if not has_run:
            verdict, why = "waiting for a full run", "no run of this paper yet"
        elif says == "not testable here":
            verdict, why = "not testable here", text(run_row, "detail") or "the check says so"
        elif rests == RESTS_ON["synthetic"]:
            verdict = "waiting for a full run"
            why = (f"synthetic world: on the toy run the claim {says}, which says nothing "
                   "about the paper")
        else:
            verdict = "consistent" if says == "holds" else "inconsistent"
            why = text(run_row, "detail") or f"the check {says} on the full run"
        own_says = text(paper_row, "verdict")
        if own_says and text(paper_row, "value"):
            own_says += f" ({text(paper_row, 'value')})"
        rows.append({
            "paper": paper_letter(paper), "kind": "claim", "id": c.id, "where": c.where,
            "claim": c.quote, "what": c.checked_as, "reported": "",
            "reported_interval": "", "reproduced": text(run_row, "value"),
            "reproduced_interval": text(run_row, "interval"), "reproduced_with": "",
            "this_run_says": says, "paper_numbers_say": own_says,
            "profile": used_profile if has_run else "", "rests_on": rests, "verdict": verdict,
            "why": why, "reading": reading})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def build_ledger(profile: str = "demo", root: str | Path | None = None,
                 papers: tuple[str, ...] = PAPERS) -> pd.DataFrame:
    """The ledger of every paper (see the module docstring)."""
    return pd.concat([paper_ledger(p, profile, root) for p in papers], ignore_index=True)


def verdict_counts(ledger: pd.DataFrame) -> pd.DataFrame:
    """Per paper and kind (number, claim), how many rows have each verdict."""
    t = (ledger.groupby(["paper", "kind", "verdict"]).size().unstack("verdict", fill_value=0)
         .reindex(columns=list(VERDICTS), fill_value=0).reset_index())
    return t


def _full_readiness(paper: str, root: str | Path | None) -> str:
    """Whether a ``full`` run can start on this machine, or what it lacks."""
    from ..errors import CompendiumError
    from ..runner import resolve_params

    try:
        spec = resolve_params(paper, "full", root=root)
        spec.check()
    except CompendiumError as exc:
        msg = str(exc)
        if "missing:" in msg:
            items = [i.strip() for i in msg.split("missing:", 1)[1].split(" | ")]
            data = [i.split(" (")[0].split(":")[0].removeprefix("data_roots.")
                    for i in items if i.startswith("data_roots.")]
            n_weights = len(items) - len(data)
            lacks = [f"data: {', '.join(data)}"] if data else []
            if n_weights:
                lacks.append(f"{n_weights} model weight{'s' if n_weights > 1 else ''}")
            return (f"not run; `params/{paper}/full.yaml` validates; this machine lacks "
                    + "; ".join(lacks))
        return f"not run; not ready: {msg}"
    return f"not run; every input of `params/{paper}/full.yaml` is on this machine"


def status_table(ledger: pd.DataFrame, profile: str = "demo",
                 root: str | Path | None = None) -> pd.DataFrame:
    """Per paper: whether the book's profile was run (when, how long), whether a full run
    exists or could start here, and the ledger's verdicts."""
    from ..runner import results_dir

    rows = []
    for paper in dict.fromkeys(f"paper_{p.lower()}" for p in ledger["paper"]):
        mine = ledger[ledger["paper"] == paper_letter(paper)]
        info = results_dir(paper, profile, root) / "run.json"
        if info.is_file():
            run = json.loads(info.read_text())
            demo = (f"yes: {run.get('finished', '')[:10]}, "
                    f"{float(run.get('seconds', float('nan'))):.0f} s")
        else:
            demo = "not run"
        full_info = results_dir(paper, "full", root) / "run.json"
        if full_info.is_file():
            full = "done: " + json.loads(full_info.read_text()).get("finished", "")[:10]
        else:
            full = _full_readiness(paper, root)
        counts = mine["verdict"].value_counts()
        verdicts = "; ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts)
        rows.append({"paper": paper_letter(paper), f"{profile} run": demo, "full run": full,
                     "numbers": int((mine["kind"] == "number").sum()),
                     "claims": int((mine["kind"] == "claim").sum()), "verdicts": verdicts})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------- markdown


def _cell(text: Any) -> str:
    """A value as the text of a Markdown table cell."""
    s = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    return (s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
            .replace("*", "\\*").replace("`", "\\`").replace("$", "\\$"))


def markdown_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(_cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def reader_table(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger's columns as the book shows them (the CSV has them all)."""
    def joined(v, iv):
        return f"{v} {iv}".strip()

    return pd.DataFrame({
        "Paper": ledger["paper"], "Kind": ledger["kind"], "Where": ledger["where"],
        "The paper's words": ledger["claim"], "What is compared": ledger["what"],
        # for a claim: what the same check says on the paper's own printed numbers
        "Reported": [joined(v, i) if k == "number" else
                     (f"on the paper's numbers: {own}" if own else "")
                     for k, v, i, own in zip(ledger["kind"], ledger["reported"],
                                             ledger["reported_interval"],
                                             ledger["paper_numbers_say"])],
        "Reproduced": [joined(v, i) for v, i in zip(ledger["reproduced"],
                                                    ledger["reproduced_interval"])],
        "Rests on": [f"{r} ({p})" if p else r for r, p in zip(ledger["rests_on"],
                                                             ledger["profile"])],
        "Verdict": ledger["verdict"], "Why (ours)": ledger["why"]})


def ledger_markdown(ledger: pd.DataFrame) -> str:
    """The "What holds" table, inside a container the book's filter script recognises, then
    the readings each paper's run used (the same for all of a paper's rows)."""
    readings = (ledger[["paper", "profile", "reading"]].drop_duplicates("paper")
                .rename(columns={"paper": "Paper", "profile": "Profile",
                                 "reading": "Readings used (parameter = value)"}))
    return ("```{container} ledger-table\n" + markdown_table(reader_table(ledger)) + "```\n\n"
            "The readings each paper's run used, where the paper is ambiguous (each paper's "
            "chapter gives its words, the candidates and the evidence):\n\n"
            + markdown_table(readings))


def summary_markdown(ledger: pd.DataFrame, paper: str) -> str:
    """The box at the top of a paper's chapter: its verdicts at a glance."""
    mine = ledger[ledger["paper"] == paper_letter(paper)]
    if mine.empty:
        return ""
    counts = mine.groupby(["kind", "verdict"]).size()
    lines = []
    for kind, label in (("number", "reported numbers"), ("claim", "headline claims")):
        if kind not in counts.index.get_level_values(0):
            continue
        c = counts[kind]
        parts = ", ".join(f"{int(c[v])} {v}" for v in VERDICTS if v in c.index)
        lines.append(f"- **{int(c.sum())} {label}**: {parts}.")
    profile = mine["profile"].iloc[0]
    rests = mine["rests_on"].iloc[0]
    own = mine[(mine["kind"] == "claim")
               & mine["paper_numbers_say"].str.match(r"^(holds|does not hold)")]
    if len(own):
        holds = int(own["paper_numbers_say"].str.startswith("holds").sum())
        lines.append(f"- The same checks on the paper's own printed numbers: {holds} of "
                     f"{len(own)} claims that they can test hold.")
    return (":::{admonition} What holds, at a glance\n:class: ledger-summary\n\n"
            f"This chapter's run: profile `{profile or 'none'}`, resting on the {rests}. "
            "Every reported number and headline claim of the paper, with its verdict "
            "(definitions in {doc}`/book/holds`):\n\n" + "\n".join(lines) + "\n:::\n")


def status_markdown(status: pd.DataFrame) -> str:
    t = status.copy()
    t["paper"] = [f"{{doc}}`Paper {p} </book/papers/paper_{p.lower()}>`" for p in t["paper"]]
    head = "| " + " | ".join(_cell(c) for c in t.columns) + " |"
    rule = "|" + "|".join("---" for _ in t.columns) + "|"
    markdown = {0, list(t.columns).index("full run")}  # cells written as Markdown here
    body = ["| " + " | ".join(str(v).replace("|", "\\|") if i in markdown else _cell(v)
                              for i, v in enumerate(row)) + " |"
            for row in t.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def stage_ledger(profile: str, folder: str | Path, root: str | Path | None = None
                 ) -> pd.DataFrame:
    """Write the ledger's files for the book into ``folder``: ``ledger.csv`` (every column),
    ``ledger.md`` (the "What holds" table), ``<paper>.md`` (each chapter's summary) and
    ``status.md`` (the first page's table)."""
    from ..atomic import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ledger = build_ledger(profile, root)
    with atomic_write(folder / "ledger.csv") as fh:
        ledger.to_csv(fh, index=False, lineterminator="\n")
    (folder / "ledger.md").write_text(ledger_markdown(ledger))
    for paper in PAPERS:
        (folder / f"{paper}.md").write_text(summary_markdown(ledger, paper))
    (folder / "status.md").write_text(status_markdown(status_table(ledger, profile, root)))
    return ledger


__all__ = ["COLUMNS", "PAPERS", "RESTS_ON", "VERDICTS", "VERDICT_DEFINITIONS", "build_ledger",
           "judge_number", "ledger_markdown", "paper_ledger", "stage_ledger", "status_table",
           "summary_markdown", "verdict_counts"]
