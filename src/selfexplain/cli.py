"""The ``selfexplain`` command line (typer).  Flags follow lm-evaluation-harness.

Every command turns a :class:`~selfexplain.errors.UserError` into one line on
stderr and exit status 2.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure and train the faithfulness of LLM self-explanations (Doi et al., 2025).",
)
data_app = typer.Typer(help="Prepare offline data sets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console()
err = Console(stderr=True)


def _fail(e: UserError) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  selfexplain evaluate                                   # embedded Qwen 0.5B, tweets, all styles, 100 samples\n\n"
        "  selfexplain evaluate --style attribution --width multi --limit 50\n\n"
        "  selfexplain evaluate --task snli --data snli_1.0_test.jsonl --model allenai/tulu-2-7b "
        "--model-args dtype=bfloat16,device=cuda --batch-size 64"
    )
)
def evaluate(
    model: str = typer.Option("embedded", help="'embedded[:NAME]', a .gguf file, a model folder, or a hub id."),
    task: str = typer.Option("tweets", help="A registered task (see `selfexplain tasks`) or a task .yaml file."),
    style: list[str] = typer.Option(["all"], help="attribution, redaction, counterfactual or all; repeatable."),
    width: str = typer.Option("one", help="'one' (one-word prompts, N=1 kept) or 'multi' (JSON prompts, any N)."),
    limit: int = typer.Option(100, help="Number of test examples (class-balanced)."),
    batch_size: int = typer.Option(16, help="Examples per chunk; a chunk is the unit of resumption."),
    seed: int = typer.Option(0, help="Seed of the class-balanced train/test split."),
    split: str = typer.Option("test", help="'test': the held-out 20% of the data (never trained on); 'all': every example (for a file that is a test set)."),
    output_path: Path = typer.Option(Path("runs"), help="Folder that receives the run folder."),
    data: Optional[str] = typer.Option(None, help="Data file in the task's canonical format (overrides the default)."),
    hub: bool = typer.Option(False, "--hub", help="Load the task's data set from the Hugging Face hub."),
    backend: str = typer.Option("hf", help="Inference backend."),
    model_args: Optional[str] = typer.Option(
        None, help="Backend options as key=value,...: revision, dtype, device, max_batch_size, trust_remote_code."
    ),
) -> None:
    """Measure how faithful a model's self-explanations are (self-consistency check)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from . import api
    from .backends import parse_model_args
    from .reports import summary_table

    start = time.time()
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console,
    )
    bar: dict[str, int] = {}

    def on_model(identity: dict, seconds: float) -> None:
        console.print(f"model ready in {seconds:.0f}s: {identity}", highlight=False)

    def on_start(run_dir: Path, total: int) -> None:
        console.print(f"run folder: {run_dir}", highlight=False)
        bar["id"] = progress.add_task("evaluating", total=total)
        progress.start()

    console.print(f"loading {model} (an embedded model is converted once on first use, about a minute)", highlight=False)
    try:
        result = api.evaluate(
            model=model, task=task, styles=style, width=width, limit=limit, seed=seed, split=split,
            batch_size=batch_size, output_path=output_path, data=data, hub=hub, backend=backend,
            model_args=parse_model_args(model_args), on_model=on_model, on_start=on_start,
            on_chunk=lambda n: progress.advance(bar["id"], n),
        )
    except UserError as e:
        progress.stop()
        _fail(e)
    progress.stop()
    console.print(summary_table(result.summary))
    console.print(
        f"records: {result.run_dir / 'records.jsonl'}\nsummary: {result.run_dir / 'summary.md'}\n"
        f"wall time: {time.time() - start:.0f}s",
        highlight=False,
    )


@app.command()
def tasks() -> None:
    """List the registered tasks."""
    from rich.table import Table

    from .tasks import get_task, task_names

    table = Table("task", "labels", "explained field", "description")
    for name in task_names():
        t = get_task(name)
        table.add_row(name, ", ".join(t.labels), t.input_name, t.description)
    console.print(table)


@app.command()
def styles() -> None:
    """List the registered explanation styles."""
    from .styles import get_style, style_names

    for name in style_names():
        console.print(f"{name}: {(get_style(name).__doc__ or '').strip()}", highlight=False)


@data_app.command("prepare")
def data_prepare(name: str = typer.Argument(..., help="Data set to prepare: vitaminc.")) -> None:
    """Fetch an offline data set from a package registry into the cache (vitaminc: from the bigbench sdist)."""
    from .tasks.prepare import prepare

    try:
        path = prepare(name, console)
    except UserError as e:
        _fail(e)
    console.print(f"ready: {path}", highlight=False)


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # python -m selfexplain.cli
    main()
