"""Tables and figures that show the synthetic world (used by the ``synthetic_world`` notebook).

Every figure title says *synthetic*; nothing here reads real images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohorts.base import Cohort
from . import cxr
from .knobs import KNOB_MEANING, KNOB_NAMES, resolve_knobs
from .world import CXR_LABELS, render_ehr, render_rows, render_volumes

_BASAL = lambda U, V: (V > 0.1) & (np.abs(U) > 0.3)  # noqa: E731  effusion's region


def probe_cohort(rows: list[dict], *, knobs=None, seed: int = 0, labels=CXR_LABELS) -> Cohort:
    """A small synthetic cohort from explicit rows (missing columns get neutral defaults).

    Rows sharing a ``synthetic_key`` and ``patient_id`` share anatomy and acquisition, so
    they differ only by their labels and, through the knobs, their demographics.
    """
    k = resolve_knobs(knobs)
    base = {"split": "test", "age": 50.0, "sex": "M", "race": "White"}
    recs = []
    for i, r in enumerate(rows):
        rec = {**base, **r}
        rec.setdefault("sample_id", f"probe-{i}")
        rec.setdefault("synthetic_key", f"probe-key-{i}")
        rec.setdefault("patient_id", "patient-" + str(rec["synthetic_key"]))
        for lab in labels:
            rec[lab] = float(rec.get(lab, 0.0))
        recs.append(rec)
    t = pd.DataFrame(recs)
    finding_cols = [lab for lab in labels if lab != "No Finding"]
    if "No Finding" in labels:
        t["No Finding"] = (t[finding_cols].sum(axis=1) == 0).astype(float)
    return Cohort(name="synthetic-probe", table=t, labels=tuple(labels), source="synthetic",
                  pixel_column="synthetic_key",
                  meta={"synthetic": {"seed": int(seed), "knobs": k.to_dict(), "kind": "cxr"}})


def finding_gallery(*, seed: int = 0, size: int = 128, patients: int = 2, knobs="zero"):
    """Figure: for a few synthetic patients, the normal image and one image per finding."""
    import matplotlib.pyplot as plt

    cols = ["No Finding", *cxr.FINDINGS]
    # keys 2, 3, ... are PA films with world seed 0 (the AP marker is shown with the knobs)
    rows = [{"synthetic_key": f"gallery-{p + 2}", **({c: 1.0} if c != "No Finding" else {})}
            for p in range(patients) for c in cols]
    imgs = render_rows(probe_cohort(rows, knobs=knobs, seed=seed), None, size)
    fig, axes = plt.subplots(patients, len(cols), figsize=(1.6 * len(cols), 1.75 * patients))
    axes = np.atleast_2d(axes)
    for i, ax in enumerate(axes.ravel()):
        ax.imshow(imgs[i], cmap="gray", vmin=0, vmax=255)
        ax.set_xticks([]), ax.set_yticks([])
        if i < len(cols):
            ax.set_title(cols[i], fontsize=8)
    fig.suptitle("Synthetic chest X-rays: the same patient without and with each finding", fontsize=10)
    fig.tight_layout()
    return fig


def group_gallery(*, knobs=None, seed: int = 0, size: int = 128, finding: str = "Effusion"):
    """Figure: one synthetic patient with ``finding`` rendered as each default-knob group."""
    import matplotlib.pyplot as plt

    groups = [("reference (M, 50, White)", {}), ("sex=F", {"sex": "F"}),
              ("age=80+", {"age": 85.0}), ("age=18-39", {"age": 25.0}),
              ("race=Black", {"race": "Black"})]
    # with world seed 0 this key is a PA film that the age=80+ knob turns into an AP film
    rows = [{"synthetic_key": "group-gallery-0", finding: 1.0, **g} for _, g in groups]
    imgs = render_rows(probe_cohort(rows, knobs=knobs, seed=seed), None, size)
    fig, axes = plt.subplots(1, len(groups), figsize=(2.0 * len(groups), 2.3))
    for ax, im, (name, _) in zip(axes, imgs, groups):
        ax.imshow(im, cmap="gray", vmin=0, vmax=255)
        ax.set_title(name, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"Synthetic: one patient with {finding}, rendered as each group (bias knobs on)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def knobs_table(knobs=None) -> pd.DataFrame:
    """Every knob: its meaning, its neutral value, and its value per group in ``knobs``."""
    k = resolve_knobs(knobs)
    t = pd.DataFrame({"knob": KNOB_NAMES, "meaning": [KNOB_MEANING[n] for n in KNOB_NAMES],
                      "neutral": 0.0})
    for key, g in k.groups.items():
        t[key] = [getattr(g, n) for n in KNOB_NAMES]
    return t


def example_reports(*, seed: int = 0) -> pd.DataFrame:
    """One synthetic report per finding (and one normal)."""
    from .reports import write_report

    out = []
    for f in ["No Finding", *cxr.FINDINGS]:
        obs = {f: 1.0} if f != "No Finding" else {}
        out.append({"finding": f, "report": write_report(obs, f"report-example-{f}", seed)})
    return pd.DataFrame(out)


def ehr_figure(cohort: Cohort, *, hours: int = 48, channels=("Heart Rate", "Oxygen saturation",
                                                               "Temperature", "Respiratory rate")):
    """Figure: standardised EHR channels over time, mean of sick vs 'No Finding' samples."""
    import matplotlib.pyplot as plt

    from .ehr import FEATURES

    e = render_ehr(cohort, None, hours=hours)
    truth = cohort.table["true_No Finding"] if "true_No Finding" in cohort.table else cohort.table["No Finding"]
    sick = truth.to_numpy() == 0
    t = np.arange(e.shape[1]) * 2
    fig, axes = plt.subplots(1, len(channels), figsize=(3.2 * len(channels), 2.6), sharex=True)
    for ax, ch in zip(axes, channels):
        j = FEATURES.index(ch)
        ax.plot(t, e[~sick, :, j].mean(0), label="No Finding")
        ax.plot(t, e[sick, :, j].mean(0), label="any finding")
        ax.set_title(ch, fontsize=9)
        ax.set_xlabel("hours")
    axes[0].set_ylabel("standardised value")
    axes[0].legend(fontsize=7)
    fig.suptitle("Synthetic EHR (76-feature layout, 2-hour bins)", fontsize=10)
    fig.tight_layout()
    return fig


def ct_figure(cohort: Cohort, *, size: int = 64, depth: int = 32):
    """Figure: axial slices of one PE-positive synthetic CTPA, through its filling defect."""
    import matplotlib.pyplot as plt

    pos = np.flatnonzero(cohort.table["true_PE"].to_numpy() == 1)
    neg = np.flatnonzero(cohort.table["true_PE"].to_numpy() == 0)
    idx = [int(pos[0]), int(neg[0])]
    vol, art, dfx = render_volumes(cohort, idx, size, depth, return_masks=True)
    z = int(np.argmax(dfx[0].sum((1, 2))))
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    win = dict(cmap="gray", vmin=-200, vmax=500)          # a vascular window (HU)
    axes[0].imshow(vol[0, z], **win)
    axes[0].set_title(f"PE positive, slice {z}", fontsize=9)
    axes[1].imshow(vol[0, z], **win)
    axes[1].contour(dfx[0, z], levels=[0.5], colors="red", linewidths=0.8)
    axes[1].set_title("filling defect (red)", fontsize=9)
    axes[2].imshow(vol[1, z], **win)
    axes[2].set_title("PE negative, same level", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("Synthetic CTPA in Hounsfield units (window -200..500 HU)", fontsize=10)
    fig.tight_layout()
    return fig


def effusion_sign_by_group(knobs=None, *, n: int = 40, seed: int = 0, size: int = 64,
                           attribute: str = "sex", values=("M", "F")) -> pd.DataFrame:
    """Measured strength of the effusion sign per group: for ``n`` synthetic patients, the
    mean basal-lateral intensity increase (grey levels) that an effusion causes, rendering
    each patient once per group value (everything else equal)."""
    rows = []
    for v in values:
        for p in range(n):
            for eff in (0.0, 1.0):
                rows.append({"synthetic_key": f"sign-{p}", attribute: v, "Effusion": eff})
    imgs = render_rows(probe_cohort(rows, knobs=knobs, seed=seed), None, size).astype(float)
    c = (np.arange(size) + 0.5) / size * 2 - 1
    U, V = np.meshgrid(c, c)
    region = _BASAL(U, V)
    sign = (imgs[1::2] - imgs[0::2])[:, region].mean(1).reshape(len(values), n)
    return pd.DataFrame({attribute: list(values), "mean_sign": sign.mean(1),
                         "sd_sign": sign.std(1, ddof=1), "n_patients": n})


def recorded_vs_true(cohort: Cohort, *, by: str = "race") -> pd.DataFrame:
    """Share of truly positive findings that the recorded labels keep, per group."""
    rows = []
    for g, sub in cohort.table.groupby(by, observed=True):
        labs = [lab for lab in cohort.labels if lab != "No Finding" and f"true_{lab}" in sub]
        true = sub[[f"true_{lab}" for lab in labs]].to_numpy()
        rec = sub[labs].to_numpy()
        pos = true == 1
        rows.append({by: g, "true_positives": int(pos.sum()),
                     "recorded_share": float(rec[pos].mean()) if pos.any() else np.nan})
    return pd.DataFrame(rows)


__all__ = ["probe_cohort", "finding_gallery", "group_gallery", "knobs_table", "example_reports",
           "ehr_figure", "ct_figure", "effusion_sign_by_group", "recorded_vs_true"]


def prevalence_table(cohort: Cohort) -> pd.DataFrame:
    """Share of each finding per split (rows: findings)."""
    return cohort.table.groupby("split")[list(CXR_LABELS)].mean().T.reset_index(names="label")


def labeller_accuracy(cohort: Cohort) -> float:
    """Share of (report, finding) pairs where the rule-based labeller reads the true label."""
    from .reports import extract_labels

    extracted = extract_labels(cohort.table["report"])
    return float((extracted[list(CXR_LABELS)].to_numpy()
                  == cohort.table[list(CXR_LABELS)].to_numpy()).mean())


def sign_with_and_without_knobs(knobs, *, n: int, seed: int = 0, size: int = 128
                                ) -> tuple[pd.DataFrame, dict]:
    """:func:`effusion_sign_by_group` under ``knobs`` and with no knobs, and the women-to-men
    ratio of the mean sign under each (``sign_ratio_f_m_knobs`` / ``_zero``)."""
    on = effusion_sign_by_group(knobs, n=n, seed=seed, size=size)
    off = effusion_sign_by_group({}, n=n, seed=seed, size=size)
    table = pd.concat([on.assign(knobs="this run"), off.assign(knobs="none")], ignore_index=True)

    def ratio(t: pd.DataFrame) -> float:
        s = t.set_index("sex")["mean_sign"]
        return float(s["F"] / s["M"])

    return table, {"sign_ratio_f_m_knobs": (ratio(on), ".2f"),
                   "sign_ratio_f_m_zero": (ratio(off), ".2f")}
