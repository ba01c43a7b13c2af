"""``selfexplain train``: SFT (the paper), or GRPO / DPO on the faithfulness check."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Optional

import typer

from ..errors import UserError
from .app import app, console, user_errors
from .options import HUB, MODEL, MODEL_ARGS, OUTPUT, SEED, WAIT, above_zero, count_option, model_args_of


@app.command(
    epilog=(
        "Examples:\n\n"
        "  selfexplain train --data runs/construct-tweets-.../train-attribution.jsonl\n\n"
        "  selfexplain train --data runs/construct-tweets-.../train-attribution.jsonl --baseline predictions\n\n"
        "  accelerate launch --num_processes 8 -m selfexplain.cli train --data train-attribution.jsonl "
        "--model allenai/tulu-2-7b --batch-size 4 --grad-accum 4\n\n"
        "  selfexplain train --method grpo --task tweets --style attribution --limit 300   # beyond the paper\n\n"
        "  selfexplain train --method dpo --task tweets --style attribution --limit 300 --samples 4"
    )
)
def train(
    data: Optional[list[str]] = typer.Option(
        None, help="Training chats (a construct train-STYLE.jsonl); repeatable. The sft method's input."
    ),
    method: str = typer.Option(
        "sft",
        help="sft (the paper: constructed explanations), grpo (RL on the "
        "faithfulness reward) or dpo (pairs the faithfulness check ranks).",
    ),
    task: str = typer.Option("tweets", help="grpo/dpo: the task whose training pool gives the inputs."),
    task_data: Optional[str] = typer.Option(None, help="grpo/dpo: a data file of the task (overrides its default)."),
    hub: bool = HUB,
    style: str = typer.Option("attribution", help="grpo/dpo: the explanation style trained."),
    width: str = typer.Option("one", help="grpo/dpo: one or multi."),
    limit: int = count_option(300, "grpo/dpo: training inputs."),
    num_generations: int = count_option(4, "grpo: explanations sampled per prompt (the group)."),
    samples: int = count_option(4, "dpo: explanations sampled per input to find a faithful/unfaithful pair."),
    temperature: float = above_zero(1.0, "grpo/dpo: sampling temperature."),
    beta: float = typer.Option(0.04, min=0.0, help="grpo: KL coefficient against the model before training."),
    dpo_beta: float = above_zero(0.1, "dpo: preference temperature beta."),
    dpo_pairs: str = typer.Option(
        "faithful",
        help="dpo: faithful (a valid faithful over a valid unfaithful "
        "explanation) or reward (the highest reward over the lowest, GRPO's ranking: "
        "invalid lowest; pairs where faithful ones are rare).",
    ),
    pair_margin: float = above_zero(0.5, "dpo --dpo-pairs reward: the least difference of rewards in a pair."),
    reward_graded: float = typer.Option(
        0.0,
        min=0.0,
        help="grpo/dpo: weight of the probability shift added to the binary reward of a valid explanation.",
    ),
    reward_invalid: float = typer.Option(-1.0, help="grpo/dpo: reward of an invalid explanation (the lowest)."),
    max_completion_length: int = count_option(24, "grpo/dpo: tokens per sampled explanation."),
    report_to: str = typer.Option(
        "none", help="Where the training curves go: none, tensorboard (RUN/tensorboard) or wandb."
    ),
    model: str = MODEL,
    mix: float = typer.Option(0.2, min=0.0, help="Instruction chats per task chat (paper: 10,000 / 50,000 = 0.2)."),
    baseline: Optional[str] = typer.Option(
        None, help="'predictions': train on gold-label answers instead (section 4.1)."
    ),
    replay: Optional[str] = typer.Option(
        None,
        help="Instruction chats: a JSONL file or hub:ID such as hub:allenai/tulu-v2-sft-mixture "
        "(default: chatterbot prompts answered by the base model).",
    ),
    output_path: Path = OUTPUT,
    model_args: Optional[str] = MODEL_ARGS,
    lora_r: int = typer.Option(64, min=1),
    lora_alpha: int = typer.Option(16, min=1),
    lora_dropout: float = typer.Option(0.1, min=0.0, max=1.0),
    target_modules: str = typer.Option("q_proj,k_proj,v_proj,o_proj", help="Comma-separated module names."),
    lr: float = above_zero(1e-4, "Learning rate."),
    epochs: float = above_zero(1.0, "Passes over the data."),
    batch_size: int = count_option(8, "Per-device batch size."),
    grad_accum: int = count_option(1, "Gradient accumulation steps."),
    max_steps: int = count_option(
        -1, "Stop after this many optimiser steps (overrides --epochs; -1: no limit).", minimum=-1
    ),
    save_steps: int = count_option(20, "Checkpoint every N steps (a killed run resumes from the last)."),
    max_length: int = count_option(512, "Longest training sequence in tokens."),
    seed: int = SEED,
    wait: bool = WAIT,
) -> None:
    """LoRA continual learning on constructed explanations mixed with instruction replay (section 3.2);
    or, beyond the paper, GRPO or DPO on the faithfulness check itself."""
    from .. import api
    from ..training import LoraSettings, TrainSettings

    start = time.time()
    settings = TrainSettings(
        learning_rate=lr,
        epochs=epochs,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_steps=max_steps,
        max_length=max_length,
        save_steps=save_steps,
        seed=seed,
        lora=LoraSettings(
            r=lora_r,
            alpha=lora_alpha,
            dropout=lora_dropout,
            target_modules=[m.strip() for m in target_modules.split(",") if m.strip()],
        ),
    )
    with user_errors():
        if method == "sft":
            if not data:
                raise UserError("--method sft trains on constructed chats: give --data train-STYLE.jsonl")
            res = api.train(
                data=data,
                model=model,
                mix_ratio=mix,
                baseline=baseline,
                output_path=output_path,
                model_args=model_args_of(model_args, None),
                settings=settings,
                replay=replay,
                wait=wait,
                report_to=report_to,
            )
        else:
            from ..rewards import RewardSettings
            from ..rl import RLSettings

            if data:
                raise UserError(
                    f"--method {method} samples its own explanations: --data is for sft "
                    "(the task's inputs come from --task / --task-data)"
                )
            try:
                reward = RewardSettings(invalid=reward_invalid, graded=reward_graded)
            except ValueError as e:
                raise UserError(f"--reward-invalid: {e}") from None
            rl = RLSettings(
                style=style,
                width=width,
                reward=reward,
                temperature=temperature,
                max_completion_length=max_completion_length,
                num_generations=num_generations,
                beta=beta,
                samples=samples,
                dpo_beta=dpo_beta,
                pairs=dpo_pairs,
                pair_margin=pair_margin,
            )
            res = api.train_rl(
                method,
                task=task,
                model=model,
                limit=limit,
                seed=seed,
                data=task_data,
                hub=hub,
                output_path=output_path,
                model_args=model_args_of(model_args, None),
                settings=settings,
                rl=rl,
                wait=wait,
                report_to=report_to,
            )
    s = res.summary
    losses = s["losses"]
    if s.get("method") in ("grpo", "dpo"):
        curves = s.get("curves", {})
        curve = curves.get("reward") or curves.get("rewards/margins") or []
        console.print(
            f"{s['method']}: {s['steps']} steps on {s['n_task']} inputs"
            + (f", {s['pairs']} pairs (yield {s['pair_yield']:.2f})" if "pairs" in s else "")
            + (f", reward {curve[0]:.3f} -> {curve[-1]:.3f}" if curve else ""),
            highlight=False,
        )
        console.print(
            f"adapter: {res.adapter}\nuse it: selfexplain evaluate --adapter {shlex.quote(str(res.adapter))}"
            f"\nwall time: {time.time() - start:.0f}s",
            highlight=False,
        )
        return
    console.print(
        f"steps {s['steps']}, {s['n_task']} task + {s['n_replay']} instruction chats, "
        f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, {s['train_samples_per_second']:.2f} samples/s"
        if losses
        else f"steps {s['steps']} (nothing left to train)",
        highlight=False,
    )
    if s.get("cached"):
        console.print("already trained with this data and these settings: nothing to do", highlight=False)
    console.print(
        f"adapter: {res.adapter}\nuse it: selfexplain evaluate --adapter {shlex.quote(str(res.adapter))}\n"
        f"wall time: {time.time() - start:.0f}s",
        highlight=False,
    )
