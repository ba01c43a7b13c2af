"""``selfexplain reproduce``: a study's grid from an experiment file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..backends import backend_names
from .app import app, console, user_errors
from .options import BACKEND_ARGS, WAIT


@app.command(
    epilog=(
        "Examples:\n\n"
        "  selfexplain reproduce --preset cpu-small           "
        "# the embedded model, offline tasks (~2 h on 2 CPU cores)\n\n"
        "  selfexplain reproduce --preset paper --model-args dtype=bfloat16,device=cuda\n\n"
        "  selfexplain reproduce --preset paper --smoke      # every stage at toy size, offline, on a CPU\n\n"
        "  selfexplain reproduce --preset my_study.yaml && selfexplain report studies/my_study\n\n"
        "  selfexplain reproduce --preset cpu-medium --conditions counterfactual   # only that condition"
    )
)
def reproduce(
    preset: str = typer.Option(
        ..., help="A shipped preset (cpu-small, cpu-medium, paper, paper-13b) or an experiment .yaml file."
    ),
    output_path: Path = typer.Option(
        Path("studies"), help="Folder that receives the study folder (named after the experiment)."
    ),
    model_args: Optional[str] = typer.Option(None, help="Backend options merged into the experiment's model_args."),
    backend: Optional[str] = typer.Option(
        None, help=f"Override the experiment's backend ({', '.join(backend_names())})."
    ),
    backend_args: Optional[str] = BACKEND_ARGS,
    report: bool = typer.Option(True, help="Write the report when the grid is complete."),
    smoke: bool = typer.Option(
        False,
        help="Every stage at toy size on a small stand-in model and bundled local "
        "data (no hub, no GPU): checks a preset before it runs for real.",
    ),
    model: Optional[str] = typer.Option(
        None, help="Override the experiment's model (with --smoke: the stand-in, default standin:tulu-tiny)."
    ),
    runs_path: Optional[Path] = typer.Option(
        None,
        help="A runs folder shared by several studies: a stage they share "
        "is computed once (one waits for the other). Default: STUDY/runs.",
    ),
    wait: bool = WAIT,
    conditions: Optional[str] = typer.Option(
        None,
        help=(
            "Compute only these conditions this time (comma-separated, e.g. counterfactual); the other conditions' "
            "cells stay as the study records them."
        ),
    ),
) -> None:
    """Run the paper's grid (construct, train, evaluate) from an experiment file; resumable and cached per stage."""
    from ..backends import parse_model_args
    from ..experiments import load_experiment
    from ..experiments import reproduce as run
    from ..experiments import smoke as smoke_of

    start = time.time()
    with user_errors():
        exp = load_experiment(preset)
        if smoke:
            exp = smoke_of(exp, model)
        elif model:
            exp.model = model
        exp.model_args = {**exp.model_args, **parse_model_args(model_args), **parse_model_args(backend_args)}
        if backend:
            exp.backend = backend
        root = run(
            exp,
            output_path,
            log=lambda m: console.print(f"[{time.time() - start:7.0f}s] {m}", highlight=False),
            runs_path=runs_path,
            wait=wait,
            only=[c.strip() for c in conditions.split(",") if c.strip()] if conditions is not None else None,
        )
        if report:
            from ..reports import write_study_report

            files = write_study_report(root)
            console.print(f"report: {files['html'][0]}", highlight=False)
    console.print(f"study folder: {root}\nwall time: {time.time() - start:.0f}s", highlight=False)
