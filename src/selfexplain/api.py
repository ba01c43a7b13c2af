"""The Python API: one function per CLI command, usable from notebooks.

    from selfexplain.api import evaluate
    result = evaluate(model="embedded", task="tweets", styles=["attribution"], limit=20)
    print(result.summary.styles[0].faithfulness, result.run_dir)

Every command is resumable: its run folder is named from a hash of its full
configuration, and work is stored chunk by chunk (see :mod:`selfexplain.store`).
"""

from __future__ import annotations

import hashlib
import json
import platform
import random
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from . import __version__
from . import styles as S
from .attribution import INFLUENCE_FORMS, WordAttribution, attribute as attribute_examples
from .backends import Backend, load_backend
from .construction import (CANDIDATES as CF_CANDIDATES, RANKED_RULE as CF_RANKED_RULE, STYLES as CONSTRUCT_STYLES,
                           construct_explanations, training_chat)
from .errors import NothingToTrain, UserError
from .evaluation import (RANDOM_BASELINE, TOO_LONG, Summary, chunks, classify, fits_classification, run_evaluation,
                         summarize)
from .layout import constructed_faithful
from .reports import construction_markdown, summary_markdown
from .reports.tables import training_flips
from .names import model_folder_name
from .store import ComputeClock, RunStore, atomic_write, check_output_path, read_json
from .tasks import TaskSpec, get_task, task_names
from .tasks.data import Example, load_examples, split_examples
from .training import TrainSettings, check_report_to

SPLITS = ("test", "all", "train")
TEST_FRACTION = 0.2


@dataclass
class EvalResult:
    run_dir: Path
    summary: Summary
    records: list[dict[str, Any]]


@dataclass
class AttributeResult:
    run_dir: Path
    attributions: list[WordAttribution]


@dataclass
class ConstructResult:
    run_dir: Path
    stats: dict[str, Any]
    files: dict[str, Path]


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


def _versions() -> dict[str, str]:
    import torch
    import transformers

    return {"selfexplain": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def _data_cfg(data: str | None, hub: bool, split: str, seed: int, limit: int) -> dict[str, Any]:
    return {"source": "hub" if hub else (data or "default"), "split": split, "seed": seed, "limit": limit}


def _open_run(
    command: str, spec: TaskSpec, examples: list[Example], be: Backend, backend: str, data_cfg: dict[str, Any],
    output_path: str | Path, settings: dict[str, Any], hooks: Hooks, wait: bool = False,
) -> RunStore:
    config = {
        "command": command,
        "backend": backend,
        "model": be.identity,
        "task": {"name": spec.name, "fingerprint": spec.fingerprint()},
        "data": {**data_cfg, "samples_sha256": hashlib.sha256("\n".join(e.id for e in examples).encode()).hexdigest()},
        **settings,
        # Versions change numerics: a new version is a new run.
        "versions": _versions(),
    }
    # The model's name as typed may hold "/" (a hub id) or worse; config.json keeps it as it is.
    store = RunStore.open(output_path, f"{command}-{spec.name}-{model_folder_name(be.identity)}",
                          config, wait=wait, runtime=be.runtime())
    if hooks.on_start:
        hooks.on_start(store.path, len(examples))
    return store


def _chunk_size(chunk_size: int, batch_size: int | None) -> int:
    """``chunk_size``, or the deprecated ``batch_size`` that meant it here (it now means only training batches)."""
    if batch_size is None:
        return chunk_size
    warnings.warn("batch_size= here is the chunk size: call it chunk_size= (batch_size means the training batch)",
                  DeprecationWarning, stacklevel=3)
    return batch_size


def _check_sizes(chunk_size: int, output_path: str | Path) -> None:
    """What can be checked before a model loads (a typo should not cost a minute of loading)."""
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise UserError(f"--chunk-size must be a positive whole number, not {chunk_size!r}")
    check_output_path(output_path)


def _backend(backend: str, model: str, model_args: dict[str, Any] | None, instance: Backend | None, hooks: Hooks) -> Backend:
    started = time.time()
    if instance is None and hooks.on_load:
        hooks.on_load(model)
    be = instance or load_backend(backend, model, **(model_args or {}))
    if hooks.on_model:
        hooks.on_model(be.identity, time.time() - started)
    return be


def evaluate(
    model: str = "embedded", task: str | TaskSpec = "tweets", styles: list[str] | str | None = None,
    width: str = "one", limit: int = 100, seed: int = 0, split: str = "test", chunk_size: int = 16,
    output_path: str | Path = "runs", data: str | None = None, hub: bool = False, backend: str = "hf",
    model_args: dict[str, Any] | None = None, backend_instance: Backend | None = None, hooks: Hooks | None = None,
    max_new_tokens: int | None = None, erasure: bool = False, wait: bool = False,
    reference_model: str | None = None, reference_args: dict[str, Any] | None = None,
    reference_instance: Backend | None = None, batch_size: int | None = None,
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
    chunk_size = _chunk_size(chunk_size, batch_size)
    _check_sizes(chunk_size, output_path)
    examples = sample_examples(spec, limit, seed, data, hub, split)
    be = _backend(backend, model, model_args, backend_instance, hooks)
    ref = reference_instance or (load_backend("hf", reference_model, **(reference_args or {}))
                                 if reference_model else None)
    examples, unfit = _within_window(be, spec, examples, hooks)
    data_cfg = _data_cfg(data, hub, split, seed, limit)
    with _open_run("evaluate", spec, examples, be, backend, data_cfg, output_path,
                   {"styles": style_list, "width": width, "batch_size": chunk_size, "random_baseline": RANDOM_BASELINE,
                    **({"max_new_tokens": max_new_tokens} if max_new_tokens else {}),
                    **({"erasure": True} if erasure else {}),
                    # Only with a reference (or samples left out), so other runs keep their folders.
                    **({"reference": ref.identity} if ref else {}),
                    **({"too_long_to_classify": unfit} if unfit else {})},
                   hooks, wait) as store:
        attributor = (lambda part: attribute_examples(be, spec, part)) if erasure else None
        records = run_evaluation(be, spec, examples, style_list, width, store, chunk_size, hooks.on_chunk,
                                 random_seed=seed, max_new_tokens=max_new_tokens, attributor=attributor,
                                 annotate=_reference_annotator(ref, spec) if ref else None)
        summary = summarize(records)
        store.write_json("summary.json", summary.to_dict())
        long = sum(r["reason"] == TOO_LONG for r in records)
        if long and hooks.on_warning:
            hooks.on_warning(f"{long} explanation(s) not generated: prompt and reply would exceed the model's "
                             f"{be.context_window():,}-token window (counted as invalid, reason {TOO_LONG})")
        adapter = f", adapter `{model_args['adapter']}`" if model_args and model_args.get("adapter") else ""
        scoring = ("\nLabels scored by their **first token only** (a server without prompt log-probabilities): an "
                   "approximation for labels of several tokens.\n" if be.identity.get("scoring") == "first-token" else "")
        store.write_text("summary.md", summary_markdown(summary, f"# selfexplain evaluate\n\nmodel `{model}`{adapter}\n{scoring}"))
    return EvalResult(store.path, summary, records)


def _within_window(be: Backend, spec: TaskSpec, examples: list[Example], hooks: Hooks
                   ) -> tuple[list[Example], list[str]]:
    """The examples whose classification fits the model's context window, and the ids of those left out (a
    model past its window still answers, and the answer would count like any other)."""
    fits = fits_classification(be, spec, examples)
    unfit = [ex.id for ex, ok in zip(examples, fits) if not ok]
    if unfit:
        if len(unfit) == len(examples):
            raise UserError(f"every one of the {len(examples)} samples is longer than the model's "
                            f"{be.context_window():,}-token window")
        if hooks.on_warning:
            hooks.on_warning(f"{len(unfit)} of {len(examples)} samples left out: their classification prompt "
                             f"exceeds the model's {be.context_window():,}-token window (ids in config.json, "
                             "too_long_to_classify)")
    return [ex for ex, ok in zip(examples, fits) if ok], unfit


def _reference_annotator(ref: Backend, spec: TaskSpec) -> Callable[[list[Example], list[dict[str, Any]]], None]:
    """Each record's explanation judged again with ``ref`` as the classifier (the evaluator's check, ``judge``)."""
    from .rewards import Item, judge

    name = str(ref.identity.get("name", "reference"))

    def annotate(part: list[Example], records: list[dict[str, Any]]) -> None:
        by_id = {ex.id: ex for ex in part}
        judged = judge(ref, spec, [Item(by_id[r["sample_id"]], r["style"], r["width"], r["raw_explanation"])
                                   for r in records])
        for r, j in zip(records, judged):
            r["reference"] = {"model": name, "prediction": j.prediction, "new_prediction": j.new_prediction,
                              "faithful": j.faithful, "shift": j.shift}

    return annotate


def _influence_cfg(influence: str) -> dict[str, Any]:
    if influence not in INFLUENCE_FORMS:
        raise UserError(f"--influence: unknown form {influence!r}; use one of {', '.join(INFLUENCE_FORMS)}")
    # Recorded only when it is not the default, so runs made before the option keep their folders.
    return {} if influence == "normalised" else {"influence": influence}


def attribute(
    model: str = "embedded", task: str | TaskSpec = "tweets", limit: int = 100, seed: int = 0, split: str = "test",
    chunk_size: int = 16, output_path: str | Path = "runs", data: str | None = None, hub: bool = False,
    backend: str = "hf", model_args: dict[str, Any] | None = None, backend_instance: Backend | None = None,
    hooks: Hooks | None = None, influence: str = "normalised", wait: bool = False, batch_size: int | None = None,
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
    form = _influence_cfg(influence)
    chunk_size = _chunk_size(chunk_size, batch_size)
    _check_sizes(chunk_size, output_path)
    examples = sample_examples(spec, limit, seed, data, hub, split)
    be = _backend(backend, model, model_args, backend_instance, hooks)
    data_cfg = _data_cfg(data, hub, split, seed, limit)
    with _open_run("attribute", spec, examples, be, backend, data_cfg, output_path,
                   {"batch_size": chunk_size, **form}, hooks, wait) as store:
        records = store.process(
            chunks(examples, chunk_size), len,
            lambda c, part: [asdict(a) for a in attribute_examples(be, spec, part, influence)], hooks.on_chunk,
        )
    return AttributeResult(store.path, [WordAttribution(**{k: v for k, v in r.items() if k != "chunk"}) for r in records])


def construct(
    model: str = "embedded", task: str | TaskSpec = "tweets", limit: int = 500, seed: int = 0, chunk_size: int = 16,
    output_path: str | Path = "runs", data: str | None = None, hub: bool = False, backend: str = "hf",
    model_args: dict[str, Any] | None = None, quality: int = 0, backend_instance: Backend | None = None,
    hooks: Hooks | None = None, per_style: int | None = None, influence: str = "normalised",
    max_new_tokens: int | None = None, styles: list[str] | None = None, wait: bool = False,
    cf_candidates: int = CF_CANDIDATES, only_flipping: bool = False, batch_size: int | None = None,
) -> ConstructResult:
    """Pseudo-faithful explanation data from the training pool, plus the table 3 quality check on ``quality`` samples.

    A counterfactual word that copies a word of the input, a label word or w* is replaced by the best of the
    reply's ``cf_candidates`` ranked first tokens (0: such samples are dropped).  Every kept example records
    whether its edit flips the model's prediction.  The training files of ``styles`` hold the same number of
    explanations, as in the paper: every file is cut to the smallest number those styles kept (the first ones,
    in sample order); ``construction.json`` says how many and why.

    Args:
        model, task, seed, chunk_size, output_path, data, hub, backend, model_args, backend_instance, hooks,
            max_new_tokens, wait, batch_size: as in :func:`evaluate`.
        limit: source samples from the training pool, at most.
        quality: samples of the table 3 check (constructed against the model's own explanations); at most
            ``limit``.
        per_style: take source samples in order until each style has kept this many (None: use all ``limit``).
        influence: which probability picks w* (see :func:`attribute`).
        styles: the styles whose files are balanced (default: all three; a study passes those it trains).
        cf_candidates: ranked first tokens tried when the greedy counterfactual word is rejected.
        only_flipping: keep only examples whose edit flips the model's prediction (the paper keeps all).

    Returns:
        The run folder, the construction's counts and the training file of each style.

    Raises:
        UserError: an evaluation-only task, a bad size, data file or model, in one line.
    """
    hooks = hooks or Hooks()
    spec = get_task(task) if isinstance(task, str) else task
    if not spec.training_allowed:
        raise UserError(f"task {spec.name} is evaluation-only (its licence forbids training data); use evaluate")
    if quality > limit:
        raise UserError("--quality cannot exceed --limit")
    if per_style is not None and per_style <= 0:
        raise UserError("--per-style must be positive")
    if cf_candidates < 0:
        raise UserError("--cf-candidates must be 0 or more")
    form = _influence_cfg(influence)
    chunk_size = _chunk_size(chunk_size, batch_size)
    _check_sizes(chunk_size, output_path)
    balanced = list(CONSTRUCT_STYLES) if styles is None else [s for s in CONSTRUCT_STYLES if s in styles]
    if not balanced:
        raise UserError(f"construct: no constructed style among {styles} (use {', '.join(CONSTRUCT_STYLES)})")
    examples = sample_examples(spec, limit, seed, data, hub, "train")
    be = _backend(backend, model, model_args, backend_instance, hooks)
    data_cfg = _data_cfg(data, hub, "train", seed, limit)
    # The marker keeps runs built under the paper's filter alone (copies kept, no ranked candidates) from
    # being reused.
    settings = {"batch_size": chunk_size, **form, **({"per_style": per_style} if per_style else {}),
                **({"balanced_styles": balanced} if len(balanced) < len(CONSTRUCT_STYLES) else {}),
                "counterfactual": {"copies": "rejected", "candidates": cf_candidates, "ranked": CF_RANKED_RULE},
                **({"only_flipping": True} if only_flipping else {})}
    with _open_run("construct", spec, examples, be, backend, data_cfg, output_path, settings, hooks, wait) as store:
        return _construct_in(store, be, spec, examples, chunk_size, hooks, per_style, balanced, quality, influence,
                             max_new_tokens, model, cf_candidates, only_flipping)


def _construct_in(store: RunStore, be: Backend, spec: TaskSpec, examples: list[Example], chunk_size: int,
                  hooks: Hooks, per_style: int | None, balanced: list[str], quality: int, influence: str,
                  max_new_tokens: int | None, model: str, cf_candidates: int,
                  only_flipping: bool) -> ConstructResult:
    """construct's work, inside its run folder (which this process holds)."""

    def enough(records: list[dict[str, Any]]) -> bool:
        kept = _kept_counts(records, only_flipping)
        return all(kept[s] >= per_style for s in balanced)  # type: ignore[operator]

    def compute(c: int, part: list[Example]) -> list[dict[str, Any]]:
        atts = attribute_examples(be, spec, part, influence)
        built = construct_explanations(be, spec, atts, candidates=cf_candidates)
        cf_edits = [(b["counterfactual"].edited_input, a.context) for a, b in zip(atts, built)
                    if b["counterfactual"].edited_input]
        cf_preds = iter(classify(be, spec, cf_edits))
        rows = []
        for a, b in zip(atts, built):
            cf = b["counterfactual"]
            new = next(cf_preds).label if cf.edited_input else None
            if new is not None:
                cf.flips = new != a.prediction
            rows.append({
                "attribution": asdict(a),
                "constructed": {s: asdict(x) for s, x in b.items()},
                "cf_new_prediction": new,
            })
        return rows

    records = store.process(chunks(examples, chunk_size), len, compute, hooks.on_chunk,
                            enough=enough if per_style else None)
    stats = construction_stats(records)
    stats["only_flipping"] = only_flipping
    kept = _kept_counts(records, only_flipping)
    smallest = min(balanced, key=lambda s: kept[s])
    size = min([kept[smallest], *([per_style] if per_style else [])])
    stats["train_size"] = size
    stats["per_style"] = per_style
    stats["balanced_styles"] = balanced
    who = "every style" if len(balanced) == len(CONSTRUCT_STYLES) else " and ".join(balanced)
    usable = "kept and flipping" if only_flipping else "kept"
    stats["sizes_note"] = (
        f"{who} trains on {size} {'flipping ' if only_flipping else ''}explanations"
        + ("" if all(kept[s] == size for s in balanced) else
           f" (the first {size} {usable} of each; the smallest count {usable} was {smallest}'s {kept[smallest]}"
           + (f", short of the {per_style} asked for within {len(examples)} samples" if per_style and size < per_style else "")
           + ")"))
    files = _write_training_files(store, spec, records, size, only_flipping)
    for style in CONSTRUCT_STYLES:  # what each file holds, by the rule table 3 reads it with
        flags = training_flips(records, style, stats)
        stats["styles"][style]["train"] = len(flags)
        stats["styles"][style]["train_flips"] = sum(flags)
    quality = min(quality, len(records))  # --per-style may stop before --quality samples
    if quality:
        q_cfg = {"quality": quality, "of": store.config, **({"max_new_tokens": max_new_tokens} if max_new_tokens else {})}
        with RunStore.open(store.path, "quality", q_cfg) as q_store:
            originals = run_evaluation(be, spec, examples[:quality], list(CONSTRUCT_STYLES), "one", q_store,
                                       chunk_size, max_new_tokens=max_new_tokens)
        stats["quality"] = quality_table(records[:quality], originals)
    store.write_json("construction.json", stats)
    store.write_text("construction.md", construction_markdown(stats, spec.name, model))
    return ConstructResult(store.path, stats, files)


def _usable(record: dict[str, Any], style: str, only_flipping: bool) -> bool:
    """Whether a construct record's explanation of ``style`` may go into its training file."""
    flips = constructed_faithful(record, style)
    return flips is not None and (flips or not only_flipping)


def _kept_counts(records: list[dict[str, Any]], only_flipping: bool = False) -> dict[str, int]:
    return {s: sum(_usable(r, s, only_flipping) for r in records) for s in CONSTRUCT_STYLES}


def _write_training_files(store: RunStore, spec: TaskSpec, records: list[dict[str, Any]], size: int,
                          only_flipping: bool) -> dict[str, Path]:
    """One datasets-loadable JSONL file per style (its first ``size`` usable explanations): ``messages``
    in the table 2 template plus provenance, and whether the edit flips the prediction."""
    files = {}
    for style in CONSTRUCT_STYLES:  # a style outside the balanced ones may hold fewer
        lines = []
        for r in records:
            a, c = r["attribution"], r["constructed"][style]
            if not _usable(r, style, only_flipping):
                continue
            if len(lines) == size:
                break
            att = WordAttribution(**a)
            lines.append(json.dumps({
                "messages": training_chat(spec, att, style, c["explanation"]),
                "style": style, "task": spec.name, "sample_id": a["sample_id"],
                "gold": a["gold"], "prediction": a["prediction"], "second_label": a["second_label"],
                "w_star": a["w_star"], "influence": a["influence"][a["w_star_index"]],
                "influence_raw": a["influence_raw"][a["w_star_index"]], "label_probs": a["label_probs"],
                "edited_input": c["edited_input"], "counterfactual_word": c["counterfactual_word"],
                "flips": constructed_faithful(r, style),
            }, ensure_ascii=False))
        files[style] = store.write_text(f"train-{style}.jsonl", "".join(l + "\n" for l in lines))
    return files


def construction_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per style: kept, how many of them flip the prediction, drop reasons; for counterfactuals, how many
    greedy words were replaced by a ranked candidate, by the greedy word's rejection."""
    out: dict[str, Any] = {"n_samples": len(records), "styles": {}}
    for style in CONSTRUCT_STYLES:
        reasons: dict[str, int] = {}
        replaced: dict[str, int] = {}
        kept = flips = 0
        for r in records:
            c = r["constructed"][style]
            why = c["drop_reason"]
            if why is None:
                kept += 1
                flips += bool(constructed_faithful(r, style))
                if c.get("candidate_rank"):
                    replaced[c["greedy_rejected"]] = replaced.get(c["greedy_rejected"], 0) + 1
            else:
                reasons[why] = reasons.get(why, 0) + 1
        out["styles"][style] = {"kept": kept, "flips": flips,
                                "dropped": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
                                **({"replaced": dict(sorted(replaced.items(), key=lambda kv: -kv[1]))}
                                   if style == "counterfactual" else {})}
    return out


def quality_table(records: list[dict[str, Any]], originals: list[dict[str, Any]]) -> dict[str, Any]:
    """Table 3: faithfulness of constructed vs originally generated explanations on the same samples."""
    orig = summarize(originals)
    table = {}
    for style in CONSTRUCT_STYLES:
        flags = [f for f in (constructed_faithful(r, style) for r in records) if f is not None]
        o = next(s for s in orig.styles if s.style == style)
        table[style] = {
            "original": o.faithfulness, "original_valid": o.n_valid,
            "constructed": sum(flags) / len(flags) if flags else None, "constructed_n": len(flags),
        }
    return table


@dataclass
class TrainResult:
    run_dir: Path
    adapter: Path
    summary: dict[str, Any]


def replay_chats(model: str, n: int, seed: int = 0, model_args: dict[str, Any] | None = None,
                 output_path: str | Path | None = None, chunk_size: int = 16,
                 backend_instance: Backend | None = None) -> list[dict[str, Any]]:
    """``n`` instruction chats: chatterbot-corpus prompts answered greedily by the base model, cached and resumable."""
    from .paths import cache_dir
    from .training import replay_prompts

    if n <= 0:
        return []
    prompts = replay_prompts()
    random.Random(seed).shuffle(prompts)
    if n > len(prompts):
        raise UserError(f"asked for {n} instruction chats; the corpus has {len(prompts)} distinct prompts")
    be = backend_instance or load_backend("hf", model, **(model_args or {}))
    # The answers depend on the model only, so they are shared by every training run of that model.
    # A cache shared by every training of the model: a second trainer waits for the first's answers.
    store = RunStore.open(output_path or cache_dir() / "replay", "replay",
                          {"model": be.identity, "seed": seed, "batch_size": chunk_size}, wait=True)

    def answer(c: int, part: list[str]) -> list[dict[str, Any]]:
        chats = [[{"role": "user", "content": p}] for p in part]
        gens = be.generate(chats, [160] * len(part))
        return [{"messages": chat + [{"role": "assistant", "content": g.text}], "truncated": g.truncated}
                for chat, g in zip(chats, gens)]

    with store:
        records = store.process(chunks(prompts[:n], chunk_size), len, answer)
    return [{"messages": r["messages"]} for r in records[:n]]


def train(
    data: list[str], model: str = "embedded", mix_ratio: float = 0.2, baseline: str | None = None,
    output_path: str | Path = "runs", model_args: dict[str, Any] | None = None,
    settings: TrainSettings | None = None, replay: str | None = None, wait: bool = False, report_to: str = "none",
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
    from .training import train_lora

    settings = settings or TrainSettings()
    check_report_to(report_to)
    check_output_path(output_path)
    setup = _train_setup(data, model, mix_ratio, baseline, model_args, settings, replay)
    with _training_run(output_path, setup.prefix, setup.config, wait) as run:
        if run.cached is None:
            summary = train_lora(setup.model, setup.tokenizer, setup.rows, run.path, settings, report_to=report_to)
            run.finish({**summary, "n_task": setup.config["n_task"], "n_replay": setup.config["n_replay"],
                        "baseline": baseline, "data": data})
    return run.cached or run.result


def train_folder(
    data: list[str], model: str = "embedded", mix_ratio: float = 0.2, baseline: str | None = None,
    output_path: str | Path = "runs", model_args: dict[str, Any] | None = None,
    settings: TrainSettings | None = None, replay: str | None = None,
) -> Path:
    """The run folder :func:`train` would train in for these arguments; loads the model and the replay answers
    (they are part of the run's identity) and trains nothing."""
    check_output_path(output_path)
    setup = _train_setup(data, model, mix_ratio, baseline, model_args, settings or TrainSettings(), replay)
    return RunStore.folder(output_path, setup.prefix, setup.config)


def _check_train_model_args(model_args: dict[str, Any] | None) -> None:
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


def _train_setup(data: list[str], model: str, mix_ratio: float, baseline: str | None,
                 model_args: dict[str, Any] | None, settings: TrainSettings, replay: str | None) -> _TrainSetup:
    """:func:`train`'s checked inputs, the loaded model and the mixed rows, and the run's identity."""
    from accelerate import PartialState

    from .backends.models import load_model
    from .training import data_fingerprint, mix, prediction_chats, read_chats

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
    _check_train_model_args(model_args)
    model_obj, tokenizer, identity = load_model(model, **(model_args or {}))
    state = PartialState()
    # Replay answers are generated once, by the main process, with the model about
    # to be trained (not a second copy); the other processes read the cache.
    with state.main_process_first():
        if replay:
            replay_rows = read_chats(replay)
        else:
            from .backends.hf import HFBackend

            replay_rows = replay_chats(model, n_replay, settings.seed,
                                       backend_instance=HFBackend.from_loaded(model_obj, tokenizer, identity))
    rows = mix(task_rows, replay_rows, mix_ratio, settings.seed)
    config = {"command": "train", "model": identity, "data": data_fingerprint(rows), "n_task": len(task_rows),
              "n_replay": n_replay, "baseline": baseline, "settings": asdict(settings), "versions": _versions()}
    return _TrainSetup(model_obj, tokenizer, rows, config, f"train-{model_folder_name(identity)}")


@dataclass
class _TrainingRun:
    path: Path
    cached: TrainResult | None  # the finished training found in the folder
    main: bool
    result: TrainResult | None = None

    def finish(self, summary: dict[str, Any]) -> None:
        if self.main:
            atomic_write(self.path / "train_summary.json", json.dumps(summary, indent=2) + "\n",
                         kept="the adapter is saved")
        self.result = TrainResult(self.path, self.path / "adapter", summary)


@contextmanager
def _training_run(output_path: str | Path, prefix: str, config: dict[str, Any], wait: bool) -> Iterator[_TrainingRun]:
    """A training run folder, held by the main process (the others of an ``accelerate launch`` train beside it);
    a training already finished there comes back as ``cached``."""
    from accelerate import PartialState

    state = PartialState()
    with RunStore.open(output_path, prefix, config, wait=wait) if state.is_main_process else nullcontext():
        state.wait_for_everyone()
        run_dir = RunStore.folder(output_path, prefix, config)
        done = run_dir / "train_summary.json"
        cached = (TrainResult(run_dir, run_dir / "adapter", {**read_json(done), "cached": True})
                  if done.exists() and (run_dir / "adapter").is_dir() else None)
        yield _TrainingRun(run_dir, cached, state.is_main_process)


def train_rl(
    method: str, task: str = "sentiment140", model: str = "embedded", limit: int = 300, seed: int = 0,
    data: str | None = None, hub: bool = False, output_path: str | Path = "runs",
    model_args: dict[str, Any] | None = None, settings: TrainSettings | None = None, rl: Any = None,
    chunk_size: int = 16, wait: bool = False, report_to: str = "none", batch_size: int | None = None,
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

    from .backends.hf import HFBackend
    from .evaluation import explain_chat
    from .rewards import Item, Judgement, judge
    from .rl import RLSettings, dpo_train, grpo_train, pair_rows, preference_pairs, sample_explanations, sample_seed

    settings = settings or TrainSettings()
    rl = rl or RLSettings()
    chunk_size = _chunk_size(chunk_size, batch_size)
    check_report_to(report_to)
    spec, examples, model_obj, tokenizer, identity, config = _rl_setup(method, task, model, limit, seed, data, hub,
                                                                       output_path, model_args, settings, rl)
    state = PartialState()
    with _training_run(output_path, _rl_prefix(method, identity), config, wait) as run:
        if run.cached is not None:
            return run.cached
        run_dir = run.path
        clock = ComputeClock(run_dir)  # DPO's sampling counts too
        # The answers in the chats: the model's own, before training (only when there is training to do).
        before = HFBackend.from_loaded(model_obj, tokenizer, identity)
        predictions = [p.label for p in classify(before, spec, [(ex.text, ex.context) for ex in examples])]
        extra = {"method": method, "n_task": len(examples), "n_replay": 0, "task": spec.name}
        if method == "grpo":
            summary = grpo_train(model_obj, tokenizer, identity, spec, examples, predictions, run_dir, settings, rl,
                                 report_to, clock)
            summary.update(extra)
        else:
            chats = [explain_chat(spec, ex, p, rl.style, rl.width) for ex, p in zip(examples, predictions)]

            def sample(c: int, part: list[int]) -> list[dict[str, Any]]:
                texts = sample_explanations(model_obj, tokenizer, [chats[i] for i in part], rl,
                                            [sample_seed(seed, examples[i].id) for i in part])
                judged = judge(before, spec, [Item(examples[i], rl.style, rl.width, t)
                                              for i, ts in zip(part, texts) for t in ts], rl.reward)
                out, k = [], 0
                for i, ts in zip(part, texts):
                    out.append({"sample_id": examples[i].id, "index": i, "texts": ts,
                                "judged": [j.as_dict() for j in judged[k:k + len(ts)]]})
                    k += len(ts)
                return out

            with state.main_process_first():
                with RunStore.open(run_dir, "samples", {"rl": rl.sampling(), "seed": seed, "data": config["data"]}) as s_store:
                    records = s_store.process(chunks(list(range(len(examples))), chunk_size), len, sample)
            if run.main:
                clock.save()
            judged = [[Judgement(**j) for j in r["judged"]] for r in records]
            pairs = [p for p in preference_pairs(judged, [r["texts"] for r in records], rl.pairs, rl.pair_margin)
                     if p is not None]
            if not pairs:
                wanted = ("both a valid faithful and a valid unfaithful explanation" if rl.pairs == "faithful" else
                          f"two explanations whose rewards differ by {rl.pair_margin} or more")
                hint = " or --dpo-pairs reward" if rl.pairs == "faithful" else ""
                raise NothingToTrain(f"{run_dir}: no input had {wanted} among {rl.samples} samples: nothing to "
                                     f"train on (raise --samples or --temperature{hint})")
            rows = pair_rows(tokenizer, chats, pairs, settings.max_length)
            extra.update(pairs=len(pairs), pair_yield=len(pairs) / len(examples),
                         valid_share=sum(j.valid for js in judged for j in js) / sum(len(js) for js in judged))
            summary = dpo_train(model_obj, tokenizer, rows, run_dir, settings, rl, extra, report_to, clock)
        run.finish(summary)
    return run.result


def train_rl_folder(
    method: str, task: str = "sentiment140", model: str = "embedded", limit: int = 300, seed: int = 0,
    data: str | None = None, hub: bool = False, output_path: str | Path = "runs",
    model_args: dict[str, Any] | None = None, settings: TrainSettings | None = None, rl: Any = None,
) -> Path:
    """The run folder :func:`train_rl` would train in for these arguments (loads the model, trains nothing)."""
    from .rl import RLSettings

    *_, identity, config = _rl_setup(method, task, model, limit, seed, data, hub, output_path, model_args,
                                     settings or TrainSettings(), rl or RLSettings())
    return RunStore.folder(output_path, _rl_prefix(method, identity), config)


def _rl_prefix(method: str, identity: dict[str, Any]) -> str:
    return f"train-{method}-{model_folder_name(identity)}"


def _rl_setup(method: str, task: str, model: str, limit: int, seed: int, data: str | None, hub: bool,
              output_path: str | Path, model_args: dict[str, Any] | None, settings: TrainSettings,
              rl: Any) -> tuple[TaskSpec, list[Example], Any, Any, dict[str, Any], dict[str, Any]]:
    """:func:`train_rl`'s checked inputs, its examples, the loaded model and the run's identity."""
    from .backends.models import load_model

    rl.check(method, settings)
    spec = get_task(task)
    if not spec.training_allowed:
        raise UserError(f"task {spec.name} is evaluation-only (its licence forbids training on it)")
    S.get_style(rl.style)
    if rl.width not in S.WIDTHS:
        raise UserError(f"unknown width {rl.width!r}; use one of {', '.join(S.WIDTHS)}")
    check_output_path(output_path)
    _check_train_model_args(model_args)
    examples = sample_examples(spec, limit, seed, data, hub, "train")
    model_obj, tokenizer, identity = load_model(model, **(model_args or {}))
    data_cfg = {**_data_cfg(data, hub, "train", seed, limit),
                "samples_sha256": hashlib.sha256("\n".join(e.id for e in examples).encode()).hexdigest()}
    config = {"command": "train", "method": method, "model": identity, "task": spec.name, "data": data_cfg,
              "settings": asdict(settings), "rl": asdict(rl), "versions": _versions()}
    return spec, examples, model_obj, tokenizer, identity, config


def rejudge(paths: list[str | Path], model: str | None = None, model_args: dict[str, Any] | None = None,
            ) -> list[tuple[Path, str, Any]]:
    """Re-judge evaluate runs or whole studies under today's rules (:mod:`selfexplain.rejudge`).

    A run's model is loaded (once) only where a baseline must be classified again, with the backend the run
    used.

    Args:
        paths: evaluate run folders or study folders.
        model: the model to classify with (default: the embedded model the run's identity names).
        model_args: its model arguments (``adapter=PATH``; default, in a study: the condition's adapter).

    Returns:
        One (path, cell key or "", :class:`~selfexplain.rejudge.Rejudged` or the reason it was left) per run.

    Raises:
        UserError: a path that is neither a run nor a study, in one line.
    """
    from .rejudge import MissingModel, rejudge_run, rejudge_study

    loaded: dict[str, Backend] = {}

    def load(config: dict[str, Any], adapter: str | None = None) -> Backend:
        identity, backend = config["model"], config.get("backend", "hf")
        args = dict(model_args or {})
        if adapter and "adapter" not in args:
            if not Path(adapter).is_dir():
                raise MissingModel(f"adapter {adapter} is gone (never committed): retrain it (reproduce), then "
                                   "re-judge")
            args["adapter"] = adapter
        if identity.get("adapter") and "adapter" not in args:
            raise MissingModel("its model has a LoRA adapter: give --adapter PATH (checked against the run)")
        spec = model or _identity_model(identity)
        key = json.dumps([backend, spec, args], sort_keys=True)
        if key not in loaded:
            loaded[key] = load_backend(backend, spec, **args)
        be = loaded[key]
        if be.identity != identity:
            raise UserError(f"the run was made by {identity}, and {spec} {args or ''} is {be.identity} "
                            f"({backend} backend): give the --model (and --adapter) it was made by")
        return be

    out: list[tuple[Path, str, Any]] = []
    for p in map(Path, paths):
        if (p / "study.json").exists():
            out += [(p, key, res) for key, res in rejudge_study(p, load)]
        else:
            try:
                out.append((p, "", rejudge_run(p, load)))
            except UserError as e:  # the next run may well be fine
                out.append((p, "", e))
    return out


def _identity_model(identity: dict[str, Any]) -> str:
    """The model argument that loads a recorded identity, where it names one without ambiguity."""
    if identity.get("kind") == "embedded" and identity.get("name"):
        return f"embedded:{identity['name']}"
    raise UserError(f"the run's model is {identity}: give --model (and --adapter) to re-judge it")
