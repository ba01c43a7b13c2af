"""Two evaluation runs of the same samples, side by side (for example hf vs vllm).

Nothing may differ silently: every sample whose prediction, label
probabilities (beyond ``tolerance``) or explanation differ is listed with the
likeliest reason.  Greedy decoding is exact, so differences between correct
backends come from float rounding: a near tie between two labels or two
next tokens tips the other way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

TOLERANCE = 1e-3


@dataclass
class Difference:
    sample_id: str
    style: str | None
    what: str
    reason: str


@dataclass
class ComparisonReport:
    n_samples: int
    n_explanations: int
    prediction_agreement: float
    explanation_agreement: float
    max_prob_diff: float
    differences: list[Difference] = field(default_factory=list)

    def markdown(self, a: str = "a", b: str = "b") -> str:
        lines = [
            f"**{a} vs {b}**: {self.n_samples} samples, {self.n_explanations} explanations; predictions agree "
            f"{self.prediction_agreement:.1%}, explanations identical {self.explanation_agreement:.1%}, largest "
            f"label-probability difference {self.max_prob_diff:.2e}",
            "",
        ]
        if self.differences:
            lines += ["| sample | style | what | reason |", "|---|---|---|---|"]
            lines += [f"| {d.sample_id} | {d.style or '-'} | {d.what} | {d.reason} |" for d in self.differences]
        return "\n".join(lines) + "\n"


def _margin(probs: dict[str, float]) -> float:
    top = sorted(probs.values(), reverse=True)
    return top[0] - top[1] if len(top) > 1 else 1.0


def compare_runs(a: list[dict[str, Any]], b: list[dict[str, Any]], tolerance: float = TOLERANCE) -> ComparisonReport:
    ka = {(r["sample_id"], r["style"]): r for r in a}
    kb = {(r["sample_id"], r["style"]): r for r in b}
    if set(ka) != set(kb):
        raise ValueError(f"the runs hold different samples or styles ({len(set(ka) ^ set(kb))} keys differ)")
    diffs: list[Difference] = []
    first: dict[str, tuple[str, str]] = {}
    for key in ka:
        first.setdefault(key[0], key)  # the classification turn is the same in every style
    samples = sorted(first)
    same_pred, max_diff = 0, 0.0
    for sid in samples:
        ra, rb = ka[first[sid]], kb[first[sid]]
        d = max(abs(ra["label_probs"][lab] - rb["label_probs"][lab]) for lab in ra["label_probs"])
        max_diff = max(max_diff, d)
        if ra["prediction"] == rb["prediction"]:
            same_pred += 1
        else:
            m = min(_margin(ra["label_probs"]), _margin(rb["label_probs"]))
            diffs.append(
                Difference(
                    sid,
                    None,
                    f"prediction {ra['prediction']} vs {rb['prediction']}",
                    f"labels {m:.1e} apart: a near tie (numerics)"
                    if m < 10 * tolerance
                    else f"labels {m:.2f} apart: not explained by rounding",
                )
            )
        if d > tolerance:
            diffs.append(Difference(sid, None, f"label probabilities differ by {d:.1e}", "beyond tolerance"))
    same_text = 0
    for key in sorted(ka):
        ra, rb = ka[key], kb[key]
        if ra["raw_explanation"] == rb["raw_explanation"]:
            same_text += 1
            continue
        if ra["prediction"] != rb["prediction"]:
            reason = "follows from the different prediction (a different chat)"
        else:
            common = len(os.path.commonprefix([ra["raw_explanation"], rb["raw_explanation"]]))
            reason = f"greedy paths part after {common} identical characters (a near tie between tokens; numerics)"
        diffs.append(Difference(key[0], key[1], "explanation text", reason))
    return ComparisonReport(
        n_samples=len(samples),
        n_explanations=len(ka),
        prediction_agreement=same_pred / len(samples),
        explanation_agreement=same_text / len(ka),
        max_prob_diff=max_diff,
        differences=diffs,
    )
