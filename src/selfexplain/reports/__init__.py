"""Reports: everything that turns records into something a person reads.

This file holds the views of one run (a rich terminal table, Markdown);
:mod:`.tables` computes the paper's tables for a whole study, :mod:`.figures`
draws its figures, :mod:`.lexicon` counts the words of faithful explanations
(table 6), and :mod:`.html` writes the one-page report.  The numbers come from
the records; these modules only aggregate and format them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

from ..errors import UserError
from ..layout import MAX_N
from ..measures import fmt_erasure, fmt_mean, fmt_vs_random
from ..wordclasses import fmt_classes
from ..stats import HIT, MISS, SMALL, ratio_ci
from ..store import atomic_write

KEPT = "the study's runs are untouched"

if TYPE_CHECKING:  # the summary object `evaluate` returns; reports never import the pipeline
    from ..evaluation import Summary
    from .tables import StudyData, Table as StudyTable


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


HEADERS = ["style", "faithfulness [95% CI]", "valid", "faithful", "random baseline [95% CI]",
           "shift [95% CI]", "vs random baseline", "targets: share (faithfulness)", "invalid (reason count)"]
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
    return (HEADERS + ([ERASURE] if _has_erasure(summary) else [])
            + ([REFERENCE] if _reference(summary) else [])
            + ([PER_N] if summary.width == "multi" else []))



def _rows(summary: Summary) -> list[list[str]]:
    rows = []
    for s in summary.styles:
        m = s.measures
        row = [s.style, fmt_ci(s.faithfulness, s.faithfulness_ci, s.n_valid), f"{s.n_valid}/{s.n}", str(s.n_faithful),
               fmt_ci(s.random_faithfulness, s.random_ci, s.n_random)
               + (f"; {s.n_no_random} without (too few other words)" if s.n_no_random else ""),
               fmt_mean(m["shift"]) if m else "-", fmt_vs_random(m["vs_random"]) if m else "-",
               fmt_classes(s.target_classes), _reasons(s.invalid_reasons)]
        if _has_erasure(summary):
            row.append(fmt_erasure(m.get("erasure", {})))
        if _reference(summary):
            ref = m.get("reference") or {}
            row.append(fmt_ci(ref.get("faithfulness"), ref.get("ci"), ref.get("n")) + f" ({ref.get('faithful_to_both', 0)})")
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
        f"accuracy {fmt_ci(summary.accuracy, summary.accuracy_ci)}"
    )


def summary_markdown(summary: Summary, header: str = "") -> str:
    lines = [header] if header else []
    lines += [
        f"**{_title(summary)}**", "",
        f"Gold labels: {summary.label_counts}; predictions: {summary.prediction_counts}", "",
        *([f"Reference model `{_reference(summary)}`: each explanation also judged with it as the classifier "
           "(faithful to reference: its label changes; both: faithful to the model and to it).", ""]
          if _reference(summary) else []),
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
        "# selfexplain construct", "",
        f"task `{task}`, model `{model}`, {stats['n_samples']} training samples", "",
        "| style | kept | kept that flip the prediction [95% CI] | training file: flip [95% CI] "
        "| dropped (reason count) |", "|---|---|---|---|---|",
    ]
    for style, s in stats["styles"].items():
        train = share(s["train_flips"], s["train"]) if "train" in s else "-"
        flips = share(s["flips"], s["kept"]) if "flips" in s else "-"
        lines.append(f"| {style} | {s['kept']} | {flips} | {train} | {_reasons(s['dropped'])} |")
    replaced = stats["styles"].get("counterfactual", {}).get("replaced")
    if replaced:
        lines += ["", f"Counterfactual words: {sum(replaced.values())} greedy proposals rejected as "
                  f"({_reasons(replaced)}) were replaced by the model's most probable whole-word first token that "
                  "passes the filter; the kept count includes them."]
    if "sizes_note" in stats:
        lines += ["", f"Training files: {stats['sizes_note']}."]
    if stats.get("only_flipping"):
        lines += ["", "Only explanations whose edit flips the model's prediction were kept for training "
                  "(--only-flipping)."]
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


def all_tables(study: "StudyData") -> list["StudyTable"]:
    """The reading (each claim's verdict), the paper's tables in its order (3, then which measure to trust,
    4, 5, 6, 7, 10), then coupling and the training routes side by side (studies with conditions beyond the
    paper)."""
    from .coupling import coupling_table
    from .diagnosticity import diagnosticity_table
    from .lexicon import lexicon_table
    from .reading import reading_table
    from .routes import routes_table
    from .seeds import seeds_table
    from .tables import accuracy_table, cells_table, construction_quality_table, faithfulness_table, valid_counts_table

    coupling = coupling_table(study)  # only studies with a condition trained on another model's data
    diagnosticity = diagnosticity_table(study)  # only constructions that kept every word's erasure
    seeds = seeds_table(study)  # only studies that trained some condition with further seeds
    return [
        cells_table(study),
        reading_table(study),
        construction_quality_table(study),
        *([diagnosticity] if diagnosticity.rows else []),
        faithfulness_table(study, "one", "table4_faithfulness", "Table 4: faithfulness before/after training (one-word)"),
        faithfulness_table(study, "multi", "table5_multiword", "Table 5: faithfulness before/after training (multi-word)"),
        lexicon_table(study),
        accuracy_table(study),
        valid_counts_table(study),
        *([seeds] if seeds.rows else []),
        *([coupling] if coupling.rows else []),
        *([routes_table(study)] if study.variants else []),
    ]


class IncompleteStudy(UserError):
    """The report was written, but some of its cells rest on incomplete runs (marked in every table)."""


def write_study_report(study_dir: str | Path, out_dir: str | Path | None = None,
                       max_per_cell: int | None = None, allow_incomplete: bool = False,
                       reading: dict[str, Any] | None = None) -> dict[str, list[Path]]:
    """Every table (Markdown + CSV), figure (PNG) and the HTML page of a study, into ``out_dir``.

    Args:
        study_dir: the study folder (:func:`~selfexplain.experiments.reproduce`'s).
        out_dir: where the report goes (default ``STUDY/report``).
        max_per_cell: samples per cell in the HTML page's explorer (default: all).
        allow_incomplete: report a study with incomplete cells (they are marked) without raising.
        reading: overrides of the experiment's declared primary estimand, margin or Holm family (the reading
            then says they were set at report time).

    Returns:
        The written files by kind (``markdown``, ``csv``, ``figures``, ``html``).

    Raises:
        IncompleteStudy: a cell is incomplete and ``allow_incomplete`` is false (after the report is written:
            a report of a running or crashed study must not pass for a finished one).
        UserError: a folder that is no study, or an inconsistent one, in one line.
    """
    from .. import estimands as E
    from .figures import all_figures
    from .html import MAX_PER_CELL, write_html
    from .tables import load_study

    overrides = {k: v for k, v in (reading or {}).items() if v is not None}
    if overrides.get("primary", E.VALID) not in E.ESTIMANDS:
        raise UserError(f"--primary-estimand: {overrides['primary']!r} is none of {', '.join(E.ESTIMANDS)}")
    if overrides.get("family", "reading") not in E.FAMILIES:
        raise UserError(f"--holm-family: {overrides['family']!r} is none of {', '.join(E.FAMILIES)}")
    if not 0 < overrides.get("margin", E.DEFAULT_MARGIN) <= 1:
        raise UserError(f"--margin: {overrides['margin']} is not a change of faithfulness in (0, 1]")
    study = load_study(study_dir)
    study.reading_overrides = overrides
    out = Path(out_dir) if out_dir else study.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    tables = all_tables(study)
    written: dict[str, list[Path]] = {"markdown": [], "csv": [], "figures": [], "html": []}
    md = [f"# selfexplain report: {study.experiment.get('name', study.root.name)}", "",
          study.experiment.get("description", ""), "", _stage_times(study.stages), ""]
    for t in tables:
        atomic_write(out / f"{t.name}.csv", t.csv(), kept=KEPT)
        written["csv"].append(out / f"{t.name}.csv")
        md.append(t.markdown())
    figures = all_figures(study, out)
    written["figures"] = figures
    md += [f"![{p.stem}]({p.name})" for p in figures]
    atomic_write(out / "report.md", "\n".join(md) + "\n", kept=KEPT)
    written["markdown"].append(out / "report.md")
    written["html"].append(write_html(study, tables, figures, out / "report.html", max_per_cell or MAX_PER_CELL))
    if study.incomplete and not allow_incomplete:
        first = study.incomplete[0]
        raise IncompleteStudy(
            f"{study.root}: report written to {out}, but {len(study.incomplete)} of "
            f"{len(study.cells) + len(study.seeded)} cells are "
            f"incomplete (e.g. {first.condition}/{first.eval_task}/{first.width}: {first.status.describe()}), "
            "marked ‡ in every table; rerun the same `selfexplain reproduce` to complete them, or pass "
            "--allow-incomplete to accept the report as it is")
    return written


def _stage_times(stages: dict) -> str:
    lines = ["### Stages and compute times", "", "Seconds of compute in each stage's run folder, summed over every "
             "process that worked on it.", "", "| stage | seconds | run folder |", "|---|---|---|"]
    for key, s in stages.items():
        where = f"**skipped**: {s['skipped']}" if s.get("skipped") else Path(s.get("run_dir", "")).name
        lines.append(f"| {key} | {s.get('seconds', '-')} | {where} |")
    return "\n".join(lines)
