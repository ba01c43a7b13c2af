"""Training on the faithfulness check itself, beyond the paper: GRPO with the check as the reward, and DPO
on explanation pairs the check ranks (TRL's trainers, a LoRA adapter as in :mod:`selfexplain.training`).

Both start from the chats the evaluator builds (:func:`selfexplain.evaluation.explain_chat`: the
classification turn, the model's own answer, the explanation request), tokenised exactly as the backends
tokenise them (one BOS where the model wants one), not by TRL's own chat rendering, so a prompt trained
on is token for token the prompt evaluated.  The answer in each chat is the prediction of the model
before training.

* **GRPO**: for each prompt the policy samples ``num_generations`` explanations; each is judged by
  :func:`selfexplain.rewards.judge` with the *policy being trained* as the classifier (its current
  weights classify the original and the edited input).  Every judged explanation is written to
  ``rewards.jsonl`` in the run folder with its step.
* **DPO**: the model before training samples ``samples`` explanations per input (seeded, temperature
  above 0); each is judged with that model as the classifier; a valid faithful one (chosen) is paired with
  a valid unfaithful one (rejected).  The sampling is a resumable run of its own inside the training run
  folder; the pair yield (inputs with a pair) is in the summary.

Instruction replay (the paper's 5:1 mixture) does not apply to either: GRPO's data are prompts without
answers, DPO's are pairs; the KL term (GRPO's ``beta``) and the implicit reference model (DPO) keep the
policy near the model it started from instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .rewards import Item, RewardSettings, judge
from .store import ComputeClock, atomic_write
from .training import (
    TrainSettings,
    chat_ids,
    checkpoint_step,
    clock_callback,
    last_complete_checkpoint,
    lora_config,
    report_callbacks,
    run_trainer,
    trainer_arguments,
)

METHODS = ("grpo", "dpo")
PAIR_RULES = ("faithful", "reward")


@dataclass
class RLSettings:
    """What GRPO and DPO add to :class:`~selfexplain.training.TrainSettings` (recorded in the run's configuration)."""

    style: str = "attribution"
    width: str = "one"
    reward: RewardSettings = field(default_factory=RewardSettings)
    temperature: float = 1.0  # sampling temperature of the explanations
    max_completion_length: int = 24  # tokens per sampled explanation
    # GRPO
    num_generations: int = 4  # explanations sampled per prompt (the group)
    beta: float = 0.04  # KL coefficient against the model before training
    # DPO
    samples: int = 4  # explanations sampled per input to find a pair
    dpo_beta: float = 0.1
    # "faithful": a valid faithful explanation over a valid unfaithful one (the binary check);
    # "reward": the sample with the highest reward over the one with the lowest, GRPO's ranking (invalid
    # lowest, then unfaithful, then faithful, plus the graded term), if they differ by pair_margin or more:
    # a model whose valid explanations are rarely faithful still gets pairs (valid over invalid)
    pairs: str = "faithful"
    pair_margin: float = 0.5

    def check(self, method: str, settings: TrainSettings) -> None:
        if method not in METHODS:
            raise UserError(f"unknown training method {method!r}; use sft, {', '.join(METHODS)}")
        if self.temperature <= 0:
            raise UserError("--temperature must be above 0: the explanations are sampled")
        if method == "grpo":
            if self.num_generations < 2:
                raise UserError("--num-generations must be at least 2 (GRPO compares explanations within a group)")
            if settings.batch_size % self.num_generations:
                raise UserError(
                    f"--batch-size ({settings.batch_size}) must be a multiple of --num-generations "
                    f"({self.num_generations}): each step takes whole groups"
                )
        if method == "dpo" and self.samples < 2:
            raise UserError("--samples must be at least 2 (a pair needs two explanations)")
        if self.pairs not in PAIR_RULES:
            raise UserError(f"--dpo-pairs: unknown rule {self.pairs!r}; use {' or '.join(PAIR_RULES)}")
        if self.pair_margin <= 0:
            raise UserError(f"--pair-margin must be above 0, not {self.pair_margin}")

    def sampling(self) -> dict[str, Any]:
        """The settings the sampled explanations depend on (pairing them differently samples nothing anew)."""
        return {k: v for k, v in asdict(self).items() if k not in ("pairs", "pair_margin", "dpo_beta")}


def _decode(tokenizer: Any, ids: list[int], stop: set[int]) -> str:
    """A sampled completion's text as the backends decode a reply: cut at the first end-of-turn token."""
    end = next((k for k, t in enumerate(ids) if t in stop), len(ids))
    return tokenizer.decode(ids[:end], skip_special_tokens=True).strip()


def _policy_backend(model: Any, tokenizer: Any, identity: dict[str, Any]) -> Any:
    """The model as it is now, as a classifier (prompt caches off: the weights change every step)."""
    from .backends.hf import HFBackend

    return HFBackend.from_loaded(model, tokenizer, identity, share_prompts=False)


# ---- GRPO -------------------------------------------------------------------------------------------------


def grpo_train(
    model: Any,
    tokenizer: Any,
    identity: dict[str, Any],
    task: Any,
    examples: list[Any],
    predictions: list[str],
    out_dir: Path,
    settings: TrainSettings,
    rl: RLSettings,
    report_to: str = "none",
    clock: ComputeClock | None = None,
) -> dict[str, Any]:
    """GRPO on the faithfulness reward; resumes from the newest checkpoint in ``out_dir``."""
    import datasets
    from transformers import set_seed
    from trl import GRPOConfig, GRPOTrainer

    from .evaluation import explain_chat
    from .models import stop_token_ids

    stop = stop_token_ids(tokenizer, model.generation_config.eos_token_id)
    model.generation_config.eos_token_id = stop  # TRL stops sampling, and masks completions, at these
    chats = [explain_chat(task, ex, p, rl.style, rl.width) for ex, p in zip(examples, predictions)]
    ds = datasets.Dataset.from_list([{"prompt": chat, "sample": i} for i, chat in enumerate(chats)])
    clock = clock or ComputeClock(out_dir)
    log_path = out_dir / "rewards.jsonl"

    class Trainer(GRPOTrainer):
        def _tokenize_prompts(self, prompts: list) -> tuple[list[list[int]], None, dict]:
            return [chat_ids(tokenizer, p, True) for p in prompts], None, {}

    holder: dict[str, Any] = {}

    def faithfulness(
        prompts: list, completions: list, completion_ids: list, sample: list[int], **kw: Any
    ) -> list[float]:
        trainer = holder["trainer"]
        policy = trainer.accelerator.unwrap_model(trainer.model)
        training = policy.training
        texts = [_decode(tokenizer, list(ids), set(stop)) for ids in completion_ids]
        try:
            judged = judge(
                _policy_backend(policy, tokenizer, identity),
                task,
                [Item(examples[s], rl.style, rl.width, t) for s, t in zip(sample, texts)],
                rl.reward,
            )
        finally:
            policy.train(training)
        valid = [j for j in judged if j.valid]
        if "log_metric" in kw:
            kw["log_metric"]("valid", len(valid) / len(judged))
            kw["log_metric"]("faithful", sum(bool(j.faithful) for j in valid) / max(len(valid), 1))
        if trainer.is_world_process_zero():
            step = trainer.state.global_step
            with log_path.open("a", encoding="utf-8") as fh:
                for s, t, j in zip(sample, texts, judged):
                    fh.write(
                        json.dumps(
                            {"step": step, "sample_id": examples[s].id, "text": t, **j.as_dict()}, ensure_ascii=False
                        )
                        + "\n"
                    )
        return [j.reward for j in judged]

    args = GRPOConfig(
        **trainer_arguments(out_dir, settings, report_to),
        num_generations=rl.num_generations,
        max_completion_length=rl.max_completion_length,
        temperature=rl.temperature,
        beta=rl.beta,
        log_completions=False,
    )
    set_seed(settings.seed)  # LoRA's initial matrices come from torch's global generator
    trainer = Trainer(
        model=model,
        reward_funcs=faithfulness,
        args=args,
        train_dataset=ds,
        processing_class=tokenizer,
        peft_config=lora_config(settings.lora, model),
        callbacks=[clock_callback(clock), *report_callbacks(report_to, out_dir)],
    )
    holder["trainer"] = trainer
    keep_logged_steps(log_path, checkpoint_step(last_complete_checkpoint(out_dir / "checkpoints")))
    return _run(trainer, tokenizer, out_dir, clock, {"prompts": len(chats)})


def keep_logged_steps(log_path: Path, resume_step: int) -> None:
    """Keep only the reward lines of the steps a resumed training will not run again (``step`` below the
    checkpoint's), so a killed run's unsaved steps, or a whole earlier run in the same folder, are not logged
    twice."""
    if not log_path.exists():
        return
    lines = log_path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] < resume_step]
    if len(kept) != len(lines):
        atomic_write(log_path, "".join(kept))


# ---- DPO --------------------------------------------------------------------------------------------------


def sample_seed(seed: int, sample_id: str) -> int:
    """The sampling seed of one input: from the run's seed and the input's stable id."""
    return int(hashlib.sha256(f"{seed}|{sample_id}".encode()).hexdigest()[:8], 16)


def sample_explanations(
    model: Any, tokenizer: Any, chats: list[list[dict[str, str]]], rl: RLSettings, seeds: list[int]
) -> list[list[str]]:
    """``rl.samples`` explanations per chat, sampled at ``rl.temperature``, each chat from its own seed (so
    the texts do not depend on how the chats are batched or resumed)."""
    import torch

    from .models import stop_token_ids

    stop = stop_token_ids(tokenizer, model.generation_config.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop[0]
    out = []
    model.eval()
    for chat, seed in zip(chats, seeds):
        ids = torch.tensor([chat_ids(tokenizer, chat, True)], device=model.device)
        torch.manual_seed(seed)
        with torch.inference_mode():
            gen = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=rl.temperature,
                top_p=1.0,
                top_k=0,
                max_new_tokens=rl.max_completion_length,
                num_return_sequences=rl.samples,
                eos_token_id=stop,
                pad_token_id=pad,
            )
        out.append([_decode(tokenizer, row[ids.shape[1] :].tolist(), set(stop)) for row in gen])
    return out


def preference_pairs(
    judged: list[list[Any]], texts: list[list[str]], rule: str = "faithful", margin: float = 0.5
) -> list[tuple[int, str, str] | None]:
    """Per input: (input index, chosen, rejected) from its judged samples, or None without a pair.

    ``faithful``: chosen is the valid faithful explanation with the highest reward (the first among equals),
    rejected the valid unfaithful one with the lowest.  ``reward``: chosen is the sample with the highest
    reward, rejected the one with the lowest (the first among equals), if their rewards differ by ``margin``
    or more.
    """
    out: list[tuple[int, str, str] | None] = []
    for i, (js, ts) in enumerate(zip(judged, texts)):
        if rule == "reward":
            best = max(range(len(js)), key=lambda k: (js[k].reward, -k))
            worst = min(range(len(js)), key=lambda k: (js[k].reward, k))
            ok = js[best].reward - js[worst].reward >= margin and ts[best] != ts[worst]
            out.append((i, ts[best], ts[worst]) if ok else None)
            continue
        good = [(j.reward, -k) for k, j in enumerate(js) if j.valid and j.faithful]
        bad = [(j.reward, k) for k, j in enumerate(js) if j.valid and j.faithful is False]
        if good and bad:
            out.append((i, ts[-max(good)[1]], ts[min(bad)[1]]))
        else:
            out.append(None)
    return out


def pair_rows(
    tokenizer: Any, chats: list[list[dict[str, str]]], pairs: list[tuple[int, str, str]], max_length: int
) -> list[dict[str, list[int]]]:
    """DPO's token ids, rendered as SFT renders a trained reply (:func:`selfexplain.training.tokenize_chat`)."""
    rows = []
    for i, chosen, rejected in pairs:
        prompt = chat_ids(tokenizer, chats[i], True)
        row = {"prompt_ids": prompt}
        for key, text in (("chosen_ids", chosen), ("rejected_ids", rejected)):
            full = chat_ids(tokenizer, chats[i] + [{"role": "assistant", "content": text}], False)
            if full[: len(prompt)] != prompt:
                raise UserError("the chat template does not render conversations as prefixes of each other")
            row[key] = full[len(prompt) :]
        if len(prompt) + max(len(row["chosen_ids"]), len(row["rejected_ids"])) <= max_length:
            rows.append(row)
    return rows


def dpo_train(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, list[int]]],
    out_dir: Path,
    settings: TrainSettings,
    rl: RLSettings,
    extra: dict[str, Any],
    report_to: str = "none",
    clock: ComputeClock | None = None,
) -> dict[str, Any]:
    """DPO on tokenised pairs; resumes from the newest checkpoint in ``out_dir``."""
    import datasets
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    class Trainer(DPOTrainer):
        def _prepare_dataset(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
            return dataset  # tokenised by pair_rows, as the evaluator tokenises

    clock = clock or ComputeClock(out_dir)
    args = DPOConfig(
        **trainer_arguments(out_dir, settings, report_to), beta=rl.dpo_beta, max_length=settings.max_length
    )
    set_seed(settings.seed)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(settings.lora, model),
        callbacks=[clock_callback(clock), *report_callbacks(report_to, out_dir)],
    )
    return _run(trainer, tokenizer, out_dir, clock, extra)


# ---- both ---------------------------------------------------------------------------------------------------


def _run(trainer: Any, tokenizer: Any, out_dir: Path, clock: ComputeClock, extra: dict[str, Any]) -> dict[str, Any]:
    result, last = run_trainer(trainer, tokenizer, out_dir, clock)
    history = trainer.state.log_history
    curves = {
        k: [h[k] for h in history if k in h] for k in ("loss", "reward", "kl", "rewards/margins", "rewards/accuracies")
    }
    return {
        "resumed_from": last,
        "steps": trainer.state.global_step,
        "train_runtime": result.metrics.get("train_runtime"),
        "losses": curves["loss"],
        "curves": {k: v for k, v in curves.items() if v and k != "loss"},
        **extra,
    }
