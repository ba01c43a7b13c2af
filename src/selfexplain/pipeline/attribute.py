"""The ``attribute`` command: the erasure influence of every word of each input (Li et al. 2017)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..attribution import INFLUENCE_FORMS, WordAttribution
from ..attribution import attribute as attribute_examples
from ..backends import Backend
from ..errors import UserError
from ..evaluation import chunks
from ..tasks import TaskSpec, get_task
from .runs import Hooks, check_sizes, chunk_size_from, data_config, load_for_run, open_run, sample_examples


@dataclass
class AttributeResult:
    run_dir: Path
    attributions: list[WordAttribution]


def influence_cfg(influence: str) -> dict[str, Any]:
    if influence not in INFLUENCE_FORMS:
        raise UserError(f"--influence: unknown form {influence!r}; use one of {', '.join(INFLUENCE_FORMS)}")
    # Recorded only when it is not the default, so runs made before the option keep their folders.
    return {} if influence == "normalised" else {"influence": influence}


def attribute(
    model: str = "embedded",
    task: str | TaskSpec = "tweets",
    limit: int = 100,
    seed: int = 0,
    split: str = "test",
    chunk_size: int = 16,
    output_path: str | Path = "runs",
    data: str | None = None,
    hub: bool = False,
    backend: str = "hf",
    model_args: dict[str, Any] | None = None,
    backend_instance: Backend | None = None,
    hooks: Hooks | None = None,
    influence: str = "normalised",
    wait: bool = False,
    batch_size: int | None = None,
) -> AttributeResult:
    """Erasure influence of every word of each example (Li et al. 2017); resumable.

    Args:
        model, task, limit, seed, split, chunk_size, output_path, data, hub, backend, model_args,
            backend_instance, hooks, wait, batch_size: as in :func:`evaluate`.
        influence: which probability picks the most influential word w*: ``normalised`` over the task's labels
            (the default) or ``raw``.

    Returns:
        The run folder and one :class:`~selfexplain.attribution.WordAttribution` per example.

    Raises:
        UserError: a bad argument, data file or model, in one line.
    """
    hooks = hooks or Hooks()
    spec = get_task(task) if isinstance(task, str) else task
    form = influence_cfg(influence)
    chunk_size = chunk_size_from(chunk_size, batch_size)
    check_sizes(chunk_size, output_path)
    examples = sample_examples(spec, limit, seed, data, hub, split)
    be = load_for_run(backend, model, model_args, backend_instance, hooks)
    data_cfg = data_config(data, hub, split, seed, limit)
    with open_run(
        "attribute", spec, examples, be, backend, data_cfg, output_path, {"batch_size": chunk_size, **form}, hooks, wait
    ) as store:
        records = store.process(
            chunks(examples, chunk_size),
            len,
            lambda c, part: [asdict(a) for a in attribute_examples(be, spec, part, influence)],
            hooks.on_chunk,
        )
    return AttributeResult(
        store.path, [WordAttribution(**{k: v for k, v in r.items() if k != "chunk"}) for r in records]
    )
