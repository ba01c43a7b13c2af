"""The ``evaluate`` command: self-explanation faithfulness of one model on one task, resumable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import styles as S
from ..attribution import attribute as attribute_examples
from ..backends import Backend, load_backend
from ..errors import UserError
from ..evaluation import RANDOM_BASELINE, TOO_LONG, Summary, fits_classification, run_evaluation, summarize
from ..reports import summary_markdown
from ..tasks import TaskSpec, get_task
from ..tasks.data import Example
from .runs import (
    Hooks,
    check_sizes,
    chunk_size_from,
    data_config,
    load_for_run,
    open_run,
    resolve_styles,
    sample_examples,
)


@dataclass
class EvalResult:
    run_dir: Path
    summary: Summary
    records: list[dict[str, Any]]


def evaluate(
    model: str = "embedded",
    task: str | TaskSpec = "tweets",
    styles: list[str] | str | None = None,
    width: str = "one",
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
    max_new_tokens: int | None = None,
    erasure: bool = False,
    wait: bool = False,
    reference_model: str | None = None,
    reference_args: dict[str, Any] | None = None,
    reference_instance: Backend | None = None,
    batch_size: int | None = None,
) -> EvalResult:
    """Measure self-explanation faithfulness: classify, explain in the same chat, re-classify the edited input in a
    fresh chat.  Resumable: a killed run continues where it stopped when called again with the same arguments.

    Args:
        model: ``embedded[:NAME]``, a ``.gguf`` file, a model folder or a hub id.
        task: a registered task's name, a task ``.yaml`` path, or a :class:`~selfexplain.tasks.TaskSpec`.
        styles: style names, ``"all"`` or None (all registered styles).
        width: ``one`` (one-word explanations) or ``multi``.
        limit: samples, drawn class-balanced with ``seed`` from ``split`` (``test``, ``train`` or ``all``).
        seed: the sampling seed (and the random baselines').
        split: the pool to sample from.
        chunk_size: samples per chunk (a chunk is the unit of resumption; the backend batches within it).
        output_path: folder that receives the run folder.
        data: a data file in the task's canonical format (overrides the task's default source).
        hub: load the task's data set from the Hugging Face hub.
        backend: a registered backend's name (``hf``, ``vllm``, ``openai``, or one the user registered).
        model_args: the backend's model arguments (``adapter=PATH``, ``dtype``, ...).
        backend_instance: an already loaded backend (then ``model``/``model_args`` only name it).
        hooks: progress callbacks.
        max_new_tokens: a cap on every explanation (smoke runs; off by default).
        erasure: also run the erasure attribution on every input and record where the explanation's words
            rank in it.
        wait: if another process is writing the same run folder, wait for it instead of failing.
        reference_model: (hf backend) also judge every explanation with this model as the classifier
            (faithfulness to another model's behaviour), recorded under each record's ``reference``.
        reference_args: the reference model's model arguments.
        reference_instance: an already loaded reference backend.
        batch_size: the former name of ``chunk_size`` (deprecated).

    Returns:
        The run folder, its summary and its records.

    Raises:
        UserError: a bad argument, data file or model, in one line, before any model loads where it can be
            checked without it.
    """
    hooks = hooks or Hooks()
    spec = get_task(task) if isinstance(task, str) else task
    style_list = resolve_styles(styles)
    if width not in S.WIDTHS:
        raise UserError(f"unknown width {width!r}; use one of {', '.join(S.WIDTHS)}")
    chunk_size = chunk_size_from(chunk_size, batch_size)
    check_sizes(chunk_size, output_path)
    examples = sample_examples(spec, limit, seed, data, hub, split)
    be = load_for_run(backend, model, model_args, backend_instance, hooks)
    ref = reference_instance or (
        load_backend("hf", reference_model, **(reference_args or {})) if reference_model else None
    )
    examples, unfit = _within_window(be, spec, examples, hooks)
    data_cfg = data_config(data, hub, split, seed, limit)
    with open_run(
        "evaluate",
        spec,
        examples,
        be,
        backend,
        data_cfg,
        output_path,
        {
            "styles": style_list,
            "width": width,
            "batch_size": chunk_size,
            "random_baseline": RANDOM_BASELINE,
            **({"max_new_tokens": max_new_tokens} if max_new_tokens else {}),
            **({"erasure": True} if erasure else {}),
            # Only with a reference (or samples left out), so other runs keep their folders.
            **({"reference": ref.identity} if ref else {}),
            **({"too_long_to_classify": unfit} if unfit else {}),
        },
        hooks,
        wait,
    ) as store:
        attributor = (lambda part: attribute_examples(be, spec, part)) if erasure else None
        records = run_evaluation(
            be,
            spec,
            examples,
            style_list,
            width,
            store,
            chunk_size,
            hooks.on_chunk,
            random_seed=seed,
            max_new_tokens=max_new_tokens,
            attributor=attributor,
            annotate=_reference_annotator(ref, spec) if ref else None,
        )
        summary = summarize(records)
        store.write_json("summary.json", summary.to_dict())
        long = sum(r["reason"] == TOO_LONG for r in records)
        if long and hooks.on_warning:
            hooks.on_warning(
                f"{long} explanation(s) not generated: prompt and reply would exceed the model's "
                f"{be.context_window():,}-token window (counted as invalid, reason {TOO_LONG})"
            )
        adapter = f", adapter `{model_args['adapter']}`" if model_args and model_args.get("adapter") else ""
        scoring = (
            "\nLabels scored by their **first token only** (a server without prompt log-probabilities): an "
            "approximation for labels of several tokens.\n"
            if be.identity.get("scoring") == "first-token"
            else ""
        )
        store.write_text(
            "summary.md", summary_markdown(summary, f"# selfexplain evaluate\n\nmodel `{model}`{adapter}\n{scoring}")
        )
    return EvalResult(store.path, summary, records)


def _within_window(
    be: Backend, spec: TaskSpec, examples: list[Example], hooks: Hooks
) -> tuple[list[Example], list[str]]:
    """The examples whose classification fits the model's context window, and the ids of those left out (a
    model past its window still answers, and the answer would count like any other)."""
    fits = fits_classification(be, spec, examples)
    unfit = [ex.id for ex, ok in zip(examples, fits) if not ok]
    if unfit:
        if len(unfit) == len(examples):
            raise UserError(
                f"every one of the {len(examples)} samples is longer than the model's "
                f"{be.context_window():,}-token window"
            )
        if hooks.on_warning:
            hooks.on_warning(
                f"{len(unfit)} of {len(examples)} samples left out: their classification prompt "
                f"exceeds the model's {be.context_window():,}-token window (ids in config.json, "
                "too_long_to_classify)"
            )
    return [ex for ex, ok in zip(examples, fits) if ok], unfit


def _reference_annotator(ref: Backend, spec: TaskSpec) -> Callable[[list[Example], list[dict[str, Any]]], None]:
    """Each record's explanation judged again with ``ref`` as the classifier (the evaluator's check, ``judge``)."""
    from ..rewards import Item, judge

    name = str(ref.identity.get("name", "reference"))

    def annotate(part: list[Example], records: list[dict[str, Any]]) -> None:
        by_id = {ex.id: ex for ex in part}
        judged = judge(
            ref, spec, [Item(by_id[r["sample_id"]], r["style"], r["width"], r["raw_explanation"]) for r in records]
        )
        for r, j in zip(records, judged):
            r["reference"] = {
                "model": name,
                "prediction": j.prediction,
                "new_prediction": j.new_prediction,
                "faithful": j.faithful,
                "shift": j.shift,
            }

    return annotate
