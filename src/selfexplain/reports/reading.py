"""The reading: each of the paper's claims, judged on a study's records.

One row per claim and comparison, with the change by the study's primary estimand (declared in the
experiment's ``reading`` section: the paper's faithful-among-valid unless it says otherwise), its interval,
Holm-adjusted p, the valid pairs it rests on, the paper's own change, the smallest change this study
detects, and whether the other estimands of :mod:`selfexplain.estimands` point the same way.  The verdicts
follow the rule of :mod:`selfexplain.reports.verdicts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import estimands as E
from ..layout import NONE, PREDICTIONS, constructed_faithful
from ..stats import HIT, INVALID, MIN_PAIRS, MISS, paired_test
from .outcomes import PANEL_COLUMNS, accuracy_pair, compare, confidence, faith_codes, known, panel_columns
from .seeds import seed_summary
from .study import (
    CellData,
    RecordSet,
    StudyData,
    condition_name,
    incomplete_note,
    marked,
    one_label_note,
    read_records,
    top_label,
)
from .table import PAIRED_NOTE, Table, fmt_paired
from .tables import eval_tasks, first_width
from .verdicts import (
    ACCURACY_MARGIN,
    DOES_NOT_HOLD,
    HOLDS,
    NOT_REPRODUCED,
    REPRODUCED,
    UNDETERMINED,
    judge_rows,
    paper_shown,
    reading_settings,
)

COLUMNS = [
    "table",
    "claim",
    "change [95% CI] p",
    "Holm p",
    "valid pairs",
    "paper's change",
    "detectable rise",
    "verdict",
    "estimands",
    "why",
]
DATA_COLUMNS = [
    "diff",
    "diff_low",
    "diff_high",
    "diff_method",
    "p_value",
    "holm_p",
    "n_pairs",
    "threshold",
    "detectable",
    "primary",
    "robust",
    *PANEL_COLUMNS,
]


def _row(
    table: str,
    claim: str,
    e: E.Estimate,
    key: tuple[str, str] | None,
    bc: np.ndarray,
    ac: np.ndarray,
    cells: list[CellData | None],
    beyond: bool = False,
    faithfulness: bool = True,
    panel: E.Panel | None = None,
) -> dict[str, Any]:
    """One claim, before its verdict (:func:`judge_rows` gives it once every p of the family is known)."""
    pairs = int(((bc != INVALID) & (ac != INVALID)).sum())
    notes = ""
    if faithfulness:  # a verdict on faithfulness that rests on a classifier answering one label says so
        notes = "".join(
            f"; {condition_name(c.condition)} {n}" for c in cells if c is not None for n in [c.one_label()] if n
        )
    row = {
        "table": table,
        "claim": marked(claim, *cells),
        "valid pairs": f"{pairs} of {e.n}",
        "paper's change": paper_shown(key) if key else "-",
        "key": key,
        "beyond": beyond,
        "pairs": pairs,
        "bc": bc,
        "ac": ac,
        "estimate": e,
        "panel": panel,
        "notes": notes,
        "diff": e.difference,
        "diff_low": e.low,
        "diff_high": e.high,
        "diff_method": e.method,
        "p_value": e.p_value,
        "n_pairs": e.n,
        "estimands": "-",
    }
    if panel is not None:
        row.update(panel_columns(panel))
    return row


def _faith_row(
    table: str,
    claim: str,
    before: RecordSet,
    after: RecordSet,
    style: str,
    key: tuple[str, str] | None,
    cells: list[CellData | None],
    untrained: RecordSet | None,
    beyond: bool = False,
) -> dict[str, Any]:
    panel, bc, ac = compare(before, after, style, untrained)
    return _row(table, claim, panel.estimates[E.VALID], key, bc, ac, cells, beyond, panel=panel)


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
            labels = [built[i]["attribution"]["prediction"] for i in ids]  # both explain this classification
            conf = [confidence(built[i]["attribution"]) for i in ids]
            panel = E.panel(E.Side(oc, labels), E.Side(cc, labels), known(conf))
            claim = f"constructed {style} explanations more faithful than the model's own"
            row = _row(
                "table 3",
                claim + (f" ({source})" if source else ""),
                panel.estimates[E.VALID],
                ("table 3", style),
                oc,
                cc,
                [],
                panel=panel,
            )
            one = one_label_note(top_label(r["attribution"]["prediction"] for r in built.values()))
            if one:  # erasure cannot flip a classifier that gives every input one answer: the row says so
                row["notes"] += f"; the model {one}"
            rows.append(row)
    return rows


def reading_table(study: StudyData) -> Table:
    """Every claim of the paper this study can speak to, with its verdict."""
    settings = reading_settings(study)
    t = Table(
        "reading",
        "Reading: the paper's claims on this study",
        COLUMNS,
        data_columns=DATA_COLUMNS,
        note=_note(study, settings),
    )
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
                key = (f"{table} vs none" if width == "one" else table, style)
                row = _faith_row(
                    table,
                    f"{label} > no training, {style}, {width}-word, {task}",
                    base,
                    after,
                    style,
                    None if beyond else key,
                    [base, after],
                    base,
                    beyond,
                )
                row["seeds"] = seed_summary(study, cond, task, task, width, style)
                rows.append(row)
                if width == "one" and preds is not None:
                    rows.append(
                        _faith_row(
                            table,
                            f"{label} > w/ predictions, {style}, one-word, {task}",
                            preds,
                            after,
                            style,
                            None if beyond else ("table 4 vs predictions", style),
                            [preds, after],
                            base,
                            beyond,
                        )
                    )
                if beyond and style in study.trained_conditions:
                    paper_cell = study.cell(style, task, task, width)
                    if paper_cell is not None:
                        rows.append(
                            _faith_row(
                                table,
                                f"{label} > {condition_name(style)}, {style}, {width}-word, {task}",
                                paper_cell,
                                after,
                                style,
                                None,
                                [paper_cell, after],
                                base,
                                True,
                            )
                        )
        rows += _generalisation(study, task)
        rows += _validity(study, task)
    rows += _accuracy(study)
    rows += _coupling(study)
    judge_rows(rows, settings)
    t.rows = rows
    t.note += incomplete_note(study)
    return t


def _note(study: StudyData, settings: dict[str, Any]) -> str:
    primary = settings["primary"]
    declared = (
        "set at report time"
        if study.reading_overrides
        else ("declared in the experiment" if study.experiment.get("reading") else "the default")
    )
    family = "every claim of this table" if settings["family"] == "reading" else "the claims of each paper table"
    return (
        f"Change: after − before by the primary estimand, {E.DESCRIBED[primary]} ({declared}); valid pairs: the "
        f"samples both explain validly. Among valid: {PAIRED_NOTE}; among all and among those valid in both: "
        "a paired-bootstrap interval with the exact McNemar p (discordant counts in the CSV); label-balanced: "
        "each side's rate per own predicted label, averaged with equal weight over the labels both predict "
        "validly, paired bootstrap and paired permutation p; by confidence (CSV): among valid within bins of "
        "the untrained model's probability of its predicted label. Holm p: adjusted over "
        f"{family} (table 7 aside; * below 0.05). Reproduced: the interval lies above 0 and Holm p is below "
        f"0.05 (table 7: the interval lies above -{ACCURACY_MARGIN}). Not reproduced: the interval lies below "
        "the paper's smaller change of its two models (where the paper gives none, below the declared smallest "
        f"change of interest, +{settings['margin']:.3f}) and the study detects a change that large with 80% "
        "power, so it is ruled out (table 7: below 0). Undetermined: anything else (an underpowered comparison "
        f"included), or fewer than {MIN_PAIRS} valid pairs. Conditions beyond the paper: holds / does not "
        "hold by the same rule. Estimands: robust where every estimand's interval points the way the primary's "
        "does (rise: above 0, fall: below 0, unclear: across it); otherwise the ones that disagree."
    )


def _generalisation(study: StudyData, task: str) -> list[dict[str, Any]]:
    """Figure 3 (attribution training, unseen tasks) and figure 4 (attribution training, unseen styles)."""
    rows: list[dict[str, Any]] = []
    if "attribution" not in study.trained_conditions:
        return rows
    for et in eval_tasks(study):
        if et == task:
            continue
        width = first_width(study, et)
        base, after = study.cell(NONE, None, et, width), study.cell("attribution", task, et, width)
        if base is None or after is None:
            continue
        rows.append(
            _faith_row(
                "figure 3",
                f"w/ attribution ({task}) > no training on unseen {et}, attribution",
                base,
                after,
                "attribution",
                ("figure 3", "attribution"),
                [base, after],
                base,
            )
        )
    base, after = study.cell(NONE, None, task, "one"), study.cell("attribution", task, task, "one")
    if base is not None and after is not None:
        for style in study.styles:
            if style == "attribution":
                continue
            rows.append(
                _faith_row(
                    "figure 4",
                    f"w/ attribution > no training on unseen style {style}, {task}",
                    base,
                    after,
                    style,
                    None,
                    [base, after],
                    base,
                )
            )
    return rows


def _validity(study: StudyData, task: str) -> list[dict[str, Any]]:
    """Table 10: training on a style's explanations raises the share of valid explanations in that style.

    Judged on every sample (validity is defined for all of them), so it speaks where the untrained model's
    valid explanations are too few for a difference in faithfulness.
    """
    rows: list[dict[str, Any]] = []
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
        rows.append(
            _row(
                "table 10",
                f"{label} > no training in valid {style} explanations, one-word, {task}",
                E.from_paired(paired_test(bc, ac)),
                None if beyond else ("table 10", style),
                bc,
                ac,
                [base, after],
                beyond,
                faithfulness=False,
            )
        )
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
            if p.difference is None or p.low is None or p.high is None or p.n_pairs < MIN_PAIRS:
                verdict, why = UNDETERMINED, f"too few samples ({p.n_pairs})"
            elif p.low > -ACCURACY_MARGIN:
                verdict, why = yes, f"a loss of {ACCURACY_MARGIN} or more is ruled out"
            elif p.high < 0:
                verdict, why = no, "accuracy fell: interval below 0"
            else:
                verdict, why = UNDETERMINED, f"interval includes 0 and -{ACCURACY_MARGIN}"
            rows.append(
                {
                    "table": "table 7",
                    "claim": marked(f"{condition_name(cond)} keeps accuracy, {task}", base, after),
                    "change [95% CI] p": fmt_paired(p),
                    "valid pairs": f"{p.n_pairs} of {p.n_pairs}",
                    "paper's change": "not significant",
                    "detectable rise": "-",
                    "verdict": verdict,
                    "why": why,
                    "diff": p.difference,
                    "diff_low": p.low,
                    "diff_high": p.high,
                    "diff_method": p.method,
                    "p_value": p.p_value,
                    "n_pairs": p.n_pairs,
                    "threshold": -ACCURACY_MARGIN,
                    "Holm p": "-",
                    "estimands": "-",
                }
            )
    return rows


def _coupling(study: StudyData) -> list[dict[str, Any]]:
    """Guo et al. (2026), beyond the paper: trained on another model's explanations, more faithful to itself
    than to that model, in the style it was trained on (the same valid explanations judged by both)."""
    from .coupling import coupled_comparisons, reference_top_label

    rows = []
    for cell, style, model, p, ref, own in coupled_comparisons(study):
        if style != study.trains_on(cell.condition):
            continue
        row = _row(
            "coupling",
            f"{condition_name(cell.condition)} (beyond the paper): more faithful to itself "
            f"than to {model}, {style}, {cell.width}-word, {cell.eval_task}",
            E.from_paired(p),
            None,
            ref,
            own,
            [cell],
            True,
        )
        source = one_label_note(reference_top_label(cell.style_records(style)))
        if source:  # "more faithful to itself" is then no finding about coupling
            row["notes"] += f"; the source {model} {source}"
        rows.append(row)
    return rows
