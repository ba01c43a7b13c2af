"""``selfexplain report``: a study's tables, figures and HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, console, user_errors


@app.command(
    "report",
    epilog=(
        "Examples:\n\n"
        "  selfexplain report studies/cpu-small\n\n"
        "  selfexplain report studies/cpu-small --primary-estimand all --holm-family table   # another reading"
    ),
)
def report_cmd(
    study: Path = typer.Argument(
        ..., help="A study folder written by `selfexplain reproduce`, or a folder of `selfexplain cot` runs."
    ),
    output_path: Optional[Path] = typer.Option(None, help="Where to write the report (default: STUDY/report)."),
    max_per_cell: int = typer.Option(300, min=1, help="Samples per cell in the HTML explorer."),
    allow_incomplete: bool = typer.Option(
        False,
        "--allow-incomplete",
        help=(
            "Exit 0 although some cells rest on incomplete runs (a study still running or killed); they are "
            "marked ‡ in every table either way."
        ),
    ),
    primary_estimand: Optional[str] = typer.Option(
        None,
        help=(
            "The estimand the reading's verdicts rest on: valid (the paper's: faithful among each side's valid "
            "explanations), all, both-valid or label-balanced. Default: the experiment's reading.primary."
        ),
    ),
    margin: Optional[float] = typer.Option(
        None,
        help=(
            'The smallest change of interest where the paper reports none ("does not hold" needs the interval '
            "below it). Default: the experiment's reading.margin (0.1)."
        ),
    ),
    holm_family: Optional[str] = typer.Option(
        None,
        help=(
            "Holm's family: reading (every claim) or table (each paper table). Default: the experiment's "
            "reading.family."
        ),
    ),
) -> None:
    """Tables (Markdown, CSV), figures (PNG) and a one-page HTML report of a study (or of a folder of cot runs)."""
    from ..reports import write_study_report
    from ..reports.cot import cot_runs, write_cot_report

    if not (study / "study.json").exists() and cot_runs(study):
        with user_errors():
            files = write_cot_report(study, output_path)
        for kind, paths in files.items():
            for p in paths:
                console.print(f"{kind}: {p}", highlight=False)
        return
    with user_errors():
        files = write_study_report(
            study,
            output_path,
            max_per_cell,
            allow_incomplete=allow_incomplete,
            reading={"primary": primary_estimand, "margin": margin, "family": holm_family},
        )
    for kind, paths in files.items():
        for p in paths:
            console.print(f"{kind}: {p}", highlight=False)
