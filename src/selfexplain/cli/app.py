"""The typer application, its consoles, and how errors reach the user: a :class:`~selfexplain.errors.UserError`
becomes one line on stderr and exit status 2; progress bars are wired to the API's hooks.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from ..errors import UserError

# Help texts are plain text: rich markup would swallow brackets ("pip install 'selfexplain[vllm]'").
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Measure and train the faithfulness of LLM self-explanations (Doi et al., 2025).",
)
data_app = typer.Typer(
    help="Prepare data sets (downloads checked against published checksums).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")
# Not a terminal (a log file, CI): rich would wrap tables at 80 columns into fragments; lines may be long there.
LOG_WIDTH = 240
# soft_wrap: a printed path or command stays on one line whatever the width, so it can be pasted as it is
# (tables still fit the width).
console = Console(soft_wrap=True) if sys.stdout.isatty() else Console(width=LOG_WIDTH, soft_wrap=True)
err = (
    Console(stderr=True, soft_wrap=True)
    if sys.stderr.isatty()
    else Console(stderr=True, width=LOG_WIDTH, soft_wrap=True)
)


@contextmanager
def progress(label: str):
    """api.Hooks wired to a rich progress bar that starts once the run folder is known."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..api import Hooks

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    bar: dict[str, TaskID] = {}

    def on_model(identity: dict, seconds: float) -> None:
        console.print(f"model ready in {seconds:.0f}s: {identity}", highlight=False)

    def on_start(run_dir: Path, total: int) -> None:
        console.print(f"run folder: {run_dir}", highlight=False)
        bar["id"] = progress.add_task(label, total=total)
        progress.start()

    def on_load(model: str) -> None:
        # Printed only once the inputs are checked: a bad --data file fails before any model loads.
        console.print(
            f"loading {model}"
            + (
                " (an embedded model is converted once on first use, about a minute)"
                if model.startswith("embedded")
                else ""
            ),
            highlight=False,
        )

    def on_warning(message: str) -> None:
        from rich.text import Text

        err.print(Text.assemble(("warning: ", "bold yellow"), message), highlight=False, soft_wrap=True)

    try:
        yield Hooks(on_model, on_start, lambda n: progress.advance(bar["id"], n), on_load, on_warning)
    finally:
        progress.stop()


def fail(e: UserError) -> None:
    from rich.text import Text

    # Text, not markup: messages quote user data such as "[REDACTED]".
    err.print(Text.assemble(("error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
    raise typer.Exit(getattr(e, "exit_code", 2))


@contextmanager
def user_errors():
    """What the user can fix becomes one line: a UserError, or a full disk met by a writer that did not
    name its file (a library's).  Anything else is a bug and keeps its traceback."""
    from ..store import disk_full_message, is_disk_full

    try:
        yield
    except UserError as e:
        fail(e)
    except OSError as e:
        if not is_disk_full(e):
            raise
        fail(UserError(disk_full_message(e, e.filename, "completed records, chunks and stages are kept")))
