"""The reading: each of the paper's claims, judged on a study's records.

One row per claim and comparison, with the paired change, its interval, the valid pairs it rests on,
the paper's own change and the smallest change this study detects.  The rule is fixed in advance and
the same for every claim:

* **reproduced**: the 95% interval of the change lies above 0 (for table 7, which claims no loss of
  accuracy: above -:data:`ACCURACY_MARGIN`);
* **not reproduced**: the interval lies below the paper's smallest reported change for that comparison
  (where the paper gives no number, below the smallest rise this study detects with 80% power), so an
  effect of that size is ruled out; for table 7, the interval lies below 0 (a significant loss);
* **undetermined**: anything else, including fewer than :data:`~selfexplain.stats.MIN_PAIRS` valid pairs.

A direction reproduced with a smaller magnitude than the paper's says so in the row.  Conditions beyond
the paper (experiment ``variants``) are judged by the same rule in the words holds / does not hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..layout import NONE, PREDICTIONS, constructed_faithful
from ..stats import HIT, INVALID, MIN_PAIRS, MISS, PairedResult, detectable_difference, paired_test
from .tables import (PAIRED_NOTE, CellData, StudyData, Table, accuracy_pair, condition_name, eval_tasks,
                     faith_codes, faith_pair, first_width, fmt, fmt_paired, incomplete_note, marked, one_label_note,
                     read_records)

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


def _paper_shown(key: tuple[str, str]) -> str:
    if key not in PAPER:
        return "-"
    a, b = PAPER[key]
    return f"{a:+.3f} / {b:+.3f}" + (" (13B)" if key[0] == "figure 3" else " (7B / 13B)")


def judge(p: PairedResult, threshold: float | None, beyond: bool = False,
          valid_pairs: int | None = None) -> tuple[str, str]:
    """The verdict on a rise (after - before > 0) and the reason, by the module's rule.

    ``valid_pairs``: samples valid in both conditions (default: every sample of ``p``)."""
    yes, no = (HOLDS, DOES_NOT_HOLD) if beyond else (REPRODUCED, NOT_REPRODUCED)
    pairs = p.n_pairs if valid_pairs is None else valid_pairs
    if pairs < MIN_PAIRS:
        return UNDETERMINED, f"too few valid pairs ({pairs})"
    if p.difference is None or p.low is None:
        return UNDETERMINED, "no valid pairs"
    if p.low > 0:
        small = threshold is not None and p.high < threshold
        return yes, "interval above 0" + (f"; smaller than the paper's +{threshold:.3f}" if small else "")
    if threshold is not None and p.high < threshold:
        return no, f"interval below +{threshold:.3f}: a rise that large is ruled out"
    return UNDETERMINED, ("interval includes 0" + (f" and +{threshold:.3f}" if threshold is not None else ""))


def _threshold(key: tuple[str, str] | None, p: PairedResult, before: np.ndarray, after: np.ndarray
               ) -> tuple[float | None, float | None]:
    """(the threshold for "not reproduced", the detectable rise): the paper's change, else the detectable rise."""
    mde = detectable_difference(p.before, int((before != INVALID).sum()), int((after != INVALID).sum()))
    paper = paper_threshold(key) if key else None
    return (paper if paper is not None else mde), mde


COLUMNS = ["table", "claim", "change [95% CI] p", "valid pairs", "paper's change", "detectable rise", "verdict",
           "why"]


def _row(table: str, claim: str, p: PairedResult, key: tuple[str, str] | None, bc: np.ndarray, ac: np.ndarray,
         cells: list[CellData | None], beyond: bool = False, faithfulness: bool = True) -> dict[str, Any]:
    threshold, mde = _threshold(key, p, bc, ac)
    pairs = int(((bc != INVALID) & (ac != INVALID)).sum())
    verdict, why = judge(p, threshold, beyond, pairs)
    if faithfulness:  # a verdict on faithfulness that rests on a classifier answering one label says so
        notes = [(c, c.one_label()) for c in cells if c is not None]
        why += "".join(f"; {condition_name(c.condition)} {note}" for c, note in notes if note)
    return {"table": table, "claim": marked(claim, *cells), "change [95% CI] p": fmt_paired(p),
            "valid pairs": f"{pairs} of {p.n_pairs}", "paper's change": _paper_shown(key) if key else "-",
            "detectable rise": fmt(mde), "verdict": verdict, "why": why,
            "diff": p.difference, "diff_low": p.low, "diff_high": p.high, "diff_method": p.method,
            "p_value": p.p_value, "n_pairs": p.n_pairs, "threshold": threshold}


def _table3(study: StudyData) -> list[dict[str, Any]]:
    rows = []
    for key, stage in study.stages.items():
        if not key.startswith("construct|"):
            continue
        quality = sorted(Path(stage["run_dir"]).glob("quality-*"))
        if not quality:
            continue
        originals = read_records(quality[0])
        built = {r["attribution"]["sample_id"]: r for r in read_records(stage["run_dir"])}
        # A second construction (another model's: the coupling data) is named, so its rows are not read as the
        # study model's.
        source = key.split("|")[2] if key.count("|") >= 2 else None
        for style in ["attribution", "redaction", "counterfactual"]:
            recs = {r["sample_id"]: r for r in originals if r["style"] == style}
            ids = sorted(set(recs) & set(built))
            oc = faith_codes(recs, ids)
            flags = [constructed_faithful(built[i], style) for i in ids]
            cc = np.array([INVALID if f is None else HIT if f else MISS for f in flags], dtype=np.int8)
            p = paired_test(oc, cc)
            claim = f"constructed {style} explanations more faithful than the model's own"
            rows.append(_row("table 3", claim + (f" ({source})" if source else ""), p, ("table 3", style), oc, cc,
                             []))
    return rows


def reading_table(study: StudyData) -> Table:
    """Every claim of the paper this study can speak to, with its verdict."""
    t = Table("reading", "Reading: the paper's claims on this study", COLUMNS,
              data_columns=["diff", "diff_low", "diff_high", "diff_method", "p_value", "n_pairs", "threshold"],
              note=("Change: after − before, " + PAIRED_NOTE + "; valid pairs: the samples both explain validly. "
                    "Reproduced: the interval lies above 0 (table 7: above "
                    f"-{ACCURACY_MARGIN}). Not reproduced: it lies below the paper's smaller change of its two models "
                    "(where the paper gives none, below the rise this study detects with 80% power), so an effect "
                    "that large is ruled out (table 7: below 0). Undetermined: anything else, or fewer than "
                    f"{MIN_PAIRS} valid pairs. Conditions beyond the paper: holds / does not hold by the same rule."))
    rows = _table3(study)
    variants = study.variants
    for task in study.experiment["train_tasks"]:
        for width, table in (("one", "table 4"), ("multi", "table 5")):
            base = study.cell(NONE, None, task, width)
            preds = study.cell(PREDICTIONS, task, task, width)
            if base is None:
                continue
            for cond in study.trained_conditions:
                style = study.trains_on(cond)
                after = study.cell(cond, task, task, width)
                if style == PREDICTIONS or after is None:
                    continue
                beyond = cond in variants
                label = condition_name(cond) + (" (beyond the paper)" if beyond else "")
                p, bc, ac = faith_pair(base, after, style)
                key = (f"{table} vs none" if width == "one" else table, style)
                rows.append(_row(table, f"{label} > no training, {style}, {width}-word, {task}", p,
                                 None if beyond else key, bc, ac, [base, after], beyond))
                if width == "one" and preds is not None:
                    p, bc, ac = faith_pair(preds, after, style)
                    rows.append(_row(table, f"{label} > w/ predictions, {style}, one-word, {task}", p,
                                     None if beyond else ("table 4 vs predictions", style), bc, ac, [preds, after],
                                     beyond))
                if beyond and style in study.trained_conditions:
                    paper_cell = study.cell(style, task, task, width)
                    if paper_cell is not None:
                        p, bc, ac = faith_pair(paper_cell, after, style)
                        rows.append(_row(table, f"{label} > {condition_name(style)}, {style}, {width}-word, {task}",
                                         p, None, bc, ac, [paper_cell, after], True))
        rows += _generalisation(study, task)
        rows += _validity(study, task)
    rows += _accuracy(study)
    rows += _coupling(study)
    t.rows = rows
    t.note += incomplete_note(study)
    return t


def _generalisation(study: StudyData, task: str) -> list[dict[str, Any]]:
    """Figure 3 (attribution training, unseen tasks) and figure 4 (attribution training, unseen styles)."""
    rows = []
    if "attribution" not in study.trained_conditions:
        return rows
    for et in eval_tasks(study):
        if et == task:
            continue
        width = first_width(study, et)
        base, after = study.cell(NONE, None, et, width), study.cell("attribution", task, et, width)
        if base is None or after is None:
            continue
        p, bc, ac = faith_pair(base, after, "attribution")
        rows.append(_row("figure 3", f"w/ attribution ({task}) > no training on unseen {et}, attribution", p,
                         ("figure 3", "attribution"), bc, ac, [base, after]))
    base, after = study.cell(NONE, None, task, "one"), study.cell("attribution", task, task, "one")
    if base is not None and after is not None:
        for style in study.styles:
            if style == "attribution":
                continue
            p, bc, ac = faith_pair(base, after, style)
            rows.append(_row("figure 4", f"w/ attribution > no training on unseen style {style}, {task}", p, None,
                             bc, ac, [base, after]))
    return rows


def _validity(study: StudyData, task: str) -> list[dict[str, Any]]:
    """Table 10: training on a style's explanations raises the share of valid explanations in that style.

    Judged on every sample (validity is defined for all of them), so it speaks where the untrained model's
    valid explanations are too few for a difference in faithfulness.
    """
    rows = []
    base = study.cell(NONE, None, task, "one")
    if base is None:
        return rows
    for cond in study.trained_conditions:
        style = study.trains_on(cond)
        after = study.cell(cond, task, task, "one")
        if style == PREDICTIONS or after is None:
            continue
        b, a = base.style_records(style), after.style_records(style)
        common = sorted(set(b) & set(a))
        bc = np.array([HIT if b[i]["valid"] else MISS for i in common], dtype=np.int8)
        ac = np.array([HIT if a[i]["valid"] else MISS for i in common], dtype=np.int8)
        beyond = cond in study.variants
        label = condition_name(cond) + (" (beyond the paper)" if beyond else "")
        rows.append(_row("table 10", f"{label} > no training in valid {style} explanations, one-word, {task}",
                         paired_test(bc, ac), None if beyond else ("table 10", style), bc, ac, [base, after], beyond,
                         faithfulness=False))
    return rows


def _accuracy(study: StudyData) -> list[dict[str, Any]]:
    """Table 7: training on explanations does not cost accuracy (a loss of ACCURACY_MARGIN or more is ruled out)."""
    rows = []
    for task in study.experiment["train_tasks"]:
        width = first_width(study, task)
        base = study.cell(NONE, None, task, width)
        if base is None:
            continue
        for cond in study.trained_conditions:
            after = study.cell(cond, task, task, width)
            if cond == PREDICTIONS or after is None:
                continue
            p = accuracy_pair(base, after)
            beyond = cond in study.variants
            yes, no = (HOLDS, DOES_NOT_HOLD) if beyond else (REPRODUCED, NOT_REPRODUCED)
            if p.difference is None or p.low is None or p.n_pairs < MIN_PAIRS:
                verdict, why = UNDETERMINED, f"too few samples ({p.n_pairs})"
            elif p.low > -ACCURACY_MARGIN:
                verdict, why = yes, f"a loss of {ACCURACY_MARGIN} or more is ruled out"
            elif p.high < 0:
                verdict, why = no, "accuracy fell: interval below 0"
            else:
                verdict, why = UNDETERMINED, f"interval includes 0 and -{ACCURACY_MARGIN}"
            rows.append({"table": "table 7", "claim": marked(f"{condition_name(cond)} keeps accuracy, {task}", base,
                                                             after),
                         "change [95% CI] p": fmt_paired(p), "valid pairs": f"{p.n_pairs} of {p.n_pairs}",
                         "paper's change": "not significant", "detectable rise": "-", "verdict": verdict, "why": why,
                         "diff": p.difference, "diff_low": p.low, "diff_high": p.high, "diff_method": p.method,
                         "p_value": p.p_value, "n_pairs": p.n_pairs, "threshold": -ACCURACY_MARGIN})
    return rows


def _coupling(study: StudyData) -> list[dict[str, Any]]:
    """Guo et al. (2026), beyond the paper: trained on another model's explanations, more faithful to itself
    than to that model, in the style it was trained on (the same valid explanations judged by both)."""
    from .coupling import coupled_comparisons, reference_top_label

    rows = []
    for cell, style, model, p, ref, own in coupled_comparisons(study):
        if style != study.trains_on(cell.condition):
            continue
        row = _row("coupling", f"{condition_name(cell.condition)} (beyond the paper): more faithful to itself "
                               f"than to {model}, {style}, {cell.width}-word, {cell.eval_task}",
                   p, None, ref, own, [cell], True)
        source = one_label_note(reference_top_label(cell.style_records(style)))
        if source:  # "more faithful to itself" is then no finding about coupling
            row["why"] += f"; the source {model} {source}"
        rows.append(row)
    return rows
