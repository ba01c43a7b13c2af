"""Human-readable views of a summary: a rich terminal table and Markdown.

The numbers come from :func:`selfexplain.evaluation.summarize`; this module
only formats them.
"""

from __future__ import annotations

from rich.table import Table

from .evaluation import MAX_N, Summary


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in reasons.items()) or "-"


HEADERS = ["style", "faithfulness", "valid", "faithful", "invalid (reason count)"]
PER_N = "faithfulness by N (count)"


def _headers(summary: Summary) -> list[str]:
    # One-word mode keeps N = 1 only, so a per-N column would say nothing there.
    return HEADERS + ([PER_N] if summary.width == "multi" else [])


def _rows(summary: Summary) -> list[list[str]]:
    rows = []
    for s in summary.styles:
        row = [s.style, _fmt(s.faithfulness), f"{s.n_valid}/{s.n}", str(s.n_faithful), _reasons(s.invalid_reasons)]
        if summary.width == "multi":
            row.append(" ".join(
                f"{n}:{_fmt(s.per_n[n]['faithfulness'])}({s.per_n[n]['n']})" for n in range(1, MAX_N + 1)
            ))
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
        f"accuracy {summary.accuracy:.3f}"
    )


def summary_markdown(summary: Summary, header: str = "") -> str:
    lines = [header] if header else []
    lines += [
        f"**{_title(summary)}**", "",
        f"Gold labels: {summary.label_counts}; predictions: {summary.prediction_counts}", "",
        "| " + " | ".join(_headers(summary)) + " |",
        "|" + "---|" * len(_headers(summary)),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(summary)]
    return "\n".join(lines) + "\n"


def construction_markdown(stats: dict, task: str, model: str) -> str:
    lines = [
        "# selfexplain construct", "",
        f"task `{task}`, model `{model}`, {stats['n_samples']} training samples", "",
        "| style | kept | dropped (reason count) |", "|---|---|---|",
    ]
    for style, s in stats["styles"].items():
        lines.append(f"| {style} | {s['kept']} | {_reasons(s['dropped'])} |")
    if "quality" in stats:
        lines += [
            "", "## Quality check (paper table 3)", "",
            "| style | original faithfulness (valid) | constructed faithfulness (n) |", "|---|---|---|",
        ]
        for style, q in stats["quality"].items():
            lines.append(
                f"| {style} | {_fmt(q['original'])} ({q['original_valid']}) | {_fmt(q['constructed'])} ({q['constructed_n']}) |"
            )
    return "\n".join(lines) + "\n"


def influence_text(words: list[str], influence: list[float], text: str):
    """The input with each word's background shaded by its erasure influence (red: supports ŷ)."""
    from rich.text import Text

    from . import words as W

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
