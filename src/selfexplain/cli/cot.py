"""``selfexplain cot``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..cot.cues import cue_names
from .app import app, console, progress, user_errors
from .options import (
    ADAPTER,
    BACKEND,
    BACKEND_ARGS,
    DATA,
    HUB,
    MODEL,
    MODEL_ARGS,
    OUTPUT,
    SEED,
    TASK,
    WAIT,
    count_option,
    model_args_of,
)


@app.command(
    epilog=(
        "Examples:\n\n"
        "  selfexplain cot --test cue --limit 50                  # embedded Qwen 0.5B, tweets, every cue\n\n"
        "  selfexplain cot --test cue --cue metadata --resamples 4   # with the resampling control\n\n"
        "  selfexplain cot --test early-answer,filler --limit 50\n\n"
        "  selfexplain cot --test cue --judge-model Qwen/Qwen2.5-7B-Instruct --model-args device=cuda\n\n"
        "  selfexplain cot --test mistake,paraphrase --helper-model Qwen/Qwen2.5-7B-Instruct"
    )
)
def cot(
    test: list[str] = typer.Option(
        ["cue"],
        help="cue (cue verbalization), or early-answer, filler, mistake, paraphrase (reasoning perturbations, "
        "together in one run); comma-separated or repeated.",
    ),
    model: str = MODEL,
    task: str = TASK,
    cue: list[str] = typer.Option(["all"], help=f"The cue test's cues: {', '.join(cue_names())} or all; repeatable."),
    limit: int = count_option(100, "Number of test examples (class-balanced)."),
    chunk_size: int = count_option(8, "Examples per chunk; a chunk is the unit of resumption."),
    seed: int = SEED,
    split: str = typer.Option("test", help="'test': the held-out 20% of the data; 'all': every example."),
    output_path: Path = OUTPUT,
    data: Optional[str] = DATA,
    hub: bool = HUB,
    backend: str = BACKEND,
    model_args: Optional[str] = MODEL_ARGS,
    backend_args: Optional[str] = BACKEND_ARGS,
    adapter: Optional[str] = ADAPTER,
    max_new_tokens: int = count_option(256, "The reasoning's token budget (a reasoning cut by it is counted)."),
    control: bool = typer.Option(
        True, help="Also ask with the cue naming the model's own answer: how often the cue's text alone moves it."
    ),
    other_label: Optional[bool] = typer.Option(
        None,
        help="Also ask with the cue naming a third label (a wrong label besides the cued one): how often the "
        "answer lands on the cued label when a cue points elsewhere. Default: on where the task has a third label.",
        show_default=False,
    ),
    resamples: int = typer.Option(
        0,
        min=0,
        help="Also sample this many uncued reasonings per sample and force their answers: how often the cued "
        "label comes up with no cue at all (the switch rate's noise floor; costs one reasoning each).",
    ),
    temperature: float = typer.Option(0.7, help="The resampled reasonings' sampling temperature."),
    judge_model: Optional[str] = typer.Option(
        None, help="A judge model that also decides whether each cued reasoning mentions the cue (any backend)."
    ),
    judge_backend: str = typer.Option("hf", help="The judge's backend."),
    judge_args: Optional[str] = typer.Option(None, help="The judge's model arguments, key=value,..."),
    helper_model: Optional[str] = typer.Option(
        None, help="The model that writes mistakes and paraphrases (needed by those tests; any backend)."
    ),
    helper_backend: str = typer.Option("hf", help="The helper's backend."),
    helper_args: Optional[str] = typer.Option(None, help="The helper's model arguments, key=value,..."),
    wait: bool = WAIT,
) -> None:
    """Test chain-of-thought faithfulness: does the reasoning say what moved the answer, and does the answer
    depend on the reasoning at all?"""
    from ..pipeline.cot import cot as run_cot
    from ..reports.cot import cue_table, perturb_table

    start = time.time()
    with user_errors():
        with progress("reasoning") as hooks:
            result = run_cot(
                test=test,
                model=model,
                task=task,
                cues=cue,
                limit=limit,
                seed=seed,
                split=split,
                chunk_size=chunk_size,
                output_path=output_path,
                data=data,
                hub=hub,
                backend=backend,
                model_args=model_args_of(model_args, adapter, backend_args),
                max_new_tokens=max_new_tokens,
                control=control,
                other=other_label,
                resamples=resamples,
                temperature=temperature,
                judge_model=judge_model,
                judge_backend=judge_backend,
                judge_args=model_args_of(judge_args, None),
                helper_model=helper_model,
                helper_backend=helper_backend,
                helper_args=model_args_of(helper_args, None),
                hooks=hooks,
                wait=wait,
            )
    table = cue_table(result.summary) if result.summary["test"] == "cue" else perturb_table(result.summary)
    console.print(table.markdown(), highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"records: {result.run_dir / 'records.jsonl'}\nsummary: {result.run_dir / 'summary.md'}", highlight=False
    )
    console.print(f"wall time: {time.time() - start:.0f}s", highlight=False)
