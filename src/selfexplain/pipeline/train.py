"""The ``train`` command (supervised): LoRA continual learning on constructed explanations mixed with
instruction replay, in a training folder named by its configuration, resumable from checkpoints.
"""

from __future__ import annotations

import json
import random
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from ..backends import Backend, load_backend
from ..errors import UserError
from ..evaluation import chunks
from ..names import model_folder_name
from ..store import RunStore, atomic_write, check_output_path, read_json
from ..tasks import get_task, task_names
from ..training import TrainSettings, check_report_to
from .runs import versions


@dataclass
class TrainResult:
    run_dir: Path
    adapter: Path
    summary: dict[str, Any]


def replay_chats(
    model: str,
    n: int,
    seed: int = 0,
    model_args: dict[str, Any] | None = None,
    output_path: str | Path | None = None,
    chunk_size: int = 16,
    backend_instance: Backend | None = None,
) -> list[dict[str, Any]]:
    """``n`` instruction chats: chatterbot-corpus prompts answered greedily by the base model, cached and resumable."""
    from ..paths import cache_dir
    from ..training import replay_prompts

    if n <= 0:
        return []
    prompts = replay_prompts()
    random.Random(seed).shuffle(prompts)
    if n > len(prompts):
        raise UserError(f"asked for {n} instruction chats; the corpus has {len(prompts)} distinct prompts")
    be = backend_instance or load_backend("hf", model, **(model_args or {}))
    # The answers depend on the model only, so they are shared by every training run of that model.
    # A cache shared by every training of the model: a second trainer waits for the first's answers.
    store = RunStore.open(
        output_path or cache_dir() / "replay",
        "replay",
        {"model": be.identity, "seed": seed, "batch_size": chunk_size},
        wait=True,
    )

    def answer(c: int, part: list[str]) -> list[dict[str, Any]]:
        chats = [[{"role": "user", "content": p}] for p in part]
        gens = be.generate(chats, [160] * len(part))
        return [
            {"messages": chat + [{"role": "assistant", "content": g.text}], "truncated": g.truncated}
            for chat, g in zip(chats, gens)
        ]

    with store:
        records = store.process(chunks(prompts[:n], chunk_size), len, answer)
    return [{"messages": r["messages"]} for r in records[:n]]


def train(
    data: list[str],
    model: str = "embedded",
    mix_ratio: float = 0.2,
    baseline: str | None = None,
    output_path: str | Path = "runs",
    model_args: dict[str, Any] | None = None,
    settings: TrainSettings | None = None,
    replay: str | None = None,
    wait: bool = False,
    report_to: str = "none",
) -> TrainResult:
    """LoRA continual learning on constructed explanations (or, with ``baseline='predictions'``, on gold labels),
    mixed with instruction replay.  A finished training in the same folder is returned as it is; a killed one
    resumes from its last checkpoint.

    Args:
        data: training files (JSONL chats, as :func:`construct` writes them).
        model: the model to train (as in :func:`evaluate`).
        mix_ratio: replay chats per training example (the paper's 5:1 is 0.2).
        baseline: ``predictions`` trains on the ground-truth labels of the same inputs, without explanations.
        output_path: folder that receives the training folder.
        model_args: ``revision``, ``dtype``, ``device``, ``trust_remote_code`` or ``adapter`` (continue one).
        settings: LoRA and optimiser settings (:class:`~selfexplain.training.TrainSettings`).
        replay: a JSONL file of instruction chats (default: generated once by the model itself and cached).
        wait: if another process holds the training folder, wait for it instead of failing.
        report_to: an experiment tracker, as transformers' ``report_to`` (``none`` by default).

    Returns:
        The training folder, its adapter folder and the training summary.

    Raises:
        UserError: a bad file, model argument or evaluation-only task's data, in one line.
    """
    from ..training import train_lora

    settings = settings or TrainSettings()
    check_report_to(report_to)
    check_output_path(output_path)
    setup = _train_setup(data, model, mix_ratio, baseline, model_args, settings, replay)
    with training_run(output_path, setup.prefix, setup.config, wait) as run:
        if run.cached is None:
            summary = train_lora(setup.model, setup.tokenizer, setup.rows, run.path, settings, report_to=report_to)
            run.finish(
                {
                    **summary,
                    "n_task": setup.config["n_task"],
                    "n_replay": setup.config["n_replay"],
                    "baseline": baseline,
                    "data": data,
                }
            )
    return run.outcome()


def train_folder(
    data: list[str],
    model: str = "embedded",
    mix_ratio: float = 0.2,
    baseline: str | None = None,
    output_path: str | Path = "runs",
    model_args: dict[str, Any] | None = None,
    settings: TrainSettings | None = None,
    replay: str | None = None,
) -> Path:
    """The run folder :func:`train` would train in for these arguments; loads the model and the replay answers
    (they are part of the run's identity) and trains nothing."""
    check_output_path(output_path)
    setup = _train_setup(data, model, mix_ratio, baseline, model_args, settings or TrainSettings(), replay)
    return RunStore.folder(output_path, setup.prefix, setup.config)


def check_train_model_args(model_args: dict[str, Any] | None) -> None:
    unknown = set(model_args or {}) - {"revision", "dtype", "device", "trust_remote_code", "adapter"}
    if unknown:
        raise UserError(f"--model-args: unknown key(s) {', '.join(sorted(unknown))} for train")


@dataclass
class _TrainSetup:
    model: Any
    tokenizer: Any
    rows: list[dict[str, Any]]
    config: dict[str, Any]
    prefix: str


def _train_setup(
    data: list[str],
    model: str,
    mix_ratio: float,
    baseline: str | None,
    model_args: dict[str, Any] | None,
    settings: TrainSettings,
    replay: str | None,
) -> _TrainSetup:
    """:func:`train`'s checked inputs, the loaded model and the mixed rows, and the run's identity."""
    from accelerate import PartialState

    from ..models import load_model
    from ..training import data_fingerprint, mix, prediction_chats, read_chats

    if baseline not in (None, "predictions"):
        raise UserError(f"unknown baseline {baseline!r}; use 'predictions'")
    if mix_ratio < 0:
        raise UserError("--mix must be >= 0")
    task_rows = [row for f in data for row in read_chats(f)]
    for name in {row["task"] for row in task_rows if "task" in row}:
        if name in task_names() and not get_task(name).training_allowed:
            raise UserError(f"training data of task {name} is not allowed (its licence is evaluation-only)")
    if baseline == "predictions":
        task_rows = prediction_chats(task_rows)
    n_replay = round(len(task_rows) * mix_ratio)
    check_train_model_args(model_args)
    model_obj, tokenizer, identity = load_model(model, **(model_args or {}))
    state = PartialState()
    # Replay answers are generated once, by the main process, with the model about
    # to be trained (not a second copy); the other processes read the cache.
    with state.main_process_first():
        if replay:
            replay_rows = read_chats(replay)
        else:
            from ..backends.hf import HFBackend

            replay_rows = replay_chats(
                model, n_replay, settings.seed, backend_instance=HFBackend.from_loaded(model_obj, tokenizer, identity)
            )
    rows = mix(task_rows, replay_rows, mix_ratio, settings.seed)
    config = {
        "command": "train",
        "model": identity,
        "data": data_fingerprint(rows),
        "n_task": len(task_rows),
        "n_replay": n_replay,
        "baseline": baseline,
        "settings": asdict(settings),
        "versions": versions(),
    }
    return _TrainSetup(model_obj, tokenizer, rows, config, f"train-{model_folder_name(identity)}")


@dataclass
class TrainingRun:
    path: Path
    cached: TrainResult | None  # the finished training found in the folder
    main: bool
    result: TrainResult | None = None

    def finish(self, summary: dict[str, Any]) -> None:
        if self.main:
            atomic_write(
                self.path / "train_summary.json", json.dumps(summary, indent=2) + "\n", kept="the adapter is saved"
            )
        self.result = TrainResult(self.path, self.path / "adapter", summary)

    def outcome(self) -> TrainResult:
        """The finished training: the one found in the folder, else the one :meth:`finish` recorded."""
        found = self.cached or self.result
        if found is None:
            raise RuntimeError(f"{self.path}: training ended without a result")
        return found


@contextmanager
def training_run(output_path: str | Path, prefix: str, config: dict[str, Any], wait: bool) -> Iterator[TrainingRun]:
    """A training run folder, held by the main process (the others of an ``accelerate launch`` train beside it);
    a training already finished there comes back as ``cached``."""
    from accelerate import PartialState

    state = PartialState()
    with RunStore.open(output_path, prefix, config, wait=wait) if state.is_main_process else nullcontext():
        state.wait_for_everyone()
        run_dir = RunStore.folder(output_path, prefix, config)
        done = run_dir / "train_summary.json"
        cached = (
            TrainResult(run_dir, run_dir / "adapter", {**read_json(done), "cached": True})
            if done.exists() and (run_dir / "adapter").is_dir()
            else None
        )
        yield TrainingRun(run_dir, cached, state.is_main_process)
