"""Views of one run: a rich terminal table and Markdown of an evaluation's summary, a construction's counts,
and a word-influence line for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table

from ..layout import MAX_N
from ..measures import fmt_erasure, fmt_mean, fmt_vs_random
from ..stats import HIT, MISS, SMALL, ratio_ci
from ..wordclasses import fmt_classes

if TYPE_CHECKING:  # the summary object `evaluate` returns; reports never import the pipeline
    from ..evaluation import Summary


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def fmt_ci(x: float | None, ci: tuple[float | None, float | None] | list | None, n: int | None = None) -> str:
    """``0.512 [0.41, 0.60]``: a value with its 95% interval, marked † when it rests on fewer than 50 samples."""
    if x is None:
        return "-"
    mark = "†" if n is not None and n < SMALL else ""
    if not ci or ci[0] is None:
        return _fmt(x) + mark
    return f"{x:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]{mark}"


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in reasons.items()) or "-"


HEADERS = [
    "style",
    "faithfulness [95% CI]",
    "valid",
    "faithful",
    "random baseline [95% CI]",
    "shift [95% CI]",
    "vs random baseline",
    "targets: share (faithfulness)",
    "invalid (reason count)",
]
PER_N = "faithfulness by N (count)"
ERASURE = "erasure rank (random) / names w*"


REFERENCE = "faithful to reference [95% CI] (both)"


def _has_erasure(summary: Summary) -> bool:
    return any(s.measures.get("erasure", {}).get("n") for s in summary.styles)


def _reference(summary: Summary) -> str | None:
    """The reference model's name where the run judged explanations against one (evaluate --reference-model)."""
    return next((s.measures["reference"]["model"] for s in summary.styles if s.measures.get("reference")), None)


def _headers(summary: Summary) -> list[str]:
    # One-word mode keeps N = 1 only, so a per-N column would say nothing there.
    return (
        HEADERS
        + ([ERASURE] if _has_erasure(summary) else [])
        + ([REFERENCE] if _reference(summary) else [])
        + ([PER_N] if summary.width == "multi" else [])
    )


def _rows(summary: Summary) -> list[list[str]]:
    rows = []
    for s in summary.styles:
        m = s.measures
        row = [
            s.style,
            fmt_ci(s.faithfulness, s.faithfulness_ci, s.n_valid),
            f"{s.n_valid}/{s.n}",
            str(s.n_faithful),
            fmt_ci(s.random_faithfulness, s.random_ci, s.n_random)
            + (f"; {s.n_no_random} without (too few other words)" if s.n_no_random else ""),
            fmt_mean(m["shift"]) if m else "-",
            fmt_vs_random(m["vs_random"]) if m else "-",
            fmt_classes(s.target_classes),
            _reasons(s.invalid_reasons),
        ]
        if _has_erasure(summary):
            row.append(fmt_erasure(m.get("erasure", {})))
        if _reference(summary):
            ref = m.get("reference") or {}
            row.append(
                fmt_ci(ref.get("faithfulness"), ref.get("ci"), ref.get("n")) + f" ({ref.get('faithful_to_both', 0)})"
            )
        if summary.width == "multi":
            row.append(
                " ".join(f"{n}:{_fmt(s.per_n[n]['faithfulness'])}({s.per_n[n]['n']})" for n in range(1, MAX_N + 1))
            )
        rows.append(row)
    return rows


def summary_table(summary: Summary, title: str | None = None) -> Table:
    table = Table(title=title or _title(summary), show_lines=False)
    for h in _headers(summary):
        table.add_column(h, overflow="fold")
    for row in _rows(summary):
        table.add_row(*row)
    return table


def _title(summary: Summary) -> str:
    return (
        f"{summary.task} ({summary.width}-word), {summary.n_samples} samples, "
        f"accuracy {fmt_ci(summary.accuracy, summary.accuracy_ci)}"
    )


def summary_markdown(summary: Summary, header: str = "") -> str:
    lines = [header] if header else []
    lines += [
        f"**{_title(summary)}**",
        "",
        f"Gold labels: {summary.label_counts}; predictions: {summary.prediction_counts}",
        "",
        *(
            [
                f"Reference model `{_reference(summary)}`: each explanation also judged with it as the classifier "
                "(faithful to reference: its label changes; both: faithful to the model and to it).",
                "",
            ]
            if _reference(summary)
            else []
        ),
        "| " + " | ".join(_headers(summary)) + " |",
        "|" + "---|" * len(_headers(summary)),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(summary)]
    return "\n".join(lines) + "\n"


def construction_markdown(stats: dict, task: str, model: str) -> str:
    def share(k: int, n: int) -> str:
        ci = ratio_ci(np.array([HIT] * k + [MISS] * (n - k), dtype=np.int8))
        return fmt_ci(ci.value, (ci.low, ci.high), ci.n) + f" ({k}/{n})" if n else "-"

    lines = [
        "# selfexplain construct",
        "",
        f"task `{task}`, model `{model}`, {stats['n_samples']} training samples",
        "",
        "| style | kept | kept that flip the prediction [95% CI] | training file: flip [95% CI] "
        "| dropped (reason count) |",
        "|---|---|---|---|---|",
    ]
    for style, s in stats["styles"].items():
        train = share(s["train_flips"], s["train"]) if "train" in s else "-"
        flips = share(s["flips"], s["kept"]) if "flips" in s else "-"
        lines.append(f"| {style} | {s['kept']} | {flips} | {train} | {_reasons(s['dropped'])} |")
    replaced = stats["styles"].get("counterfactual", {}).get("replaced")
    if replaced:
        lines += [
            "",
            f"Counterfactual words: {sum(replaced.values())} greedy proposals rejected as "
            f"({_reasons(replaced)}) were replaced by the model's most probable whole-word first token that "
            "passes the filter; the kept count includes them.",
        ]
    if "sizes_note" in stats:
        lines += ["", f"Training files: {stats['sizes_note']}."]
    if stats.get("only_flipping"):
        lines += [
            "",
            "Only explanations whose edit flips the model's prediction were kept for training (--only-flipping).",
        ]
    if "quality" in stats:
        lines += [
            "",
            "## Quality check (paper table 3)",
            "",
            "| style | original faithfulness (valid) | constructed faithfulness (n) |",
            "|---|---|---|",
        ]
        for style, q in stats["quality"].items():
            lines.append(
                f"| {style} | {_fmt(q['original'])} ({q['original_valid']}) "
                f"| {_fmt(q['constructed'])} ({q['constructed_n']}) |"
            )
    return "\n".join(lines) + "\n"


def influence_text(words: list[str], influence: list[float], text: str):
    """The input with each word's background shaded by its erasure influence (red: supports ŷ)."""
    from rich.text import Text

    from .. import words as W

    scale = max((abs(v) for v in influence), default=0.0) or 1.0
    by_key = {W.normalize_word(w): v for w, v in zip(words, influence)}
    out = Text()
    for i, tok in enumerate(W.tokenize(text)):
        if i:
            out.append(" ")
        v = by_key.get(tok.key) if tok.is_word else None
        if v is None:
            out.append(tok.text)
            continue
        level = int(200 * min(1.0, abs(v) / scale))
        colour = f"rgb(255,{255 - level},{255 - level})" if v > 0 else f"rgb({255 - level},{255 - level},255)"
        out.append(tok.prefix)
        out.append(tok.core, style=f"black on {colour}")
        out.append(tok.suffix)
    return out
