"""Table 10: valid explanations per condition and style, by the word rule and the strict redaction rule."""

from __future__ import annotations

from typing import Any

from .. import words as W
from ..wordclasses import class_counts, fmt_classes
from .study import StudyData, condition_name, incomplete_note, marked, variants_note
from .table import Table
from .tables import CLASS_NOTE


def valid_counts_table(study: StudyData) -> Table:
    """Table 10: how many explanations passed the style and word-count conditions, per cell."""
    t = Table(
        "table10_valid_counts",
        "Table 10: valid explanations (kept for faithfulness) per cell",
        [
            "task",
            "width",
            "condition",
            "style",
            "valid",
            "valid, strict",
            "valid by target class",
            "n",
            "most common invalid reasons",
        ],
    )
    for cell in study.cells:
        for style in study.styles:
            recs = list(cell.style_records(style).values())
            if not recs:
                continue
            reasons: dict[str, int] = {}
            for r in recs:
                if not r["valid"]:
                    reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
            top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
            t.rows.append(
                {
                    "task": cell.eval_task,
                    "width": cell.width,
                    "condition": marked(
                        condition_name(cell.condition)
                        + (f" ({cell.train_task})" if cell.train_task and cell.train_task != cell.eval_task else ""),
                        cell,
                    ),
                    "style": style,
                    "valid": sum(bool(r["valid"]) for r in recs),
                    "valid, strict": sum(map(strict_redaction, recs)) if style == "redaction" else "-",
                    "valid by target class": fmt_classes(class_counts(recs), faithfulness=False),
                    "n": len(recs),
                    "most common invalid reasons": top or "-",
                }
            )
    t.note = (STRICT_NOTE + " " + CLASS_NOTE + " " + variants_note(study) + incomplete_note(study)).strip()
    return t


STRICT_NOTE = (
    "Valid redactions keep the input's words outside the [REDACTED] markers (compared by key: case, "
    'attached punctuation and a handle\'s "@" are not compared; the classifier sees the original with '
    "those words redacted, so what was not compared never reaches it). Strict: every other character is "
    "the input's too, whitespace aside."
)


def strict_redaction(record: dict[str, Any]) -> bool:
    """A redaction record valid under the strict rule (recorded by evaluate; computed from older records)."""
    if record.get("valid_strict") is not None:
        return bool(record["valid_strict"])
    return bool(record["valid"]) and W.unaltered(record["edited_input"] or "", str(record["parsed"]))
