"""``selfexplain rejudge``: finished runs brought to today's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, console, user_errors
from .options import MODEL_ARGS, model_args_of


@app.command(
    epilog=(
        "Examples:\n\n"
        "  selfexplain rejudge docs/results/cpu-medium/cpu-medium      # every cell of a study\n\n"
        "  selfexplain rejudge runs/evaluate-tweets-qwen2.5-coder-0.5b-20f161e49fc4 --adapter runs/train-.../adapter"
    )
)
def rejudge(
    paths: list[Path] = typer.Argument(..., help="Evaluate run folders, or study folders (every cell)."),
    model: Optional[str] = typer.Option(
        None, help="The model the runs were made by (default: the embedded model their configuration names)."
    ),
    model_args: Optional[str] = MODEL_ARGS,
    adapter: Optional[str] = typer.Option(
        None, help="The run's LoRA adapter (in a study: its condition's, where still on disk)."
    ),
) -> None:
    """Re-judge finished evaluate runs under today's rules, recomputing only what changed: random baselines
    that hit the explanation's words are drawn again; strict redaction and word classes are recorded."""
    from rich.table import Table

    from .. import api
    from ..rejudge import Rejudged

    with user_errors():
        results = api.rejudge([str(p) for p in paths], model, model_args_of(model_args, adapter))
    table = Table("run", "now", "records", "baselines drawn again", "of which none left", title="rejudge")
    left = 0
    for path, key, res in results:
        if isinstance(res, Rejudged):
            now = "nothing to re-judge" if res.current else res.run_dir.name
            table.add_row(key or path.name, now, str(res.n_records), str(res.redrawn), str(res.no_random))
        else:
            left += 1
            table.add_row(key or path.name, f"left as it was: {res}", "", "", "")
    console.print(table)
    if left:
        console.print(f"{left} run(s) left as they were (see above)", highlight=False)
        raise typer.Exit(1)
