"""A study's whole report: every table (Markdown and CSV), every figure, the HTML page, and the stage times;
refused (after writing) when a cell is incomplete, unless asked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from ..store import atomic_write

KEPT = "the study's runs are untouched"

if TYPE_CHECKING:  # for annotations only: the tables' modules are imported when a report is written
    from .study import StudyData
    from .table import Table as StudyTable


def all_tables(study: "StudyData") -> list["StudyTable"]:
    """The reading (each claim's verdict), the paper's tables in its order (3, then which measure to trust,
    4, 5, 6, 7, 10), then coupling and the training routes side by side (studies with conditions beyond the
    paper)."""
    from .construction import construction_quality_table
    from .coupling import coupling_table
    from .diagnosticity import diagnosticity_table
    from .lexicon import lexicon_table
    from .reading import reading_table
    from .routes import routes_table
    from .seeds import seeds_table
    from .tables import accuracy_table, cells_table, faithfulness_table
    from .validity import valid_counts_table

    coupling = coupling_table(study)  # only studies with a condition trained on another model's data
    diagnosticity = diagnosticity_table(study)  # only constructions that kept every word's erasure
    seeds = seeds_table(study)  # only studies that trained some condition with further seeds
    return [
        cells_table(study),
        reading_table(study),
        construction_quality_table(study),
        *([diagnosticity] if diagnosticity.rows else []),
        faithfulness_table(
            study, "one", "table4_faithfulness", "Table 4: faithfulness before/after training (one-word)"
        ),
        faithfulness_table(
            study, "multi", "table5_multiword", "Table 5: faithfulness before/after training (multi-word)"
        ),
        lexicon_table(study),
        accuracy_table(study),
        valid_counts_table(study),
        *([seeds] if seeds.rows else []),
        *([coupling] if coupling.rows else []),
        *([routes_table(study)] if study.variants else []),
    ]


class IncompleteStudy(UserError):
    """The report was written, but some of its cells rest on incomplete runs (marked in every table)."""


def write_study_report(
    study_dir: str | Path,
    out_dir: str | Path | None = None,
    max_per_cell: int | None = None,
    allow_incomplete: bool = False,
    reading: dict[str, Any] | None = None,
) -> dict[str, list[Path]]:
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
    from .study import load_study

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
    md = [
        f"# selfexplain report: {study.experiment.get('name', study.root.name)}",
        "",
        study.experiment.get("description", ""),
        "",
        _stage_times(study.stages),
        "",
    ]
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
            "--allow-incomplete to accept the report as it is"
        )
    return written


def _stage_times(stages: dict) -> str:
    lines = [
        "### Stages and compute times",
        "",
        "Seconds of compute in each stage's run folder, summed over every process that worked on it.",
        "",
        "| stage | seconds | run folder |",
        "|---|---|---|",
    ]
    for key, s in stages.items():
        where = f"**skipped**: {s['skipped']}" if s.get("skipped") else Path(s.get("run_dir", "")).name
        lines.append(f"| {key} | {s.get('seconds', '-')} | {where} |")
    return "\n".join(lines)
