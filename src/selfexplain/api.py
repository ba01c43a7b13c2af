"""The Python API: one function per CLI command, usable from notebooks.

    from selfexplain.api import evaluate
    result = evaluate(model="embedded", task="tweets", styles=["attribution"], limit=20)
    print(result.summary.styles[0].faithfulness, result.run_dir)
"""

from __future__ import annotations

import hashlib
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import __version__
from . import styles as S
from .backends import Backend, load_backend
from .errors import UserError
from .evaluation import Summary, run_evaluation, summarize
from .reports import summary_markdown
from .store import RunStore
from .tasks import TaskSpec, get_task  # noqa: F401  (re-exported for the CLI)
from .tasks.data import Example, load_examples, split_examples


@dataclass
class EvalResult:
    run_dir: Path
    summary: Summary
    records: list[dict[str, Any]]


def resolve_styles(styles: list[str] | str | None) -> list[str]:
    if styles is None or styles == "all" or styles == ["all"]:
        return S.style_names()
    names = [styles] if isinstance(styles, str) else list(styles)
    for n in names:
        try:
            S.get_style(n)
        except KeyError as e:
            raise UserError(e.args[0]) from None
    return list(dict.fromkeys(names))


SPLITS = ("test", "all")


def test_examples(task: TaskSpec, limit: int, seed: int, data: str | None, hub: bool, split: str = "test") -> list[Example]:
    """The evaluation sample: from the held-out pool ('test') or from every example ('all').

    'all' is for a file that is itself a test set (SNLI's test file, say); 'test'
    keeps evaluation disjoint from anything `construct` may train on.
    """
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    examples = load_examples(task, data, hub=hub)
    fraction = 1.0 if split == "all" else 0.2
    return split_examples(examples, task.labels, n_test=limit, seed=seed, test_fraction=fraction).test


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"selfexplain": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def evaluate(
    model: str = "embedded",
    task: str | TaskSpec = "tweets",
    styles: list[str] | str | None = None,
    width: str = "one",
    limit: int = 100,
    seed: int = 0,
    split: str = "test",
    batch_size: int = 16,
    output_path: str | Path = "runs",
    data: str | None = None,
    hub: bool = False,
    backend: str = "hf",
    model_args: dict[str, Any] | None = None,
    backend_instance: Backend | None = None,
    on_model: Callable[[dict[str, Any], float], None] | None = None,
    on_start: Callable[[Path, int], None] | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> EvalResult:
    """Measure self-explanation faithfulness; resumable, results in ``run_dir``."""
    spec = get_task(task) if isinstance(task, str) else task
    style_list = resolve_styles(styles)
    if width not in S.WIDTHS:
        raise UserError(f"unknown width {width!r}; use one of {', '.join(S.WIDTHS)}")
    if limit <= 0 or batch_size <= 0:
        raise UserError("--limit and --batch-size must be positive")
    examples = test_examples(spec, limit, seed, data, hub, split)
    started = time.time()
    be = backend_instance or load_backend(backend, model, **(model_args or {}))
    if on_model:
        on_model(be.identity, time.time() - started)
    sample_hash = hashlib.sha256("\n".join(e.id for e in examples).encode()).hexdigest()
    config = {
        "command": "evaluate",
        "backend": backend,
        "model": be.identity,
        "task": {"name": spec.name, "fingerprint": spec.fingerprint()},
        "data": {"source": "hub" if hub else (data or "default"), "split": split, "seed": seed,
                 "limit": limit, "samples_sha256": sample_hash},
        "styles": style_list,
        "width": width,
        "batch_size": batch_size,
        # Versions change numerics: a new version is a new run.
        "versions": _versions(),
    }
    store = RunStore.open(output_path, f"{spec.name}-{be.identity.get('name', 'model').replace('/', '_')}-{width}", config)
    if on_start:
        on_start(store.path, len(examples))
    records = run_evaluation(be, spec, examples, style_list, width, store, batch_size, on_chunk)
    summary = summarize(records)
    store.write_json("summary.json", summary.to_dict())
    store.write_text("summary.md", summary_markdown(summary, f"# selfexplain evaluate\n\nmodel: `{model}`\n"))
    return EvalResult(store.path, summary, records)
