"""``selfexplain compare``: two runs of the same samples, sample by sample."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import UserError
from .app import app, console, user_errors


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="An evaluate run folder."),
    run_b: Path = typer.Argument(..., help="An evaluate run folder of the same samples (e.g. the other backend)."),
    allow_incomplete: bool = typer.Option(
        False,
        "--allow-incomplete",
        help=("Compare runs that are still running or were killed (their complete records only)."),
    ),
) -> None:
    """List every sample whose prediction, label probabilities or explanation differ between two runs."""
    from ..reports.compare import compare_runs
    from ..reports.leaderboard import load_run

    with user_errors():
        recs = [load_run(run, allow_incomplete).records for run in (run_a, run_b)]
        try:
            report = compare_runs(recs[0], recs[1])
        except ValueError as e:
            raise UserError(f"{run_a} vs {run_b}: {e}") from None
    console.print(report.markdown(run_a.name, run_b.name), highlight=False, markup=False)
