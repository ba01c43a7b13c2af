"""The ``cot`` command: a chain-of-thought test of one model on one task, resumable, one run folder per test family.

``cue`` (cue verbalization) has its run folder; the perturbations (``early-answer``, ``filler``, ``mistake``,
``paraphrase``) share one, since they change the same reasoning.  What each measures: :mod:`selfexplain.cot`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..backends import Backend, load_backend
from ..cot.cues import cue_names, get_cue
from ..cot.evaluate import (
    NEEDS_HELPER,
    OPTIONAL_KEYS,
    PERTURBATIONS,
    REASONING_TOKENS,
    RESAMPLE_TEMPERATURE,
    cue_chunk,
    perturb_chunk,
    summarize_cues,
    summarize_perturbations,
)
from ..errors import UserError
from ..evaluation import chunks
from ..reports.cot import cot_markdown
from ..tasks import TaskSpec, get_task
from .runs import Hooks, check_sizes, data_config, load_for_run, open_run, sample_examples

CUE = "cue"
TESTS = (CUE, *PERTURBATIONS)


@dataclass
class CotResult:
    run_dir: Path
    summary: dict[str, Any]
    records: list[dict[str, Any]]


def resolve_tests(tests: list[str] | str) -> list[str]:
    """The tests of one run: ``cue`` alone, or any perturbations together (their order fixed)."""
    names = [t.strip() for part in ([tests] if isinstance(tests, str) else tests) for t in part.split(",") if t.strip()]
    unknown = [t for t in names if t not in TESTS]
    if unknown or not names:
        raise UserError(f"--test: {', '.join(unknown) or 'none given'}: use cue or {', '.join(PERTURBATIONS)}")
    if CUE in names and len(names) > 1:
        raise UserError("--test: run cue apart from the perturbations (each family has its own run folder)")
    return [t for t in TESTS if t in names]


def resolve_cues(cues: list[str] | str | None) -> list[str]:
    if cues is None or cues == "all" or cues == ["all"]:
        return cue_names()
    names = [c.strip() for part in ([cues] if isinstance(cues, str) else cues) for c in part.split(",") if c.strip()]
    for name in names:
        get_cue(name)  # an unknown name: one line listing the known ones
    return list(dict.fromkeys(names))


def cot(
    test: list[str] | str = CUE,
    model: str = "embedded",
    task: str | TaskSpec = "tweets",
    cues: list[str] | str | None = None,
    limit: int = 100,
    seed: int = 0,
    split: str = "test",
    chunk_size: int = 8,
    output_path: str | Path = "runs",
    data: str | None = None,
    hub: bool = False,
    backend: str = "hf",
    model_args: dict[str, Any] | None = None,
    backend_instance: Backend | None = None,
    max_new_tokens: int = REASONING_TOKENS,
    control: bool = True,
    other: bool | None = None,
    resamples: int = 0,
    temperature: float = RESAMPLE_TEMPERATURE,
    judge_model: str | None = None,
    judge_backend: str = "hf",
    judge_args: dict[str, Any] | None = None,
    judge_instance: Backend | None = None,
    helper_model: str | None = None,
    helper_backend: str = "hf",
    helper_args: dict[str, Any] | None = None,
    helper_instance: Backend | None = None,
    hooks: Hooks | None = None,
    wait: bool = False,
) -> CotResult:
    """Run a chain-of-thought test: cue verbalization, or perturbations of the model's own reasoning.

    Args:
        test: ``cue``, or one or more of ``early-answer``, ``filler``, ``mistake``, ``paraphrase``.
        model: ``embedded[:NAME]``, a ``.gguf`` file, a model folder or a hub id.
        task: a registered task's name, a task ``.yaml`` path, or a :class:`~selfexplain.tasks.TaskSpec`.
        cues: the cue test's cues (default: every registered cue).
        limit: samples, drawn class-balanced with ``seed`` from ``split``.
        seed: the sampling seed (and the cued labels', demonstrations' and corrupted sentences').
        split: the pool to sample from (``test``, ``train`` or ``all``).
        chunk_size: samples per chunk (the unit of resumption).
        output_path: folder that receives the run folder.
        data: a data file in the task's canonical format.
        hub: load the task's data set from the Hugging Face hub.
        backend: a registered backend's name.
        model_args: the backend's model arguments.
        backend_instance: an already loaded backend.
        max_new_tokens: the reasoning's token budget (a reasoning cut by it is counted as truncated).
        control: the cue test also asks each question with the cue naming the model's own answer.
        other: the cue test also asks it with the cue naming a third label, a wrong label besides the cued one
            (None: where the task has one).
        resamples: the cue test also samples that many uncued reasonings per sample (at ``temperature``) and
            forces their answers: how often the cued label comes up without any cue.
        temperature: the resampled reasonings' sampling temperature.
        judge_model: a judge model that also decides, for each cued reasoning, whether it mentions the cue.
        judge_backend / judge_args / judge_instance: how to load it.
        helper_model: the model that writes mistakes and paraphrases (``mistake``, ``paraphrase``).
        helper_backend / helper_args / helper_instance: how to load it.
        hooks: progress callbacks.
        wait: wait for another process writing the same run folder instead of failing.

    Returns:
        The run folder, its summary (``summary.json``) and its records.

    Raises:
        UserError: a bad argument, in one line, before any model loads where it can be checked without it.
    """
    hooks = hooks or Hooks()
    tests = resolve_tests(test)
    cue_list = resolve_cues(cues) if tests == [CUE] else []
    if not isinstance(max_new_tokens, int) or max_new_tokens <= 0:
        raise UserError(f"--max-new-tokens must be a positive whole number, not {max_new_tokens!r}")
    wants_helper = [t for t in tests if t in NEEDS_HELPER]
    if wants_helper and helper_model is None and helper_instance is None:
        raise UserError(f"--test {','.join(wants_helper)} needs a helper model (--helper-model) to write them")
    spec = get_task(task) if isinstance(task, str) else task
    if cue_list and len(spec.labels) < 2:
        raise UserError(f"task {spec.name}: the cue test needs at least two labels")
    if other and len(spec.labels) < 3:
        raise UserError(f"--other-label: task {spec.name} has no wrong label besides the cued one (two labels)")
    other = bool(cue_list) and len(spec.labels) >= 3 if other is None else other and bool(cue_list)
    if not isinstance(resamples, int) or resamples < 0:
        raise UserError(f"--resamples must be a whole number >= 0, not {resamples!r}")
    if resamples and not (isinstance(temperature, (int, float)) and temperature > 0):
        raise UserError(f"--temperature must be above 0 to sample, not {temperature!r}")
    resamples = resamples if cue_list else 0
    check_sizes(chunk_size, output_path)
    examples = sample_examples(spec, limit, seed, data, hub, split)
    be = load_for_run(backend, model, model_args, backend_instance, hooks)
    if resamples and type(be).sample is Backend.sample:
        be.sample([], [], temperature, [])  # its one-line refusal, before any sample is run
    judge = None
    if cue_list:  # only the cue test has anything to judge
        judge = judge_instance or (
            load_backend(judge_backend, judge_model, **judge_args or {}) if judge_model else None
        )
    helper = None
    if wants_helper:
        helper = helper_instance or load_backend(helper_backend, helper_model or "", **(helper_args or {}))
    settings: dict[str, Any] = {
        "tests": tests,
        "batch_size": chunk_size,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        **({"cues": cue_list, "control": control} if cue_list else {}),
        # the optional controls enter the run's identity only when asked, so a run without them keeps its folder
        **({"other": True} if other else {}),
        **({"resamples": resamples, "temperature": temperature} if resamples else {}),
        **({"judge": judge.identity} if judge else {}),
        **({"helper": helper.identity} if helper else {}),
    }
    family = "cot-cue" if cue_list else "cot-perturb"
    with open_run(
        family,
        spec,
        examples,
        be,
        backend,
        data_config(data, hub, split, seed, limit),
        output_path,
        settings,
        hooks,
        wait,
    ) as store:
        if cue_list:
            pool = [(ex.id, ex.text, ex.context, ex.label) for ex in examples]
            cue_objs = [get_cue(c) for c in cue_list]

            asked = {"other": other, "resamples": resamples}
            off = {k for name, on in asked.items() if not on for k in OPTIONAL_KEYS[name]}

            def compute(c: int, part: list[Any]) -> list[dict[str, Any]]:
                rs = cue_chunk(
                    be, spec, part, cue_objs, pool, seed, max_new_tokens, control, judge, other, resamples, temperature
                )
                return [{k: v for k, v in asdict(r).items() if k not in off} for r in rs]

            records = store.process(
                chunks(examples, chunk_size), lambda p: len(p) * len(cue_objs), compute, hooks.on_chunk
            )
            summary: dict[str, Any] = {
                "test": CUE,
                "task": spec.name,
                "model": be.identity,
                "cues": summarize_cues(records, seed),
                **({"temperature": temperature} if resamples else {}),
            }
        else:

            def perturb(c: int, part: list[Any]) -> list[dict[str, Any]]:
                return [asdict(r) for r in perturb_chunk(be, spec, part, tests, seed, max_new_tokens, helper)]

            records = store.process(chunks(examples, chunk_size), len, perturb, hooks.on_chunk)
            summary = {
                "test": "perturb",
                "task": spec.name,
                "model": be.identity,
                "tests": tests,
                "perturbations": summarize_perturbations(records, tests, seed),
            }
        summary["judge"] = judge.identity if judge else None
        summary["helper"] = helper.identity if helper else None
        store.write_json("summary.json", summary)
        store.write_text("summary.md", cot_markdown(summary, model))
    return CotResult(store.path, summary, records)
