"""``selfexplain leaderboard``: many models in one table."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app, console, user_errors


@app.command(
    epilog=(
        "Examples:\n\n"
        "  selfexplain leaderboard runs/evaluate-tweets-*          # every model evaluated on tweets\n\n"
        "  selfexplain leaderboard studies/cpu-small/runs/evaluate-tweets-* --output-path docs/results/models"
    )
)
def leaderboard(
    runs: list[Path] = typer.Argument(..., help="Evaluate run folders, or study folders (every cell), of one task."),
    output_path: Path = typer.Option(Path("leaderboard"), help="Folder that receives leaderboard.md/.csv/.html/.png."),
    allow_incomplete: bool = typer.Option(
        False,
        "--allow-incomplete",
        help=("Rank runs that are still running or were killed (their complete records, marked ‡)."),
    ),
) -> None:
    """Many models, one table: faithfulness per style and width, paired comparisons with Holm's correction."""
    from ..reports import leaderboard as lb

    with user_errors():
        board = lb.build(lb.load_runs(runs, allow_incomplete))
        files = lb.write(board, output_path)
    console.print(board.table.markdown(), highlight=False, markup=False, soft_wrap=True)
    console.print(board.pairs.markdown(), highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"written: {files['markdown']}, {files['csv']}, {files['pairs']}, {files['html']}, {files['figure']}",
        highlight=False,
    )
