"""Options shared by the commands (lm-evaluation-harness's flag vocabulary, hyphenated), with their ranges
declared so a bad value is refused before anything loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..backends import describe_backends
from ..tasks import task_names
from .app import err

INFLUENCE_HELP = (
    "Which p picks w*: normalised (over the task's labels, the default) or raw "
    "(p(prediction | prompt), the paper's equation 1)."
)
# Options shared by every command that runs a model.
MODEL = typer.Option("embedded", help="'embedded[:NAME]', a .gguf file, a model folder, or a hub id.")
TASK = typer.Option(
    "tweets",
    help=f"A registered task ({', '.join(task_names())}; `selfexplain tasks` describes them) or a task .yaml file.",
)
MODEL_ARGS = typer.Option(
    None,
    help="Backend options key=value,...: revision, dtype, device, trust_remote_code; batching (hf): "
    "max_batch_size, max_batch_tokens, decode_rows, static_cache (planned from the device when not given).",
)
OUTPUT = typer.Option(Path("runs"), help="Folder that receives the run folder.")
DATA = typer.Option(None, help="Data file in the task's canonical format (overrides the default).")
HUB = typer.Option(False, "--hub", help="Load the task's data set from the Hugging Face hub.")
ADAPTER = typer.Option(None, help="LoRA adapter folder from `selfexplain train` (merged into the model).")
BACKEND = typer.Option("hf", help=f"Inference backend: {describe_backends()}.")
BACKEND_ARGS = typer.Option(
    None,
    help="Engine options key=value,... passed to the backend as they are, e.g. for vllm "
    "tensor_parallel_size=4,distributed_executor_backend=ray,gpu_memory_utilization=0.8.",
)


def count_option(default: int, help: str, minimum: int = 1):
    """A count option (limit, batch size, samples, steps): its range is declared, so a bad value is refused
    before anything loads."""
    return typer.Option(default, min=minimum, help=help)


def _positive(value: float) -> float:
    if value <= 0:
        raise typer.BadParameter(f"{value} is not above 0")
    return value


def above_zero(default: float, help: str = ""):
    """A quantity that must be above 0 (learning rate, epochs)."""
    return typer.Option(default, callback=_positive, help=help)


SEED = typer.Option(0, min=0, help="Seed of the class-balanced sampling (and of training).")

# --batch-size meant the chunk size on these commands; it now means only the training batch (train).
FORMER_BATCH_SIZE = typer.Option(None, "--batch-size", min=1, hidden=True, help="Former name of --chunk-size.")


def chunk_of(chunk_size: int, former: Optional[int]) -> int:
    if former is None:
        return chunk_size
    err.print(
        "--batch-size is now --chunk-size here (samples per chunk); --batch-size names the training batch "
        "of `selfexplain train`",
        highlight=False,
    )
    return former


WAIT = typer.Option(
    False,
    "--wait",
    help="If another process is writing the same run folder (or study), wait for "
    "it and then reuse its results, instead of stopping with exit status 75.",
)


def model_args_of(text: Optional[str], adapter: Optional[str], backend_args: Optional[str] = None) -> dict:
    from ..backends import parse_model_args

    args = {**parse_model_args(text), **parse_model_args(backend_args)}
    if adapter:
        args["adapter"] = adapter
    return args
