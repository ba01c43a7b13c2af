"""The paper's tables 4, 5 and 7, the cells table and figure 3/4's rows, computed from a study's records (table 3:
:mod:`.construction`; table 10: :mod:`.validity`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import estimands as E
from ..layout import NONE, PREDICTIONS
from ..measures import cell_measures, fmt_erasure, fmt_mean, fmt_vs_random
from ..stats import INVALID, detectable_difference, ratio_ci
from ..wordclasses import class_counts, fmt_classes
from .outcomes import PANEL_COLUMNS, accuracy_codes, accuracy_pair, compare, faith_codes, panel_columns
from .study import (
    ONE_LABEL,
    ONE_LABEL_MARK,
    ONE_LABEL_WHY,
    CellData,
    StudyData,
    baseline_rule_note,
    condition_name,
    fmt_top,
    incomplete_note,
    marked,
    top_share,
    variants_note,
)
from .table import DISAGREE_MARK, DISAGREE_NOTE, PAIRED_NOTE, SMALL_NOTE, Table, fmt, fmt_interval, fmt_paired


def cells_table(study: StudyData) -> Table:
    """Every cell of the study: what it should hold, what it holds, where."""
    t = Table(
        "cells",
        "Cells: records held against what each run's configuration asks for",
        ["condition", "train task", "eval task", "width", "records", "most frequent answer", "run folder"],
        data_columns=["held", "expected", "complete", "top_label_share"],
        note="A cell is complete when its run finished (summary.json) and holds samples x styles records. "
        f"Most frequent answer: the label the model predicts most often, on how many samples; at "
        f"{ONE_LABEL:.0%} or more " + ONE_LABEL_WHY + incomplete_note(study),
    )
    for c in study.cells + study.seeded:
        top = c.top_label()
        name = condition_name(c.condition) + ("" if c.seed is None else f" (training seed {c.seed})")
        t.rows.append(
            {
                "condition": marked(name, c),
                "train task": c.train_task or "-",
                "eval task": c.eval_task,
                "width": c.width,
                "records": c.status.describe(),
                "most frequent answer": fmt_top(top),
                "run folder": Path(c.run_dir).name,
                "held": c.status.held,
                "expected": c.status.expected,
                "complete": c.status.complete,
                "top_label_share": top_share(top),
            }
        )
    return t


def faith_row(cell: CellData, style: str, base: CellData | None) -> dict[str, Any]:
    """Faithfulness of one style in one cell, its random baseline, and the paired change from ``base``."""
    recs = cell.style_records(style)
    ids = sorted(recs)
    ci = ratio_ci(faith_codes(recs, ids))
    rnd = ratio_ci(faith_codes(recs, ids, "random_faithful"))
    m = cell_measures(recs.values())
    vs, er = m["vs_random"], m["erasure"]
    row = {
        "faithfulness": ci.value,
        "ci_low": ci.low,
        "ci_high": ci.high,
        "n_valid": ci.n,
        "n": len(ids),
        "random": rnd.value,
        "random_ci_low": rnd.low,
        "random_ci_high": rnd.high,
        "shown": fmt_interval(ci.value, ci.low, ci.high, ci.n),
        "random_shown": fmt_interval(rnd.value, rnd.low, rnd.high, rnd.n),
        "valid_shown": f"{ci.n}/{len(ids)}",
        "shift": m["shift"]["mean"],
        "shift_low": m["shift"]["low"],
        "shift_high": m["shift"]["high"],
        "random_shift": m["random_shift"]["mean"],
        "vs_random_shift": vs["shift"]["difference"],
        "vs_random_low": vs["shift"]["low"],
        "vs_random_high": vs["shift"]["high"],
        "vs_random_p": vs["shift"]["p_value"],
        "vs_random_flip": vs["flip"]["difference"],
        "vs_random_pairs": vs["pairs"],
        "verdict": vs["verdict"],
        "erasure_rank": er["rank"]["mean"],
        "random_erasure_rank": er["random_rank"]["mean"],
        "names_w_star": er["names_w_star"],
        "shift_shown": fmt_mean(m["shift"]),
        # The flip half of the comparison says nothing for a classifier that gives (almost) one label: marked.
        "vs_random_shown": fmt_vs_random(vs) + (ONE_LABEL_MARK if cell.one_label() else ""),
        "erasure_shown": fmt_erasure(er),
        "targets_shown": fmt_classes(class_counts(recs.values())),
    }
    if base is not None and base is not cell:
        panel, b_codes, a_codes = compare(base, cell, style, base)
        p = panel.estimates[E.VALID]
        mde = detectable_difference(p.before, int((b_codes != INVALID).sum()), int((a_codes != INVALID).sum()))
        robust, _ = E.agreement(panel)
        row.update(
            {
                "diff": p.difference,
                "diff_low": p.low,
                "diff_high": p.high,
                "diff_method": p.method,
                "p_value": p.p_value,
                "n_pairs": p.n,
                "detectable": mde,
                "detectable_shown": fmt(mde),
                "change_shown": fmt_paired(E.to_paired(p)) + ("" if robust else DISAGREE_MARK),
                "robust": robust,
                **panel_columns(panel),
            }
        )
    return row


FAITH_COLUMNS = [
    "task",
    "condition",
    "style",
    "faithfulness [95% CI]",
    "valid",
    "random baseline [95% CI]",
    "shift [95% CI]",
    "vs random baseline",
    "erasure rank (random) / names w*",
    "targets: share (faithfulness)",
    "change vs no training [95% CI] p",
    "detectable rise (80% power)",
]


FAITH_DATA = [
    "faithfulness",
    "ci_low",
    "ci_high",
    "n_valid",
    "n",
    "random",
    "random_ci_low",
    "random_ci_high",
    "shift",
    "shift_low",
    "shift_high",
    "random_shift",
    "vs_random_shift",
    "vs_random_low",
    "vs_random_high",
    "vs_random_p",
    "vs_random_flip",
    "vs_random_pairs",
    "verdict",
    "erasure_rank",
    "random_erasure_rank",
    "names_w_star",
    "diff",
    "diff_low",
    "diff_high",
    "diff_method",
    "p_value",
    "detectable",
    "robust",
    *PANEL_COLUMNS,
    "complete",
]


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "faithfulness [95% CI]": row["shown"],
        "valid": row["valid_shown"],
        "random baseline [95% CI]": row["random_shown"],
        "shift [95% CI]": row["shift_shown"],
        "vs random baseline": row["vs_random_shown"],
        "erasure rank (random) / names w*": row["erasure_shown"],
        "targets: share (faithfulness)": row["targets_shown"],
        "change vs no training [95% CI] p": row.get("change_shown", ""),
        "detectable rise (80% power)": row.get("detectable_shown", ""),
    }


def faithfulness_table(study: StudyData, width: str, name: str, title: str) -> Table:
    """Tables 4 and 5: on each training task, no training vs w/ predictions vs w/ the style itself."""
    t = Table(
        name,
        title,
        FAITH_COLUMNS,
        data_columns=FAITH_DATA,
        note=(
            "Faithfulness = faithful / valid explanations, with a 95% percentile bootstrap interval. "
            + SMALL_NOTE
            + " Random baseline: "
            "as many words as the explanation, chosen at random from the input's other words (never those the "
            "explanation names or edits) and applied the same way"
            + baseline_rule_note(study)
            + ". Change: "
            + PAIRED_NOTE
            + " (* p<0.05, ** p<0.01). Shift: mean p(ŷ|x) − p(ŷ|edited x) over valid explanations (graded "
            "faithfulness). vs random baseline: paired difference explanation − its random edit in shift (interval, "
            "sign-flip permutation p) and in flip rate; 'beats chance' where the shift interval lies above 0, 'does "
            "not' where it lies at or below 0. Erasure rank: where the words an explanation changes rank in the "
            "model's own erasure attribution (1 = most influential, random 0.5), and the share that name w*. "
            + CLASS_NOTE
            + " Detectable rise: the smallest increase over no training that these valid counts detect "
            "with 80% power (two-sided 5%); a change smaller than it and not significant is 'too few samples', not "
            "'no effect'. " + DISAGREE_NOTE
        ),
    )
    for task in study.experiment["train_tasks"]:
        base = study.cell(NONE, None, task, width)
        for style in study.styles:
            conditions = [(NONE, None)] + [
                (c, task) for c in study.trained_conditions if study.trains_on(c) in (PREDICTIONS, style)
            ]
            for cond, tt in conditions:
                cell = study.cell(cond, tt, task, width)
                if cell is None:
                    continue
                row = faith_row(cell, style, base)
                label = marked(condition_name(cond), cell, base) + (ONE_LABEL_MARK if cell.one_label() else "")
                t.rows.append(
                    _shown({"task": task, "condition": label, "style": style, "complete": cell.status.complete, **row})
                )
    if any(ONE_LABEL_MARK in r["condition"] for r in t.rows):
        t.note += (
            f" {ONE_LABEL_MARK}: this model gives one label to {ONE_LABEL:.0%} of the samples or more (cells "
            "table: most frequent answer): " + ONE_LABEL_WHY
        )
    t.note += variants_note(study) + incomplete_note(study)
    return t


def cross_style_rows(study: StudyData, width: str = "one") -> list[dict[str, Any]]:
    """Figure 4's data: every trained condition (and none) evaluated on every style and task."""
    rows = []
    for task in study.experiment["train_tasks"]:
        base = study.cell(NONE, None, task, width)
        for cond, tt in [(NONE, None)] + [(c, task) for c in study.trained_conditions]:
            cell = study.cell(cond, tt, task, width)
            if cell is None:
                continue
            for style in study.styles:
                rows.append(
                    {
                        "train_task": task,
                        "condition": cond,
                        "eval_task": task,
                        "style": style,
                        **faith_row(cell, style, base),
                    }
                )
    return rows


def cross_task_rows(study: StudyData, width: str = "one") -> list[dict[str, Any]]:
    """Figure 3's data: gain over no training for each (training task, evaluation task), trained style =
    evaluated style."""
    rows = []
    for tt in study.experiment["train_tasks"]:
        for et in eval_tasks(study):
            base = study.cell(NONE, None, et, width)
            for style in study.styles:
                if style not in study.trained_conditions:
                    continue
                cell = study.cell(style, tt, et, width)
                if cell is None or base is None:
                    continue
                rows.append({"train_task": tt, "eval_task": et, "style": style, **faith_row(cell, style, base)})
    return rows


def accuracy_table(study: StudyData) -> Table:
    """Table 7: classification accuracy per model and evaluation task, paired change from no training."""
    t = Table(
        "table7_accuracy",
        "Table 7: classification accuracy",
        [
            "task",
            "condition",
            "accuracy [95% CI]",
            "change vs no training [95% CI] p",
            "detectable change (80% power)",
            "n",
        ],
        data_columns=[
            "accuracy",
            "ci_low",
            "ci_high",
            "diff",
            "diff_low",
            "diff_high",
            "p_value",
            "detectable",
            "complete",
        ],
        note="Accuracy on the evaluation samples of each task's first width (the classification turn is the "
        "same in every style and width). " + SMALL_NOTE + " Change: paired bootstrap, or Newcombe's interval "
        "where it collapses to a point (the exact bound where both agree on every sample).",
    )
    for task in eval_tasks(study):
        width = first_width(study, task)
        base = study.cell(NONE, None, task, width)
        models = [(NONE, None)] + [(c, tt) for tt in study.experiment["train_tasks"] for c in study.trained_conditions]
        for cond, tt in models:
            cell = study.cell(cond, tt, task, width)
            if cell is None:
                continue
            samples = cell.samples()
            ids = sorted(samples)
            ci = ratio_ci(accuracy_codes(samples, ids))
            row = {
                "task": task,
                "condition": marked(condition_name(cond) + (f" ({tt})" if tt and tt != task else ""), cell, base),
                "complete": cell.status.complete,
                "accuracy [95% CI]": fmt_interval(ci.value, ci.low, ci.high, ci.n),
                "n": len(ids),
                "accuracy": ci.value,
                "ci_low": ci.low,
                "ci_high": ci.high,
            }
            if base is not None and cell is not base:
                p = accuracy_pair(base, cell)
                # Accuracy may fall as well as rise: the rise from min(p, 1 - p) is the harder one to detect.
                before = None if p.before is None else min(p.before, 1 - p.before)
                mde = detectable_difference(before, p.n_pairs, p.n_pairs)
                row.update(
                    {
                        "change vs no training [95% CI] p": fmt_paired(p),
                        "diff": p.difference,
                        "diff_low": p.low,
                        "diff_high": p.high,
                        "p_value": p.p_value,
                        "detectable change (80% power)": fmt(mde),
                        "detectable": mde,
                    }
                )
            t.rows.append(row)
    t.note += variants_note(study) + incomplete_note(study)
    return t


def eval_tasks(study: StudyData) -> list[str]:
    """Evaluation tasks in experiment order, each once (a task may be listed once per width)."""
    return list(dict.fromkeys(e["task"] for e in study.experiment["evaluate"]))


def first_width(study: StudyData, task: str) -> str:
    for e in study.experiment["evaluate"]:
        if e["task"] == task:
            return e["widths"][0]
    return "one"


CLASS_NOTE = (
    "Targets: the class of the words a valid explanation redacts, lists or edits (content word, stop word, "
    "@handle, #hashtag, URL, number, punctuation, emoji; 'mixed' where a multi-word explanation spans "
    "classes; rules in selfexplain/wordclasses.py), as a share of the valid explanations, with the "
    "faithful share of each class."
)
