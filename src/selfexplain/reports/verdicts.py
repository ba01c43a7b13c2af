"""Verdicts on a comparison: the rule, fixed in advance and the same for every claim of the reading.

* **reproduced**: the 95% interval of the change lies above 0 and the Holm-adjusted p (over the declared
  family: every claim of the reading, or each paper table) is below 0.05 (table 7, which claims no loss of
  accuracy: the interval lies above -:data:`ACCURACY_MARGIN`; it is no test of a difference and is left out
  of the family);
* **not reproduced**: the interval lies below the margin, the paper's smallest reported change for that
  comparison (where the paper gives none, the declared smallest change of interest), *and* the study can
  detect a change of that size (its detectable rise at 80% power is at most the margin), so an effect of
  that size is ruled out; for table 7, the interval lies below 0 (a significant loss);
* **undetermined**: anything else, including an underpowered comparison and fewer than
  :data:`~selfexplain.stats.MIN_PAIRS` valid pairs.

A direction reproduced with a smaller magnitude than the paper's says so in the row.  Conditions beyond
the paper (experiment ``variants``) are judged by the same rule in the words holds / does not hold.  A
verdict is *robust* when every estimand's interval points the way the primary's does; otherwise the row
names the ones that disagree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import estimands as E
from ..stats import INVALID, MIN_PAIRS, detectable_difference, holm
from .study import StudyData
from .table import fmt, fmt_p

REPRODUCED, NOT_REPRODUCED, UNDETERMINED = "reproduced", "not reproduced", "undetermined"
HOLDS, DOES_NOT_HOLD = "holds", "does not hold"
ACCURACY_MARGIN = 0.05  # table 7's "no significant drop": a loss of 5 points or more is ruled out

# The paper's changes on Sentiment140 (7B, 13B), read off its tables 3-5 and section 4.3; the threshold for
# "not reproduced" is the smaller positive one (the weakest effect the paper reports for that comparison).
PAPER = {
    ("table 3", "attribution"): (0.342 - 0.124, 0.304 - 0.134),
    ("table 3", "redaction"): (0.342 - 0.124, 0.304 - 0.090),
    ("table 3", "counterfactual"): (0.331 - 0.186, 0.435 - 0.335),
    ("table 4 vs none", "attribution"): (0.300 - 0.120, 0.255 - 0.140),
    ("table 4 vs none", "redaction"): (0.271 - 0.102, 0.204 - 0.110),
    ("table 4 vs none", "counterfactual"): (0.241 - 0.173, 0.595 - 0.303),
    ("table 4 vs predictions", "attribution"): (0.300 - 0.126, 0.255 - 0.141),
    ("table 4 vs predictions", "redaction"): (0.271 - 0.099, 0.204 - 0.080),
    ("table 4 vs predictions", "counterfactual"): (0.241 - 0.129, 0.595 - 0.270),
    ("table 5", "attribution"): (0.451 - 0.216, 0.435 - 0.234),
    ("table 5", "redaction"): (0.154 - 0.074, 0.174 - 0.125),
    ("table 5", "counterfactual"): (0.231 - 0.246, 0.497 - 0.345),
    # Figure 3 (13B only): attribution-trained on Sentiment140, gains on SNLI and AG News (section 4.3).
    ("figure 3", "attribution"): (0.072, 0.044),
    # Table 10: valid one-word explanations of 5,000 Sentiment140 samples, no training -> w/ the style.
    ("table 10", "attribution"): ((4952 - 4600) / 5000, (4964 - 4618) / 5000),
    ("table 10", "redaction"): ((4706 - 886) / 5000, (4719 - 1291) / 5000),
    ("table 10", "counterfactual"): ((4215 - 529) / 5000, (4516 - 1072) / 5000),
}


def paper_threshold(key: tuple[str, str]) -> float | None:
    positive = [x for x in PAPER.get(key, ()) if x > 0]
    return min(positive) if positive else None


def paper_shown(key: tuple[str, str]) -> str:
    if key not in PAPER:
        return "-"
    a, b = PAPER[key]
    return f"{a:+.3f} / {b:+.3f}" + (" (13B)" if key[0] == "figure 3" else " (7B / 13B)")


def reading_settings(study: StudyData) -> dict[str, Any]:
    """The primary estimand, margin and Holm family: the experiment's declaration, then report-time flags."""
    declared = {
        "primary": E.VALID,
        "margin": E.DEFAULT_MARGIN,
        "family": "reading",
        **(study.experiment.get("reading") or {}),
    }
    return {**declared, **study.reading_overrides}


def judge(
    e: E.Estimate,
    threshold: float | None,
    beyond: bool = False,
    valid_pairs: int | None = None,
    adjusted_p: float | None = None,
    detectable: float | None = None,
    tests: int = 1,
) -> tuple[str, str]:
    """The verdict on a rise (after - before > 0) and the reason, by the module's rule.

    ``valid_pairs``: samples valid in both conditions (default: every sample of ``e``); ``adjusted_p``: the
    Holm-adjusted p among ``tests`` (None: no adjustment); ``detectable``: the rise the study detects."""
    yes, no = (HOLDS, DOES_NOT_HOLD) if beyond else (REPRODUCED, NOT_REPRODUCED)
    pairs = e.n if valid_pairs is None else valid_pairs
    if pairs < MIN_PAIRS:
        return UNDETERMINED, f"too few valid pairs ({pairs})"
    if e.difference is None or e.low is None or e.high is None:
        return UNDETERMINED, "no valid pairs"
    if e.low > 0:
        if adjusted_p is not None and adjusted_p >= 0.05:
            return UNDETERMINED, f"interval above 0, but Holm-adjusted p = {adjusted_p:.3f} over {tests} tests"
        small = threshold is not None and e.high < threshold
        return yes, "interval above 0" + (f"; smaller than the paper's +{threshold:.3f}" if small else "")
    if threshold is not None and e.high < threshold:
        if detectable is not None and detectable > threshold:
            return UNDETERMINED, (
                f"interval below +{threshold:.3f}, but underpowered: the detectable rise +{detectable:.3f} exceeds it"
            )
        return no, f"interval below +{threshold:.3f}: a rise that large is ruled out"
    return UNDETERMINED, ("interval includes 0" + (f" and +{threshold:.3f}" if threshold is not None else ""))


def detectable_rise(primary: str, e: E.Estimate, bc: np.ndarray, ac: np.ndarray) -> float | None:
    """The rise from ``e.before`` detectable with 80% power at the counts the primary estimand rests on
    (label-balanced: each side's valid count, an approximation that ignores the unequal label weights)."""
    both = int(((bc != INVALID) & (ac != INVALID)).sum())
    counts = {E.ALL: (bc.size, ac.size), E.BOTH_VALID: (both, both)}.get(
        primary, (int((bc != INVALID).sum()), int((ac != INVALID).sum()))
    )
    return detectable_difference(e.before, *counts)


def margin_of(key: tuple[str, str] | None, margin: float) -> float:
    """The margin "not reproduced" needs the interval below: the paper's change, else the declared one."""
    paper = paper_threshold(key) if key else None
    return paper if paper is not None else margin


def judge_rows(rows: list[dict[str, Any]], settings: dict[str, Any]) -> None:
    """Give every row its primary estimate, Holm-adjusted p (within its family) and verdict."""
    primary = settings["primary"]
    for r in rows:
        if r.get("panel") is not None and r["panel"].estimates[primary].difference is not None:
            r["estimate"] = r["panel"].estimates[primary]
    family = (lambda r: r["table"]) if settings["family"] == "table" else (lambda r: "reading")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["table"] != "table 7":  # a claim of no loss, judged by its interval: not a test of a difference
            groups.setdefault(family(r), []).append(r)
    for members in groups.values():
        tests = sum(m["estimate"].p_value is not None for m in members)
        for r, adjusted in zip(members, holm([m["estimate"].p_value for m in members])):
            r["holm_p"], r["tests"] = adjusted, tests
    for r in rows:
        if r["table"] == "table 7":
            continue
        e = r["estimate"]
        threshold = margin_of(r["key"], settings["margin"])
        detectable = detectable_rise(primary if r.get("panel") is not None else E.VALID, e, r["bc"], r["ac"])
        pairs = e.n if primary == E.ALL and r.get("panel") is not None else r["pairs"]
        verdict, why = judge(e, threshold, r["beyond"], pairs, r.get("holm_p"), detectable, r.get("tests", 1))
        if r.get("panel") is not None:
            robust, off = E.agreement(r["panel"], primary)
            seeds = r.get("seeds")
            if seeds is not None:
                s = seeds["change"]
                shown = "-" if s.mean is None or s.low is None else f"{s.mean:+.3f} [{s.low:+.2f}, {s.high:+.2f}]"
                r["notes"] += f"; across {len(s.changes)} training seeds (among valid): mean {shown}"
                way = E.Estimate(None, None, s.mean, s.low, s.high, None, s.n, "seeds").direction
                if way != e.direction:
                    robust, off = False, "; ".join(x for x in (off, f"seeds: {way}") if x)
            r["robust"] = robust
            r["estimands"] = "robust" if robust else f"primary {e.direction}; {off}"
        r.update(
            {
                "change [95% CI] p": E.fmt_estimate(e),
                "detectable rise": fmt(detectable),
                "verdict": verdict,
                "why": why + r["notes"],
                "diff": e.difference,
                "diff_low": e.low,
                "diff_high": e.high,
                "diff_method": e.method,
                "p_value": e.p_value,
                "n_pairs": e.n,
                "threshold": threshold,
                "detectable": detectable,
                "primary": primary if r.get("panel") is not None else E.VALID,
                "Holm p": fmt_p(r.get("holm_p")),
            }
        )
