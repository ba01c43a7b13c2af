"""``selfexplain tasks`` and ``selfexplain styles``: what the registries hold."""

from __future__ import annotations

from ..styles import style_names
from ..tasks import task_names
from .app import app, console


@app.command()
def tasks() -> None:
    """List the registered tasks."""
    from rich.table import Table

    from ..tasks import get_task

    table = Table("task", "labels", "explained field", "description")
    for name in task_names():
        t = get_task(name)
        table.add_row(name, ", ".join(t.labels), t.input_name, t.description)
    console.print(table)


@app.command()
def styles() -> None:
    """List the registered explanation styles."""
    from ..styles import get_style

    for name in style_names():
        console.print(f"{name}: {(get_style(name).__doc__ or '').strip()}", highlight=False)
