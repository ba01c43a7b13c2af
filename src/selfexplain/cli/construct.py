"""``selfexplain construct``."""

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


def _three(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@app.command(
    epilog="Examples:\n\n  selfexplain construct --limit 500 --quality 200\n\n"
    "  selfexplain construct --task sentiment140 --data train.csv --limit 50000 --model-args device=cuda"
)
def construct(
    model: str = MODEL,
    task: str = TASK,
    limit: int = typer.Option(
        500,
        min=1,
        help="Training examples to construct from (class-balanced, disjoint from test); "
        "with --per-style, the most to look at.",
    ),
    per_style: Optional[int] = typer.Option(
        None,
        min=1,
        help="Construct until every style has kept this many (the paper: "
        "50,000). Without it, every style is cut to the smallest count kept.",
    ),
    influence: str = typer.Option("normalised", help=INFLUENCE_HELP),
    quality: int = typer.Option(
        0, min=0, help="Also compare constructed with generated explanations on this many samples (table 3)."
    ),
    cf_candidates: int = typer.Option(
        20,
        min=0,
        help="A counterfactual word that copies an input word, a label or w* is "
        "replaced by the best whole word among the reply's this many most "
        "probable first tokens; 0 drops such samples.",
    ),
    only_flipping: bool = typer.Option(
        False,
        "--only-flipping",
        help="Train only on explanations whose edit flips the model's prediction (the paper keeps all).",
    ),
    chunk_size: int = count_option(16, "Examples per chunk."),
    batch_size: Optional[int] = FORMER_BATCH_SIZE,
    seed: int = SEED,
    output_path: Path = OUTPUT,
    data: Optional[str] = DATA,
    hub: bool = HUB,
    backend: str = BACKEND,
    model_args: Optional[str] = MODEL_ARGS,
    backend_args: Optional[str] = BACKEND_ARGS,
    adapter: Optional[str] = ADAPTER,
    wait: bool = WAIT,
) -> None:
    """Build pseudo-faithful explanation training data (erasure attribution + table 2 template)."""
    from rich.table import Table

    from .. import api

    start = time.time()
    with user_errors():
        with progress("constructing") as hooks:
            res = api.construct(
                model=model,
                task=task,
                limit=limit,
                seed=seed,
                chunk_size=chunk_of(chunk_size, batch_size),
                output_path=output_path,
                data=data,
                hub=hub,
                backend=backend,
                model_args=model_args_of(model_args, adapter, backend_args),
                quality=quality,
                hooks=hooks,
                per_style=per_style,
                influence=influence,
                wait=wait,
                cf_candidates=cf_candidates,
                only_flipping=only_flipping,
            )
    table = Table(
        "style",
        "kept",
        "flip",
        "training file: flip",
        "dropped (reason count)",
        title=f"{res.stats['n_samples']} samples",
    )
    for s, v in res.stats["styles"].items():
        table.add_row(
            s,
            str(v["kept"]),
            f"{v['flips']}/{v['kept']}",
            f"{v['train_flips']}/{v['train']}",
            ", ".join(f"{k} {n}" for k, n in v["dropped"].items()) or "-",
        )
    console.print(table)
    console.print(f"training files: {res.stats['sizes_note']}", highlight=False)
    if "quality" in res.stats:
        q = Table("style", "original", "constructed", title="faithfulness (paper table 3)")
        for s, v in res.stats["quality"].items():
            q.add_row(
                s,
                f"{_three(v['original'])} ({v['original_valid']})",
                f"{_three(v['constructed'])} ({v['constructed_n']})",
            )
        console.print(q)
    for s, f in res.files.items():
        console.print(f"{s}: {f}", highlight=False)
    console.print(f"wall time: {time.time() - start:.0f}s", highlight=False)
