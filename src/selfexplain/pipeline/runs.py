"""What every run command shares: sampling the inputs, checking sizes before a model loads, loading the
backend, opening the run folder under its configuration's hash, and the progress hooks.
"""

from __future__ import annotations

import hashlib
import platform
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from .. import styles as S
from ..backends import Backend, load_backend
from ..errors import UserError
from ..names import model_folder_name
from ..store import RunStore, check_output_path
from ..tasks import TaskSpec
from ..tasks.data import Example, load_examples, split_examples

SPLITS = ("test", "all", "train")
TEST_FRACTION = 0.2


@dataclass
class Hooks:
    """Progress callbacks for front ends (all optional)."""

    on_model: Callable[[dict[str, Any], float], None] | None = None
    on_start: Callable[[Path, int], None] | None = None
    on_chunk: Callable[[int], None] | None = None
    on_load: Callable[[str], None] | None = None  # a model is about to load (every input was checked first)
    on_warning: Callable[[str], None] | None = None  # something the user should know, in one line


def resolve_styles(styles: list[str] | str | None) -> list[str]:
    if styles is None or styles == "all" or styles == ["all"]:
        return S.style_names()
    names = [styles] if isinstance(styles, str) else list(styles)
    for n in names:
        S.get_style(n)
    return list(dict.fromkeys(names))


def sample_examples(task: TaskSpec, limit: int, seed: int, data: str | None, hub: bool, split: str) -> list[Example]:
    """A class-balanced sample from the held-out pool ('test'), the rest ('train'), or everything ('all').

    'all' is for a file that is itself a test set (SNLI's test file, say).  The
    'test' and 'train' pools are disjoint for every size (see split_examples).
    """
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if limit <= 0:
        raise UserError("--limit must be positive")
    examples = load_examples(task, data, hub=hub)
    if split == "train":
        return split_examples(examples, task.labels, n_train=limit, seed=seed, test_fraction=TEST_FRACTION).train
    fraction = 1.0 if split == "all" else TEST_FRACTION
    return split_examples(examples, task.labels, n_test=limit, seed=seed, test_fraction=fraction).test


def versions() -> dict[str, str]:
    import torch
    import transformers

    return {
        "selfexplain": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def data_config(data: str | None, hub: bool, split: str, seed: int, limit: int) -> dict[str, Any]:
    return {"source": "hub" if hub else (data or "default"), "split": split, "seed": seed, "limit": limit}


def open_run(
    command: str,
    spec: TaskSpec,
    examples: list[Example],
    be: Backend,
    backend: str,
    data_cfg: dict[str, Any],
    output_path: str | Path,
    settings: dict[str, Any],
    hooks: Hooks,
    wait: bool = False,
) -> RunStore:
    config = {
        "command": command,
        "backend": backend,
        "model": be.identity,
        "task": {"name": spec.name, "fingerprint": spec.fingerprint()},
        "data": {**data_cfg, "samples_sha256": hashlib.sha256("\n".join(e.id for e in examples).encode()).hexdigest()},
        **settings,
        # Versions change numerics: a new version is a new run.
        "versions": versions(),
    }
    # The model's name as typed may hold "/" (a hub id) or worse; config.json keeps it as it is.
    store = RunStore.open(
        output_path, f"{command}-{spec.name}-{model_folder_name(be.identity)}", config, wait=wait, runtime=be.runtime()
    )
    if hooks.on_start:
        hooks.on_start(store.path, len(examples))
    return store


def chunk_size_from(chunk_size: int, batch_size: int | None) -> int:
    """``chunk_size``, or the deprecated ``batch_size`` that meant it here (it now means only training batches)."""
    if batch_size is None:
        return chunk_size
    warnings.warn(
        "batch_size= here is the chunk size: call it chunk_size= (batch_size means the training batch)",
        DeprecationWarning,
        stacklevel=3,
    )
    return batch_size


def check_sizes(chunk_size: int, output_path: str | Path) -> None:
    """What can be checked before a model loads (a typo should not cost a minute of loading)."""
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise UserError(f"--chunk-size must be a positive whole number, not {chunk_size!r}")
    check_output_path(output_path)


def load_for_run(
    backend: str, model: str, model_args: dict[str, Any] | None, instance: Backend | None, hooks: Hooks
) -> Backend:
    started = time.time()
    if instance is None and hooks.on_load:
        hooks.on_load(model)
    be = instance or load_backend(backend, model, **(model_args or {}))
    if hooks.on_model:
        hooks.on_model(be.identity, time.time() - started)
    return be
