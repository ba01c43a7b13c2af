"""Training routes side by side: what each way of training cost, and what it changed.

The paper trains by SFT on constructed explanations; a study may add routes beyond it (more epochs, GRPO
or DPO on the faithfulness check, another model's explanations).  Their effects are spread over tables 4
and 7 and their costs over the stage list; this table puts them in one row per trained model: the method,
what it trained on, the compute of its training and of its evaluations, and, in the style it trains on
(one-word, on its training task), binary and graded faithfulness and accuracy, each with the paired
change from no training and, for a route beyond the paper, from the paper's SFT on the same style.
"""

from __future__ import annotations

from typing import Any

from ..layout import NONE, PREDICTIONS, model_key
from ..stats import holm, ratio_ci
from .outcomes import PANEL_COLUMNS, accuracy_codes, accuracy_pair, faith_pair
from .study import (
    ONE_LABEL,
    ONE_LABEL_MARK,
    ONE_LABEL_WHY,
    StudyData,
    condition_name,
    fmt_top,
    incomplete_note,
    marked,
    top_share,
)
from .table import DISAGREE_NOTE, PAIRED_NOTE, Table, fmt_interval, fmt_p, fmt_paired
from .tables import CLASS_NOTE, faith_row, first_width


def _trained_on(study: StudyData, condition: str) -> tuple[str, str]:
    """(method, what the model was trained on) of a trained condition."""
    v = study.variants.get(condition, {})
    method, style = v.get("method", "sft"), study.trains_on(condition)
    if method == "grpo":
        return method, f"its own sampled {style} explanations, rewarded by the check"
    if method == "dpo":
        return method, f"pairs of its own sampled {style} explanations, ranked by the check"
    if style == PREDICTIONS:
        # The paper's "w/ Predictions" (table 4's caption): the classification answered with the ground-truth
        # label of each training input (training.prediction_chats), whatever model constructed the data.
        return method, "ground-truth labels of its training inputs, no explanations"
    source = v.get("source_model") or "the model itself"
    return method, f"{style} explanations constructed by {source}"


def _training(stage: dict[str, Any] | None, method: str) -> str:
    if stage is None:
        return "not run"
    if stage.get("skipped"):
        return f"skipped: {stage['skipped']}"
    steps, n = stage.get("steps"), stage.get("n_task")
    if method == "dpo":
        return f"{steps} steps, {stage.get('pairs')} pairs from {n} inputs"
    if method == "grpo":
        return f"{steps} steps, {n} inputs"
    return f"{steps} steps, {n} examples + {stage.get('n_replay')} replay"


def routes_table(study: StudyData) -> Table:
    """One row per trained model: method, data, compute, and its effect in the style it trains on."""
    t = Table(
        "routes",
        "Training routes: what each way of training cost and changed",
        [
            "task",
            "condition",
            "method",
            "trained on",
            "training",
            "training s",
            "evaluation s",
            "style",
            "faithfulness [95% CI]",
            "valid",
            "targets: share (faithfulness)",
            "shift [95% CI]",
            "change vs no training [95% CI] p",
            "change vs the paper's SFT [95% CI] p",
            "Holm p (vs no training / vs SFT)",
            "accuracy [95% CI]",
            "accuracy change [95% CI] p",
            "most frequent answer",
        ],
        data_columns=[
            "training_seconds",
            "evaluation_seconds",
            "faithfulness",
            "ci_low",
            "ci_high",
            "n_valid",
            "shift",
            "shift_low",
            "shift_high",
            "diff",
            "diff_low",
            "diff_high",
            "diff_method",
            "p_value",
            "holm_p",
            "robust",
            *PANEL_COLUMNS,
            "sft_diff",
            "sft_diff_low",
            "sft_diff_high",
            "sft_diff_method",
            "sft_p_value",
            "sft_holm_p",
            "accuracy",
            "accuracy_low",
            "accuracy_high",
            "accuracy_diff",
            "accuracy_diff_low",
            "accuracy_diff_high",
            "accuracy_p_value",
            "top_label_share",
            "complete",
        ],
    )
    for task in study.experiment["train_tasks"]:
        width = "one" if study.cell(NONE, None, task, "one") else first_width(study, task)
        base = study.cell(NONE, None, task, width)
        for cond in study.trained_conditions:
            method, data = _trained_on(study, cond)
            stage = study.stages.get(f"train|{model_key(cond, task)}")
            cell = study.cell(cond, task, task, width)
            evaluation = [c.seconds for c in study.cells if c.condition == cond and c.train_task == task]
            row: dict[str, Any] = {
                "task": task,
                "condition": marked(condition_name(cond), cell, base),
                "method": method,
                "trained on": data,
                "training": _training(stage, method),
                "training s": stage.get("seconds") if stage else None,
                "training_seconds": stage.get("seconds") if stage else None,
                "evaluation s": round(sum(evaluation), 1) if evaluation else None,
                "evaluation_seconds": round(sum(evaluation), 1) if evaluation else None,
                "complete": bool(cell and cell.status.complete and (base is None or base.status.complete)),
            }
            style = study.trains_on(cond)
            if cell is not None and style != PREDICTIONS:
                f = faith_row(cell, style, base)
                row.update(
                    {
                        "style": f"{style}, {width}-word",
                        "faithfulness [95% CI]": f["shown"],
                        "valid": f["valid_shown"],
                        "targets: share (faithfulness)": f["targets_shown"],
                        "shift [95% CI]": f["shift_shown"],
                        "change vs no training [95% CI] p": f.get("change_shown"),
                        **{
                            k: f.get(k)
                            for k in (
                                "faithfulness",
                                "ci_low",
                                "ci_high",
                                "n_valid",
                                "shift",
                                "shift_low",
                                "shift_high",
                                "diff",
                                "diff_low",
                                "diff_high",
                                "diff_method",
                                "p_value",
                                "robust",
                                *PANEL_COLUMNS,
                            )
                        },
                    }
                )
                paper = study.cell(style, task, task, width) if cond in study.variants else None
                if paper is not None:
                    p, _, _ = faith_pair(paper, cell, style)
                    row.update(
                        {
                            "condition": marked(condition_name(cond), cell, base, paper),
                            "change vs the paper's SFT [95% CI] p": fmt_paired(p),
                            "sft_diff": p.difference,
                            "sft_diff_low": p.low,
                            "sft_diff_high": p.high,
                            "sft_diff_method": p.method,
                            "sft_p_value": p.p_value,
                        }
                    )
            if cell is not None and cell.one_label():
                row["condition"] += ONE_LABEL_MARK
            if cell is not None:
                samples = cell.samples()
                ids = sorted(samples)
                a = ratio_ci(accuracy_codes(samples, ids))
                top = cell.top_label()
                row.update(
                    {
                        "accuracy [95% CI]": fmt_interval(a.value, a.low, a.high, a.n),
                        "accuracy": a.value,
                        "accuracy_low": a.low,
                        "accuracy_high": a.high,
                        "most frequent answer": fmt_top(top),
                        "top_label_share": top_share(top),
                    }
                )
                if base is not None:
                    p = accuracy_pair(base, cell)
                    row.update(
                        {
                            "accuracy change [95% CI] p": fmt_paired(p),
                            "accuracy_diff": p.difference,
                            "accuracy_diff_low": p.low,
                            "accuracy_diff_high": p.high,
                            "accuracy_p_value": p.p_value,
                        }
                    )
            t.rows.append(row)
    # One family: every faithfulness comparison of this table, vs no training and vs the paper's SFT.
    tests = [(r, k) for r in t.rows for k in ("p_value", "sft_p_value") if r.get(k) is not None]
    for (r, k), adjusted in zip(tests, holm([r[k] for r, k in tests])):
        r["holm_p" if k == "p_value" else "sft_holm_p"] = adjusted
    for r in t.rows:
        shown = [fmt_p(r.get("holm_p")), fmt_p(r.get("sft_holm_p"))]
        r["Holm p (vs no training / vs SFT)"] = " / ".join(shown) if shown != ["-", "-"] else "-"
    t.note = (
        "One row per trained model, measured in the style it trains on, one-word, on its training task "
        "(w/ predictions trains on no style: accuracy only). Training s: the compute of its training stage "
        "(GRPO and DPO include sampling and judging their explanations; the SFT routes' construction is a "
        "stage of its own, shared by them); evaluation s: all its cells. Shift: mean p(ŷ|x) − p(ŷ|edited x) "
        "over valid explanations (graded faithfulness). "
        + CLASS_NOTE
        + " Changes: after − before, "
        + PAIRED_NOTE
        + f"; Holm p: adjusted over the {len(tests)} faithfulness changes of this table (* below 0.05). "
        + DISAGREE_NOTE
        + " Accuracy change from no training on the same samples. Most frequent answer: the "
        f"label it predicts most often; {ONE_LABEL_MARK} at {ONE_LABEL:.0%} of the samples or more: "
        + ONE_LABEL_WHY
        + incomplete_note(study)
    )
    return t
