"""``selfexplain attribute``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .app import app, console, progress, user_errors
from .options import (
    ADAPTER,
    BACKEND,
    BACKEND_ARGS,
    DATA,
    FORMER_BATCH_SIZE,
    HUB,
    INFLUENCE_HELP,
    MODEL,
    MODEL_ARGS,
    OUTPUT,
    SEED,
    TASK,
    WAIT,
    chunk_of,
    count_option,
    model_args_of,
)


@app.command(
    epilog="Examples:\n\n  selfexplain attribute --limit 20\n\n"
    "  selfexplain attribute --task snli --data snli_1.0_dev.jsonl --split all --show 5"
)
def attribute(
    model: str = MODEL,
    task: str = TASK,
    limit: int = count_option(20, "Number of examples (class-balanced)."),
    chunk_size: int = count_option(16, "Examples per chunk (all their erased variants are scored together)."),
    batch_size: Optional[int] = FORMER_BATCH_SIZE,
    seed: int = SEED,
    split: str = typer.Option("test", help="test, train or all."),
    output_path: Path = OUTPUT,
    data: Optional[str] = DATA,
    hub: bool = HUB,
    backend: str = BACKEND,
    model_args: Optional[str] = MODEL_ARGS,
    backend_args: Optional[str] = BACKEND_ARGS,
    adapter: Optional[str] = ADAPTER,
    show: int = typer.Option(10, min=0, help="How many examples to print with words shaded by influence."),
    influence: str = typer.Option("normalised", help=INFLUENCE_HELP),
    wait: bool = WAIT,
) -> None:
    """Erasure attribution: how much each word's removal lowers p(prediction)."""
    from .. import api
    from ..reports import influence_text

    start = time.time()
    with user_errors():
        with progress("attributing") as hooks:
            res = api.attribute(
                model=model,
                task=task,
                limit=limit,
                seed=seed,
                split=split,
                chunk_size=chunk_of(chunk_size, batch_size),
                output_path=output_path,
                data=data,
                hub=hub,
                backend=backend,
                model_args=model_args_of(model_args, adapter, backend_args),
                hooks=hooks,
                influence=influence,
                wait=wait,
            )
    for a in res.attributions[:show]:
        console.print(influence_text(a.words, a.influence, a.text), end="")
        console.print(f"  [dim]ŷ={a.prediction} w*={a.w_star}[/]")
    console.print(f"records: {res.run_dir / 'records.jsonl'}\nwall time: {time.time() - start:.0f}s", highlight=False)
