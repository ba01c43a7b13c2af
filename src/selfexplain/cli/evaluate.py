"""``selfexplain evaluate``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..styles import style_names
from .app import app, console, progress, user_errors
from .options import (
    ADAPTER,
    BACKEND,
    BACKEND_ARGS,
    DATA,
    FORMER_BATCH_SIZE,
    HUB,
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
    epilog=(
        "Examples:\n\n"
        "  selfexplain evaluate                                   "
        "# embedded Qwen 0.5B, tweets, all styles, 100 samples\n\n"
        "  selfexplain evaluate --style attribution --width multi --limit 50\n\n"
        "  selfexplain evaluate --task snli --data snli_1.0_test.jsonl --model allenai/tulu-2-7b "
        "--model-args dtype=bfloat16,device=cuda --chunk-size 64\n\n"
        "  selfexplain evaluate --model embedded:smollm2-135m --model embedded --limit 50   # then a leaderboard"
    )
)
def evaluate(
    model: list[str] = typer.Option(
        ["embedded"],
        help="'embedded[:NAME]', a .gguf file, a model folder, or a hub "
        "id; repeatable: every model on the same samples, then a leaderboard.",
    ),
    task: str = TASK,
    style: list[str] = typer.Option(["all"], help=f"{', '.join(style_names())} or all; repeatable."),
    width: str = typer.Option("one", help="'one' (one-word prompts, N=1 kept) or 'multi' (JSON prompts, any N)."),
    limit: int = count_option(100, "Number of test examples (class-balanced)."),
    chunk_size: int = count_option(
        16, "Examples per chunk; a chunk is the unit of resumption (the backend batches within it)."
    ),
    batch_size: Optional[int] = FORMER_BATCH_SIZE,
    seed: int = SEED,
    split: str = typer.Option(
        "test",
        help="'test': the held-out 20% of the data (never trained on); "
        "'all': every example (for a file that is a test set).",
    ),
    output_path: Path = OUTPUT,
    data: Optional[str] = DATA,
    hub: bool = HUB,
    backend: str = BACKEND,
    model_args: Optional[str] = MODEL_ARGS,
    backend_args: Optional[str] = BACKEND_ARGS,
    adapter: Optional[str] = ADAPTER,
    erasure: bool = typer.Option(
        False,
        help="Also run erasure attribution on every input and record where the "
        "explanation's words rank in it (costs about one construct per sample).",
    ),
    reference_model: Optional[str] = typer.Option(
        None,
        help="Also judge every explanation with this model as the classifier (transformers backend): "
        "faithfulness to another model, e.g. the one whose explanations this model was trained on.",
    ),
    reference_args: Optional[str] = typer.Option(
        None, help="The reference model's options, key=value,... (revision, dtype, device, adapter)."
    ),
    wait: bool = WAIT,
) -> None:
    """Measure how faithful a model's self-explanations are (self-consistency check)."""
    from .. import api
    from ..names import slug
    from ..reports import summary_table

    start = time.time()
    chunk_size = chunk_of(chunk_size, batch_size)
    run_dirs = []
    for name in model:
        with user_errors():
            with progress("evaluating") as hooks:
                result = api.evaluate(
                    model=name,
                    task=task,
                    styles=style,
                    width=width,
                    limit=limit,
                    seed=seed,
                    split=split,
                    chunk_size=chunk_size,
                    output_path=output_path,
                    data=data,
                    hub=hub,
                    backend=backend,
                    model_args=model_args_of(model_args, adapter, backend_args),
                    hooks=hooks,
                    erasure=erasure,
                    wait=wait,
                    reference_model=reference_model,
                    reference_args=model_args_of(reference_args, None),
                )
        console.print(summary_table(result.summary))
        console.print(
            f"records: {result.run_dir / 'records.jsonl'}\nsummary: {result.run_dir / 'summary.md'}", highlight=False
        )
        run_dirs.append(result.run_dir)
    if len(run_dirs) > 1:  # the same task, seed and limit: every model explained the same samples
        from ..reports import leaderboard as lb

        with user_errors():
            board = lb.build(lb.load_runs(run_dirs))
            files = lb.write(board, Path(output_path) / f"leaderboard-{slug(board.task)}")
        console.print(board.table.markdown(), highlight=False, markup=False, soft_wrap=True)
        console.print(f"leaderboard: {files['markdown']} (pairs, CSV, HTML and figure beside it)", highlight=False)
    console.print(f"wall time: {time.time() - start:.0f}s", highlight=False)
