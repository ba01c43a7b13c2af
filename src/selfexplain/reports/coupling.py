"""Coupling (Guo et al. 2026): a model trained on another model's explanations, judged against both models.

A study condition with a ``source_model`` trains on explanations constructed by that model, and its
evaluations judge every explanation twice: with the trained model as the classifier (faithful to itself)
and with the source model (faithful to the source; the records' ``reference`` field).  Guo et al. find
that such models often end up more faithful to themselves than to the behaviour their explanations came
from.  This module compares the two verdicts on the *same* valid explanations, cell by cell: the paired
difference self − source, with the interval and test of :func:`selfexplain.stats.paired_test`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..stats import HIT, INVALID, MISS, PairedResult, paired_test, ratio_ci
from .outcomes import faith_codes
from .study import (
    ONE_LABEL,
    ONE_LABEL_MARK,
    CellData,
    StudyData,
    condition_name,
    fmt_top,
    incomplete_note,
    marked,
    top_label,
    top_share,
)
from .table import PAIRED_NOTE, Table, fmt, fmt_interval, fmt_paired


def reference_codes(records: dict[str, dict[str, Any]], ids: list[str]) -> np.ndarray:
    """Per-sample outcomes of the reference (source) model's verdict; INVALID where it has none."""
    out = []
    for i in ids:
        ref = records[i].get("reference") or {}
        f = ref.get("faithful") if records[i]["valid"] else None
        out.append(INVALID if f is None else HIT if f else MISS)
    return np.array(out, dtype=np.int8)


def reference_top_label(records: dict[str, dict[str, Any]]) -> tuple[str, int, int] | None:
    """The reference (source) model's most frequent answer on the original inputs, as in ``top_label``."""
    return top_label(
        r["reference"]["prediction"]
        for r in records.values()
        if (r.get("reference") or {}).get("prediction") is not None
    )


def coupled_comparisons(study: StudyData) -> list[tuple[CellData, str, str, PairedResult, np.ndarray, np.ndarray]]:
    """(cell, style, reference model, self − reference, reference codes, self codes) for each judged cell."""
    out = []
    for cell in study.cells:
        for style in study.styles:
            recs = cell.style_records(style)
            model = next((r["reference"]["model"] for r in recs.values() if r.get("reference")), None)
            if model is None:
                continue
            ids = sorted(recs)
            ref, own = reference_codes(recs, ids), faith_codes(recs, ids)
            out.append((cell, style, model, paired_test(ref, own), ref, own))
    return out


def coupling_table(study: StudyData) -> Table:
    """Faithful to itself vs faithful to the model its training data came from, on the same explanations."""
    t = Table(
        "coupling",
        "Coupling: faithful to itself vs to the source of its training data",
        [
            "task",
            "width",
            "condition",
            "style",
            "source model",
            "most frequent answer (itself / source)",
            "faithful to itself [95% CI]",
            "faithful to source [95% CI]",
            "to both",
            "valid",
            "itself − source [95% CI] p",
        ],
        data_columns=[
            "self",
            "self_low",
            "self_high",
            "source",
            "source_low",
            "source_high",
            "both",
            "n_valid",
            "diff",
            "diff_low",
            "diff_high",
            "diff_method",
            "p_value",
            "self_top_label_share",
            "source_top_label_share",
        ],
        note=(
            "Each valid explanation judged twice: with the trained model as the classifier (itself) and with "
            "the model that constructed its training data (source): faithful where that classifier's label "
            "changes. Itself − source: " + PAIRED_NOTE + f". {ONE_LABEL_MARK}: a classifier giving one label "
            f"to {ONE_LABEL:.0%} of the samples or more; hardly any edit flips it, so its side of the "
            "comparison is near 0 whatever the explanation." + incomplete_note(study)
        ),
    )
    for cell, style, model, p, ref, own in coupled_comparisons(study):
        s, r = ratio_ci(own), ratio_ci(ref)
        both = int(((own == HIT) & (ref == HIT)).sum())
        tops = (cell.top_label(), reference_top_label(cell.style_records(style)))
        answers = " / ".join(fmt_top(x, mark=True) for x in tops)
        t.rows.append(
            {
                "task": cell.eval_task,
                "width": cell.width,
                "condition": marked(condition_name(cell.condition), cell),
                "style": style,
                "source model": model,
                "most frequent answer (itself / source)": answers,
                "self_top_label_share": top_share(tops[0]),
                "source_top_label_share": top_share(tops[1]),
                "faithful to itself [95% CI]": fmt_interval(s.value, s.low, s.high, s.n),
                "faithful to source [95% CI]": fmt_interval(r.value, r.low, r.high, r.n),
                "to both": fmt(both / s.n if s.n else None),
                "valid": f"{s.n}/{len(own)}",
                "itself − source [95% CI] p": fmt_paired(p),
                "self": s.value,
                "self_low": s.low,
                "self_high": s.high,
                "source": r.value,
                "source_low": r.low,
                "source_high": r.high,
                "both": both,
                "n_valid": s.n,
                "diff": p.difference,
                "diff_low": p.low,
                "diff_high": p.high,
                "diff_method": p.method,
                "p_value": p.p_value,
            }
        )
    return t
