"""``reproduce --smoke``: an experiment shrunk to a few synthetic examples and a tiny stand-in model, to check
every stage runs in seconds.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from ..errors import UserError
from ..layout import NONE
from .config import Experiment

SMOKE_MODEL = "standin:tulu-tiny"  # Tulu-2's shape (Llama, BOS, Tulu template); outputs mean nothing


SMOKE_TOKENS = 16


SMOKE_DIR = "smoke"  # presets/smoke/: a few synthetic examples per task in its canonical file format


def smoke_data(task: str) -> str:
    """The bundled toy file of a task in its canonical format (the task's own data if it ships in a package)."""
    from ..tasks import get_task

    spec = get_task(task)
    if spec.source.package:
        return ""  # installed with selfexplain (tweets): the real data, read locally
    suffix = {"csv": ".csv", "jsonl": ".jsonl", "json": ".json", "bigbench": ".json", "bigbench-choice": ".json"}[
        spec.source.format
    ]
    path = resources.files("selfexplain").joinpath("presets", SMOKE_DIR, task + suffix)
    if not path.is_file():
        raise UserError(f"--smoke: no toy data for task {task} (expected presets/{SMOKE_DIR}/{task}{suffix})")
    return str(path)


def smoke(exp: Experiment, model: str | None = None) -> Experiment:
    """The same grid, every stage, at toy size: a small stand-in model, bundled local data, no hub.

    Checks in minutes on a CPU that a preset's stages fit together (data formats, every
    condition and cell, training, the report) before GPU hours are spent on it.  What it
    changes: the model (``SMOKE_MODEL`` unless given; backend hf, no model_args), the data
    (``presets/smoke/``), the sizes (a few samples per task, two training steps, explanations
    capped at ``SMOKE_TOKENS`` tokens, one further training seed of one condition at most) and hub replay
    (replaced by the offline replay set).  Coupled variants
    construct with the stand-in too; GRPO variants sample groups of two.  DPO variants are left out and the
    description says so: a stand-in with random weights writes no valid explanation to pair, so that stage
    cannot run at toy size (tests/test_rl.py runs DPO on SmolLM2).
    """
    from ..tasks import get_task

    c = exp.construction
    n_labels = {t: len(get_task(t).labels) for t in {*exp.train_tasks, *(e.task for e in exp.evaluate)}}
    # Two steps: the first, the warm-up's, has learning rate 0 and would train nothing.
    tiny = {"max_steps": 2, "batch_size": 2, "grad_accum": 1, "save_steps": 1}
    dpo = [k for k, v in exp.variants.items() if v.method == "dpo"]
    variants = {}
    for k, v in exp.variants.items():
        if k in dpo:
            continue
        # A variant keeps its own settings over the tiny ones except where it sets a tiny one itself.
        update: dict[str, Any] = {"settings": {**v.settings, **{t: tiny[t] for t in tiny if t in v.settings}}}
        if v.source_model:
            update["source_model"] = model or SMOKE_MODEL
        if v.method == "grpo":
            update.update(limit=2, rl={**v.rl, "num_generations": 2, "max_completion_length": 4})
        variants[k] = v.model_copy(update=update)
    return exp.model_copy(
        deep=True,
        update={
            "name": f"{exp.name}-smoke",
            "description": f"Smoke run of {exp.name}: {exp.description}"
            + (f" (DPO variants left out at toy size: {', '.join(dpo)})" if dpo else ""),
            "conditions": [c_ for c_ in exp.conditions if c_ not in dpo],
            "model": model or SMOKE_MODEL,
            "backend": "hf",
            "model_args": {},
            "chunk_size": 4,
            "max_new_tokens": SMOKE_TOKENS,
            "construction": c.model_copy(
                update={
                    "limit": 2 * max((n_labels[t] for t in exp.train_tasks), default=2),
                    "per_style": 1 if c.per_style else None,
                    "quality": min(c.quality, 2),
                    "hub": False,
                    "data": {t: smoke_data(t) or None for t in exp.train_tasks},
                }
            ),
            "train": exp.train.model_copy(
                update={
                    "replay": None if (exp.train.replay or "").startswith("hub:") else exp.train.replay,
                    "settings": {**exp.train.settings, **tiny},
                    # One further seed of one condition checks that stage; more would only multiply the toy run.
                    "seeds": next(
                        (
                            {c_: exp.train.seeds_of(c_)[:1]}
                            for c_ in exp.conditions
                            if c_ != NONE and c_ not in dpo and exp.train.seeds_of(c_)
                        ),
                        {},
                    ),
                }
            ),
            "variants": variants,
            "evaluate": [
                e.model_copy(
                    update={
                        "limit": n_labels[e.task],
                        "hub": False,
                        "split": "test",
                        "data": smoke_data(e.task) or None,
                    }
                )
                for e in exp.evaluate
            ],
        },
    )
