"""``train --method grpo|dpo``: training on the faithfulness check itself (beyond the paper)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import styles as S
from ..errors import NothingToTrain, UserError
from ..evaluation import chunks, classify
from ..names import model_folder_name
from ..store import ComputeClock, RunStore, check_output_path
from ..tasks import TaskSpec, get_task
from ..tasks.data import Example
from ..training import TrainSettings, check_report_to
from .runs import chunk_size_from, data_config, sample_examples, versions
from .train import TrainResult, check_train_model_args, training_run


def train_rl(
    method: str,
    task: str = "sentiment140",
    model: str = "embedded",
    limit: int = 300,
    seed: int = 0,
    data: str | None = None,
    hub: bool = False,
    output_path: str | Path = "runs",
    model_args: dict[str, Any] | None = None,
    settings: TrainSettings | None = None,
    rl: Any = None,
    chunk_size: int = 16,
    wait: bool = False,
    report_to: str = "none",
    batch_size: int | None = None,
) -> TrainResult:
    """GRPO or DPO on the faithfulness check (:mod:`selfexplain.rl`), on ``limit`` inputs of the training pool.

    Args:
        method: ``grpo`` or ``dpo``.
        task, model, limit, seed, data, hub, output_path, model_args, wait, report_to: as in :func:`evaluate`
            and :func:`train`.
        settings: LoRA and optimiser settings.
        rl: the method's settings (:class:`~selfexplain.rl.RLSettings`: samples per prompt, style, reward).
        chunk_size: DPO's sampling chunk (a killed sampling resumes chunk by chunk).
        batch_size: the former name of ``chunk_size`` (deprecated; the training batch is ``settings.batch_size``).

    Returns:
        The training folder, its adapter folder and the training summary.

    Raises:
        UserError: an unknown method, an evaluation-only task or a bad argument, in one line.
        NothingToTrain: no input gives a usable reward signal (the study skips the route and says so).
    """
    from accelerate import PartialState

    from ..backends.hf import HFBackend
    from ..evaluation import explain_chat
    from ..rewards import Item, Judgement, judge
    from ..rl import RLSettings, dpo_train, grpo_train, pair_rows, preference_pairs, sample_explanations, sample_seed

    settings = settings or TrainSettings()
    rl = rl or RLSettings()
    chunk_size = chunk_size_from(chunk_size, batch_size)
    check_report_to(report_to)
    spec, examples, model_obj, tokenizer, identity, config = _rl_setup(
        method, task, model, limit, seed, data, hub, output_path, model_args, settings, rl
    )
    state = PartialState()
    with training_run(output_path, _rl_prefix(method, identity), config, wait) as run:
        if run.cached is not None:
            return run.cached
        run_dir = run.path
        clock = ComputeClock(run_dir)  # DPO's sampling counts too
        # The answers in the chats: the model's own, before training (only when there is training to do).
        before = HFBackend.from_loaded(model_obj, tokenizer, identity)
        predictions = [p.label for p in classify(before, spec, [(ex.text, ex.context) for ex in examples])]
        extra = {"method": method, "n_task": len(examples), "n_replay": 0, "task": spec.name}
        if method == "grpo":
            summary = grpo_train(
                model_obj, tokenizer, identity, spec, examples, predictions, run_dir, settings, rl, report_to, clock
            )
            summary.update(extra)
        else:
            chats = [explain_chat(spec, ex, p, rl.style, rl.width) for ex, p in zip(examples, predictions)]

            def sample(c: int, part: list[int]) -> list[dict[str, Any]]:
                texts = sample_explanations(
                    model_obj,
                    tokenizer,
                    [chats[i] for i in part],
                    rl,
                    [sample_seed(seed, examples[i].id) for i in part],
                )
                judged = judge(
                    before,
                    spec,
                    [Item(examples[i], rl.style, rl.width, t) for i, ts in zip(part, texts) for t in ts],
                    rl.reward,
                )
                out, k = [], 0
                for i, ts in zip(part, texts):
                    out.append(
                        {
                            "sample_id": examples[i].id,
                            "index": i,
                            "texts": ts,
                            "judged": [j.as_dict() for j in judged[k : k + len(ts)]],
                        }
                    )
                    k += len(ts)
                return out

            with state.main_process_first():
                with RunStore.open(
                    run_dir, "samples", {"rl": rl.sampling(), "seed": seed, "data": config["data"]}
                ) as s_store:
                    records = s_store.process(chunks(list(range(len(examples))), chunk_size), len, sample)
            if run.main:
                clock.save()
            judged = [[Judgement(**j) for j in r["judged"]] for r in records]
            pairs = [
                p
                for p in preference_pairs(judged, [r["texts"] for r in records], rl.pairs, rl.pair_margin)
                if p is not None
            ]
            if not pairs:
                wanted = (
                    "both a valid faithful and a valid unfaithful explanation"
                    if rl.pairs == "faithful"
                    else f"two explanations whose rewards differ by {rl.pair_margin} or more"
                )
                hint = " or --dpo-pairs reward" if rl.pairs == "faithful" else ""
                raise NothingToTrain(
                    f"{run_dir}: no input had {wanted} among {rl.samples} samples: nothing to "
                    f"train on (raise --samples or --temperature{hint})"
                )
            rows = pair_rows(tokenizer, chats, pairs, settings.max_length)
            extra.update(
                pairs=len(pairs),
                pair_yield=len(pairs) / len(examples),
                valid_share=sum(j.valid for js in judged for j in js) / sum(len(js) for js in judged),
            )
            summary = dpo_train(model_obj, tokenizer, rows, run_dir, settings, rl, extra, report_to, clock)
        run.finish(summary)
    return run.outcome()


def train_rl_folder(
    method: str,
    task: str = "sentiment140",
    model: str = "embedded",
    limit: int = 300,
    seed: int = 0,
    data: str | None = None,
    hub: bool = False,
    output_path: str | Path = "runs",
    model_args: dict[str, Any] | None = None,
    settings: TrainSettings | None = None,
    rl: Any = None,
) -> Path:
    """The run folder :func:`train_rl` would train in for these arguments (loads the model, trains nothing)."""
    from ..rl import RLSettings

    *_, identity, config = _rl_setup(
        method,
        task,
        model,
        limit,
        seed,
        data,
        hub,
        output_path,
        model_args,
        settings or TrainSettings(),
        rl or RLSettings(),
    )
    return RunStore.folder(output_path, _rl_prefix(method, identity), config)


def _rl_prefix(method: str, identity: dict[str, Any]) -> str:
    return f"train-{method}-{model_folder_name(identity)}"


def _rl_setup(
    method: str,
    task: str,
    model: str,
    limit: int,
    seed: int,
    data: str | None,
    hub: bool,
    output_path: str | Path,
    model_args: dict[str, Any] | None,
    settings: TrainSettings,
    rl: Any,
) -> tuple[TaskSpec, list[Example], Any, Any, dict[str, Any], dict[str, Any]]:
    """:func:`train_rl`'s checked inputs, its examples, the loaded model and the run's identity."""
    from ..models import load_model

    rl.check(method, settings)
    spec = get_task(task)
    if not spec.training_allowed:
        raise UserError(f"task {spec.name} is evaluation-only (its licence forbids training on it)")
    S.get_style(rl.style)
    if rl.width not in S.WIDTHS:
        raise UserError(f"unknown width {rl.width!r}; use one of {', '.join(S.WIDTHS)}")
    check_output_path(output_path)
    check_train_model_args(model_args)
    examples = sample_examples(spec, limit, seed, data, hub, "train")
    model_obj, tokenizer, identity = load_model(model, **(model_args or {}))
    data_cfg = {
        **data_config(data, hub, "train", seed, limit),
        "samples_sha256": hashlib.sha256("\n".join(e.id for e in examples).encode()).hexdigest(),
    }
    config = {
        "command": "train",
        "method": method,
        "model": identity,
        "task": spec.name,
        "data": data_cfg,
        "settings": asdict(settings),
        "rl": asdict(rl),
        "versions": versions(),
    }
    return spec, examples, model_obj, tokenizer, identity, config
