"""LoRA continual learning on explanation data (paper section 3.2, appendix C).

The training set mixes chats of two kinds:

* task chats from ``construct`` (table 2 template): the loss is computed only
  on the final assistant turn, the explanation; for the "w/ predictions"
  baseline (section 4.1) the chat is the classification question answered with
  the gold label, and the loss is on that answer;
* instruction chats that keep the model's general behaviour (replay): the loss
  is on every assistant turn.  Offline, prompts from ``chatterbot-corpus`` are
  answered by the *base model itself* and cached, so mixing them in rehearses
  the model's own behaviour instead of teaching a new one.  Online, a hub SFT
  mixture (Tulu v2) can be used instead.

Training runs on ``transformers.Trainer`` with a ``peft`` LoRA adapter, so
checkpoints, resumption and ``accelerate launch`` (several processes or GPUs)
come from those libraries.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .paths import package_dir
from .store import ComputeClock, DiskFull, disk_full_message, is_disk_full
from .tasks.data import read_jsonl

IGNORE = -100


@dataclass
class LoraSettings:
    """Appendix C defaults (Tulu-2's LoRA recipe)."""

    r: int = 64
    alpha: int = 16
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


@dataclass
class TrainSettings:
    learning_rate: float = 1e-4
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = -1  # >0 overrides epochs (for smoke runs)
    warmup_ratio: float = 0.03
    max_length: int = 512
    save_steps: int = 20
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)


# ---- loss masks --------------------------------------------------------------


def tokenize_chat(
    tokenizer: Any, messages: list[dict[str, str]], train_on: str, max_length: int
) -> dict[str, list[int]]:
    """Token ids and labels; labels are IGNORE except on the trained assistant turns.

    ``train_on`` is ``"last"`` (only the final assistant turn) or ``"assistant"``
    (every assistant turn).  Turn boundaries come from rendering the chat
    template on prefixes of the conversation, so any template works.
    """
    if not messages or messages[-1]["role"] != "assistant":
        raise UserError("a training chat must end with an assistant turn")
    full = chat_ids(tokenizer, messages, False)
    labels = [IGNORE] * len(full)
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if train_on == "last":
        turns = turns[-1:]
    for i in turns:
        prefix = chat_ids(tokenizer, messages[:i], True)
        end = len(chat_ids(tokenizer, messages[: i + 1], False))
        if full[: len(prefix)] != prefix:
            raise UserError("the chat template does not render conversations as prefixes of each other")
        labels[len(prefix) : end] = full[len(prefix) : end]
    full, labels = full[:max_length], labels[:max_length]
    return {"input_ids": full, "attention_mask": [1] * len(full), "labels": labels}


def chat_ids(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    """The token ids of a chat as the backends encode it (one BOS where the model wants one); with
    ``generation_prompt``, the assistant turn opened (what a model continues)."""
    from .models import encode_prompt

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    return encode_prompt(tokenizer, text)[1]


# ---- data --------------------------------------------------------------------

HUB_PREFIX = "hub:"


def _hub_rows(dataset_id: str):
    """Rows of a hub chat data set with a ``messages`` column (``hub:allenai/tulu-v2-sft-mixture``)."""
    from .tasks.data import load_hub_dataset

    ds = load_hub_dataset(dataset_id, None, "train")
    for i, row in enumerate(ds):
        yield f"{HUB_PREFIX}{dataset_id} row {i}", row


def read_chats(path: str | Path) -> list[dict[str, Any]]:
    """Chats from a ``construct`` JSONL file (or any JSONL with a ``messages`` list), or ``hub:ID``."""
    if str(path).startswith(HUB_PREFIX):
        rows = _hub_rows(str(path)[len(HUB_PREFIX) :])
        p = Path(str(path))
    else:
        p = Path(path)
        if not p.exists():
            raise UserError(f"{p}: file not found")
        if p.is_dir():
            raise UserError(f"{p}: a folder; --data takes a JSONL file of chats (as construct writes)")
        rows = read_jsonl(p)
    out = []
    for where, row in rows:
        msgs = row.get("messages")
        if (
            not isinstance(msgs, list)
            or not msgs
            or not all(
                isinstance(m, dict)
                and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)
                for m in msgs
            )
        ):
            raise UserError(f"{where}: field 'messages' must be a list of {{role, content}} turns")
        out.append(row)
    if not out:
        raise UserError(f"{p}: no training chats")
    return out


def prediction_chats(explanation_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The "w/ predictions" baseline: the classification turn answered with the gold label."""
    out = []
    for row in explanation_rows:
        if "gold" not in row:
            raise UserError("a predictions baseline needs rows with a 'gold' label (as construct writes)")
        out.append({"messages": [row["messages"][0], {"role": "assistant", "content": row["gold"]}]})
    return out


def replay_prompts() -> list[str]:
    """Distinct first utterances of the chatterbot-corpus English conversations (BSD)."""
    root = package_dir("chatterbot_corpus")
    if root is None:
        raise UserError(
            "instruction replay needs the 'chatterbot-corpus' package (pip install --no-deps chatterbot-corpus)"
        )
    return list(_first_utterances(root / "data" / "english"))


@functools.lru_cache(maxsize=None)
def _first_utterances(folder: Path) -> tuple[str, ...]:
    # Parsed once per process (an installed package's files): its 24 YAML files took 0.8 s per training.
    import yaml

    prompts: dict[str, None] = {}
    for f in sorted(folder.glob("*.yml")):
        data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        for conv in data.get("conversations", []):
            if conv and isinstance(conv[0], str) and conv[0].strip():
                prompts.setdefault(conv[0].strip(), None)
    return tuple(prompts)


def mix(
    task_rows: list[dict[str, Any]], replay_rows: list[dict[str, Any]], ratio: float, seed: int
) -> list[dict[str, Any]]:
    """Task chats plus ``ratio`` x as many replay chats (paper: 10k per 50k = 0.2), shuffled."""
    rng = random.Random(seed)
    k = round(len(task_rows) * ratio)
    if k > len(replay_rows):
        raise UserError(f"--mix {ratio} needs {k} instruction chats but only {len(replay_rows)} are available")
    rows = [{**r, "train_on": "last"} for r in task_rows]
    rows += [{**r, "train_on": "assistant"} for r in rng.sample(replay_rows, k)]
    rng.shuffle(rows)
    return rows


def data_fingerprint(rows: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps([r["messages"], r["train_on"]], sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


# ---- training ----------------------------------------------------------------

_STEP = re.compile(r"^checkpoint-(\d+)$")
# How a full disk (ENOSPC 28, EFBIG 27, EDQUOT 122) surfaces from the writers a checkpoint uses: Python
# raises OSError; safetensors a SafetensorError naming the OS error; torch.save a RuntimeError from its
# zip writer, which names no errno at all ("unexpected pos", "file write failed").
_WRITE_FAILED = re.compile(
    r"os error (28|27|122)\b|No space left|File too large|quota exceeded|"
    r"file write failed|inline_container\.cc.*unexpected pos",
    re.IGNORECASE,
)


def _write_failed(e: BaseException) -> bool:
    return is_disk_full(e) or (not isinstance(e, OSError) and bool(_WRITE_FAILED.search(str(e))))


def checkpoint_step(checkpoint: str | None) -> int:
    """The global step a checkpoint folder (``checkpoint-N``) holds; 0 for None (training starts afresh)."""
    if checkpoint is None:
        return 0
    m = _STEP.match(Path(checkpoint).name)
    if not m:
        raise ValueError(f"{checkpoint}: not a checkpoint-N folder")
    return int(m.group(1))


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint the Trainer finished writing; unfinished ones are removed.

    ``transformers`` resumes from the highest-numbered ``checkpoint-N`` folder, finished or not, so a
    kill or a full disk during a save would make every later resume fail.  The Trainer writes
    ``trainer_state.json`` last: a checkpoint whose state file parses is complete.
    """
    if not folder.is_dir():
        return None
    complete: list[tuple[int, Path]] = []
    for ckpt in folder.iterdir():
        m = _STEP.match(ckpt.name)
        if not (m and ckpt.is_dir()):
            continue
        try:
            json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
            complete.append((int(m.group(1)), ckpt))
        except (OSError, ValueError):
            shutil.rmtree(ckpt, ignore_errors=True)
    return str(max(complete)[1]) if complete else None


REPORT_TO = ("none", "tensorboard", "wandb")


def check_report_to(report_to: str) -> None:
    """A known logger whose package is installed (checked before any model loads)."""
    import importlib.util

    if report_to not in REPORT_TO:
        raise UserError(f"--report-to {report_to!r}: use one of {', '.join(REPORT_TO)}")
    package = {"tensorboard": "tensorboard", "wandb": "wandb"}.get(report_to)
    if package and importlib.util.find_spec(package) is None:
        raise UserError(f"--report-to {report_to} needs the {package} package: pip install {package}")


def report_callbacks(report_to: str, out_dir: Path) -> list[Any]:
    """The loggers that receive the training curves (loss; GRPO's rewards and KL; DPO's margins).

    TensorBoard writes to ``RUN/tensorboard``; wandb reads its project and key from its own environment
    variables.  Neither is part of the run's identity: they do not change what is trained.
    """
    check_report_to(report_to)
    if report_to != "tensorboard":
        return []  # wandb: the Trainer's own callback (trainer_arguments' report_to)
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    return [TensorBoardCallback(SummaryWriter(log_dir=str(out_dir / "tensorboard")))]


def trainer_arguments(out_dir: Path, settings: TrainSettings, report_to: str = "none") -> dict[str, Any]:
    """The Trainer arguments every training route shares (SFT here, GRPO and DPO in :mod:`selfexplain.rl`)."""
    import torch

    cuda = torch.cuda.is_available()
    return dict(
        output_dir=str(out_dir / "checkpoints"),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a ratio of the total steps
        lr_scheduler_type="linear",
        logging_steps=1,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        data_seed=settings.seed,
        report_to=["wandb"] if report_to == "wandb" else "none",  # TensorBoard: report_callbacks
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
    )


def clock_callback(clock: ComputeClock) -> Any:
    """A Trainer callback that saves the run's compute time with every checkpoint (what a kill loses after
    one is trained again)."""
    from transformers import TrainerCallback

    class _Clock(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                clock.save()

    return _Clock()


def lora_config(lora: LoraSettings, model: Any) -> Any:
    """peft's configuration for ``lora``, after checking that ``model`` has the modules it targets."""
    from peft import LoraConfig

    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in present]
    if missing:
        raise UserError(f"LoRA target modules {missing} are not in this model (it has e.g. {sorted(present)[:8]})")
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def run_trainer(trainer: Any, tokenizer: Any, out_dir: Path, clock: ComputeClock) -> tuple[Any, str | None]:
    """Train from the newest complete checkpoint in ``out_dir``, save the adapter; (the Trainer's result, the
    checkpoint it resumed from).  A write that fails (a full disk) is one line saying where training resumes."""
    last = last_complete_checkpoint(out_dir / "checkpoints")
    try:
        result = trainer.train(resume_from_checkpoint=last)
        if trainer.is_world_process_zero():
            trainer.model.save_pretrained(out_dir / "adapter")
            tokenizer.save_pretrained(out_dir / "adapter")
            clock.save()
    except Exception as e:
        if not _write_failed(e):
            raise
        kept = last_complete_checkpoint(out_dir / "checkpoints")
        raise DiskFull(
            disk_full_message(
                e if isinstance(e, OSError) else OSError(28, "a checkpoint or the adapter could not be written"),
                out_dir,
                f"training resumes from {Path(kept).name if kept else 'the start (no checkpoint was complete)'}",
            )
        ) from None
    return result, last


def train_lora(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    out_dir: Path,
    settings: TrainSettings,
    callbacks: list[Any] | None = None,
    report_to: str = "none",
) -> dict[str, Any]:
    """Train a LoRA adapter with ``transformers.Trainer``; resumes from the newest checkpoint in ``out_dir``."""
    import datasets
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    clock = ComputeClock(out_dir)

    # LoRA's A matrices are drawn from torch's global generator when the adapter is made: seed it
    # first, or the same command trains a different adapter in every process.
    set_seed(settings.seed)
    model = get_peft_model(model, lora_config(settings.lora, model))
    ds = datasets.Dataset.from_list([{"messages": r["messages"], "train_on": r["train_on"]} for r in rows])
    ds = ds.map(
        lambda r: tokenize_chat(tokenizer, r["messages"], r["train_on"], settings.max_length),
        remove_columns=ds.column_names,
    )
    args = TrainingArguments(**trainer_arguments(out_dir, settings, report_to))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE),
        callbacks=[*(callbacks or []), clock_callback(clock), *report_callbacks(report_to, out_dir)],
    )
    result, last = run_trainer(trainer, tokenizer, out_dir, clock)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "resumed_from": last,
        "steps": trainer.state.global_step,
        "train_runtime": result.metrics.get("train_runtime"),
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "losses": losses,
        "settings": asdict(settings),
    }
