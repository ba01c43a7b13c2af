"""Studies: the paper's grid (construct -> train -> evaluate) from one YAML file.

An experiment file names a model, the training tasks, the training conditions
and the evaluation cells.  ``selfexplain reproduce`` walks the grid:

* ``none``: the model as it is;
* ``predictions``: LoRA-trained on the gold labels of the constructed samples
  (section 4.1's "w/ Predictions");
* a style name: LoRA-trained on that style's constructed explanations.

Each trained model (and the untrained one) is evaluated on every evaluation
task, every style and every width listed.  Every stage is one of the resumable,
configuration-hashed runs of :mod:`selfexplain.api`, so a rerun after a kill, or
after adding a cell, computes only what is missing.  ``study.json`` in the
study folder lists every cell with its run folder and wall time; it is what
:mod:`selfexplain.reports.tables` reads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import estimands as E, styles as S
from .errors import NothingToTrain, UserError
from .layout import NONE, PREDICTIONS, STUDY_FILE, Cell, model_key, read_study, study_for_disk  # noqa: F401  (re-exported)
from .locks import folder_lock
from .names import name_problem
from .registry import Registry
from .store import atomic_write, check_output_path, compute_seconds, remove_stale_temporaries


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConstructCfg(_Strict):
    limit: int = Field(500, gt=0)  # source samples (at most, with per_style)
    per_style: int | None = Field(None, gt=0)  # construct until every style has kept this many
    influence: str = "normalised"  # or "raw": the paper's p(ŷ|x) itself (see attribution)
    quality: int = Field(0, ge=0)
    cf_candidates: int = Field(20, ge=0)  # ranked words tried after a rejected counterfactual word (0: drop)
    only_flipping: bool = False  # train only on explanations whose edit flips the prediction
    data: str | dict[str, str] | None = None  # one file, or one per training task
    hub: bool = False

    def data_for(self, task: str) -> str | None:
        return self.data.get(task) if isinstance(self.data, dict) else self.data


class TrainCfg(_Strict):
    mix: float = Field(0.2, ge=0)
    # Instruction chats: None = the offline replay set answered by the base model;
    # a JSONL path, or hub:ID (e.g. hub:allenai/tulu-v2-sft-mixture).
    replay: str | None = None
    # Any TrainSettings field (learning_rate, batch_size, epochs, max_steps, ...) and ``lora: {r, alpha, ...}``.
    settings: dict[str, Any] = {}
    # Training seeds, to measure training variance: a list for every trained condition, or condition -> list.
    # The study's own model of a condition is the one trained with settings.seed (0 unless set); every other
    # seed listed trains one more model, evaluated on the same samples (the seeds table aggregates them).
    seeds: list[int] | dict[str, list[int]] = []

    def seeds_of(self, condition: str) -> list[int]:
        """The further seeds of ``condition`` (not the study's own settings.seed)."""
        listed = self.seeds if isinstance(self.seeds, list) else self.seeds.get(condition, [])
        own = self.settings.get("seed", 0)
        return [s for s in dict.fromkeys(listed) if s != own]


class EvalCfg(_Strict):
    task: str
    widths: list[str] = ["one"]
    limit: int = Field(100, gt=0)
    split: str = "test"
    data: str | None = None
    hub: bool = False
    # Erasure agreement for this cell; None = the experiment's ``erasure``.  It scores every evaluated input's
    # erased variants (a construction's cost per sample), so a study may keep it to the cells that need it.
    erasure: bool | None = None

    @field_validator("widths")
    @classmethod
    def _widths(cls, v: list[str]) -> list[str]:
        bad = [w for w in v if w not in S.WIDTHS]
        if bad:
            raise ValueError(f"unknown width(s) {bad}; use {list(S.WIDTHS)}")
        return v


class VariantCfg(_Strict):
    """A training condition beyond the paper's.

    ``method: sft`` (default): one of the paper's conditions' constructed data (``data``), with other training
    settings, or constructed by another model (``source_model``: coupling; its cells are also judged with that
    model as the classifier).  ``method: grpo`` / ``dpo``: the faithfulness check itself on ``limit`` inputs
    of the training pool in the style ``data`` (:mod:`selfexplain.rl`; ``rl`` holds its options).
    """

    data: str  # the condition whose training data it uses: a style, or "predictions"; grpo/dpo: the style
    method: str = "sft"
    source_model: str | None = None  # sft: construct the data with this model instead
    limit: int | None = Field(None, gt=0)  # grpo/dpo: training inputs (default: construction.per_style or limit)
    rl: dict[str, Any] = {}  # grpo/dpo: RLSettings fields (reward: {invalid, graded, ...})
    settings: dict[str, Any] = {}  # TrainSettings fields over train.settings (e.g. {epochs: 3})
    note: str = ""  # what it probes; the report prints it

    @property
    def constructs(self) -> bool:
        """Whether it trains on this study's own construction."""
        return self.method == "sft" and self.source_model is None


class ReadingCfg(_Strict):
    """How the reading judges a claim, declared before the results are seen (``report`` flags may override it,
    and the report then says so)."""

    primary: Literal["valid", "all", "both-valid", "label-balanced"] = E.VALID
    # The smallest change of interest for a comparison the paper gives no number for: "does not hold" needs
    # the interval below it and a study able to detect it.
    margin: float = Field(E.DEFAULT_MARGIN, gt=0, le=1)
    family: Literal["reading", "table"] = "reading"  # the Holm family


class Experiment(_Strict):
    name: str
    description: str = ""
    model: str = "embedded"
    backend: str = "hf"
    model_args: dict[str, Any] = {}
    seed: int = 0
    chunk_size: int = Field(16, gt=0)  # samples per chunk of every evaluation and construction (and DPO's sampling)
    max_new_tokens: int | None = Field(None, gt=0)  # cap on every explanation (smoke runs)
    erasure: bool = False  # also rank each explanation's words in the model's erasure attribution
    train_tasks: list[str] = []
    conditions: list[str] = [NONE, PREDICTIONS, "attribution", "redaction", "counterfactual"]
    styles: list[str] = ["attribution", "redaction", "counterfactual"]
    construction: ConstructCfg = ConstructCfg()
    train: TrainCfg = TrainCfg()
    # Named extra conditions, listed in ``conditions`` like the paper's; reports label them beyond the paper.
    variants: dict[str, VariantCfg] = {}
    evaluate: list[EvalCfg]
    reading: ReadingCfg = ReadingCfg()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        problem = name_problem(v)  # it names the study folder
        if problem:
            raise ValueError(f"the experiment name {v!r} {problem}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, data: Any) -> Any:
        """``batch_size`` meant the chunk size here; it now names only the training batch (``train.settings``)."""
        if isinstance(data, dict) and "batch_size" in data:
            if "chunk_size" in data:
                raise ValueError("batch_size is the former name of chunk_size: give chunk_size only")
            warnings.warn("experiment field 'batch_size' is now 'chunk_size' (samples per chunk); "
                          "the training batch is train.settings.batch_size", FutureWarning, stacklevel=2)
            data = {("chunk_size" if k == "batch_size" else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _conditions(self) -> "Experiment":
        paper = [NONE, PREDICTIONS, *S.style_names()]
        for name, variant in self.variants.items():
            problem = name_problem(name)  # it names cells, stages and report rows
            if problem or name in paper:
                # Messages name their field themselves: a model-level error has no location of its own.
                raise ValueError(f"field 'variants': the name {name!r} "
                                 + (problem or "is one of the paper's conditions"))
            if variant.data not in (PREDICTIONS, *S.style_names()):
                raise ValueError(f"field 'variants.{name}.data': {variant.data!r} is not a trained condition; "
                                 f"use {[PREDICTIONS, *S.style_names()]}")
            if variant.method not in ("sft", "grpo", "dpo"):
                raise ValueError(f"field 'variants.{name}.method': {variant.method!r}; use sft, grpo or dpo")
            if variant.method != "sft" and (variant.data == PREDICTIONS or variant.source_model):
                raise ValueError(f"field 'variants.{name}': {variant.method} trains one style on the check "
                                 "itself (data: a style; no source_model)")
            if variant.method == "sft" and (variant.rl or variant.limit):
                raise ValueError(f"field 'variants.{name}': rl and limit are for grpo and dpo")
        known = paper + list(self.variants)
        bad = [c for c in self.conditions if c not in known]
        if bad:
            raise ValueError(f"field 'conditions': unknown condition(s) {bad}; use {known}")
        if isinstance(self.train.seeds, dict):
            trained = [c for c in self.conditions if c != NONE]
            bad = [c for c in self.train.seeds if c not in trained]
            if bad:
                raise ValueError(f"field 'train.seeds': {bad} not among the trained conditions {trained}")
        return self

    def trains_on(self, condition: str) -> str:
        """The paper's condition whose constructed data ``condition`` trains on (itself unless a variant)."""
        return self.variants[condition].data if condition in self.variants else condition

    def eval_erasure(self, cell: EvalCfg) -> bool:
        return self.erasure if cell.erasure is None else cell.erasure

    @field_validator("styles")
    @classmethod
    def _styles(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if s not in S.style_names()]
        if bad:
            raise ValueError(f"unknown style(s) {bad}; use {S.style_names()}")
        return v


#: The shipped experiment files (``--preset``), by name; users name their own files by path.
PRESETS: Registry[Path] = Registry("preset", hint=" (or a path to an experiment .yaml)")
for _file in sorted(resources.files("selfexplain").joinpath("presets").iterdir(), key=lambda f: f.name):
    if _file.name.endswith(".yaml"):
        PRESETS.add(_file.name[:-5], Path(str(_file)))


def preset_names() -> list[str]:
    return PRESETS.names()


def load_experiment(name_or_path: str) -> Experiment:
    """A shipped preset by name, or an experiment YAML file.

    Args:
        name_or_path: a preset's name (:data:`PRESETS`) or an experiment ``.yaml`` path.

    Returns:
        The validated experiment.

    Raises:
        UserError: an unknown preset (the message lists them) or a bad file (the message names the file and field).
    """
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = PRESETS.get(name_or_path)
    from .tasks import read_yaml_mapping

    raw = read_yaml_mapping(path, "experiment")
    try:
        return Experiment.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"{path}: field '{where}': {message}" if where else f"{path}: {message}") from None


class Study:
    """The study folder: ``study.json`` (cells, stage times) and ``runs/`` (every run folder)."""

    def __init__(self, root: Path, experiment: Experiment, runs: Path | None = None):
        self.root = root
        self.runs = runs or root / "runs"
        self.experiment = experiment
        self.path = root / STUDY_FILE
        old = read_study(root) if self.path.exists() else {}
        # Stage times survive reruns: a cached stage keeps the time it took when it was computed.
        self.stages: dict[str, dict[str, Any]] = old.get("stages", {})
        # Cells of an earlier version of the experiment file that it no longer lists are dropped.
        expected = {self._cell_key(cond, None if cond == NONE else tt, e.task, w, seed)
                    for cond in experiment.conditions
                    for tt in ([None] if cond == NONE else experiment.train_tasks)
                    for seed in ([None] if cond == NONE else [None, *experiment.train.seeds_of(cond)])
                    for e in experiment.evaluate for w in e.widths}
        self.cells: dict[str, Cell] = {}
        for c in old.get("cells", []):
            key = self._cell_key(c["condition"], c["train_task"], c["eval_task"], c["width"], c.get("seed"))
            if key in expected:
                self.cells[key] = Cell(**c)

    @staticmethod
    def _cell_key(condition: str, train_task: str | None, eval_task: str, width: str, seed: int | None = None) -> str:
        return f"{model_key(condition, train_task, seed)}|{eval_task}|{width}"

    def stage(self, key: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one stage (itself resumable) and record its time.

        The time is the run folder's compute time summed over every process that worked on it
        (:class:`~selfexplain.store.ComputeClock`), so a stage resumed after a kill or continued in a
        later sitting is timed as a whole, and a stage found complete keeps the time it cost.  A run
        folder without that record (training; runs of version 0.1) gets this call's wall time, or the
        time recorded when it was computed.
        """
        start = time.time()
        info = fn()
        seconds = compute_seconds(info["run_dir"]) if info.get("run_dir") else None
        if seconds is None:
            seconds = round(time.time() - start, 1)
            prev = self.stages.get(key)
            if prev and _same_path(prev.get("run_dir"), info.get("run_dir")):
                seconds = prev["seconds"]
        self.stages[key] = {**info, "seconds": seconds}
        self.save()
        return self.stages[key]

    def train(self, key: str, model: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A training stage: as :meth:`stage`, and a model trained into another folder than the one recorded (its
        configuration, data or versions changed) loses the cells evaluated with its earlier adapter, so that no cell
        the new model has not reached yet (its evaluation failed or was cut short) reports the old model's numbers
        under its name."""
        before = self.stages.get(key, {}).get("run_dir")
        result = self.stage(key, fn)
        if before and not _same_path(before, result.get("run_dir")):
            self.forget(model)
        return result

    def forget(self, model: str) -> None:
        """Drop ``model``'s evaluation cells and stages (``model`` as :func:`model_key` spells it)."""
        self.cells = {k: c for k, c in self.cells.items() if not k.startswith(f"{model}|")}
        self.stages = {k: v for k, v in self.stages.items() if not k.startswith(f"evaluate|{model}|")}
        self.save()

    def skip(self, key: str, reason: str) -> None:
        """A stage that found nothing to do (its condition has no model and no cells); the report lists it."""
        self.stages[key] = {"skipped": reason, "seconds": 0.0}
        self.save()

    def add_cell(self, cell: Cell) -> None:
        self.cells[self._cell_key(cell.condition, cell.train_task, cell.eval_task, cell.width, cell.seed)] = cell
        self.save()

    def save(self) -> None:
        study = study_for_disk(self.root, {"experiment": self.experiment.model_dump(), "stages": self.stages,
                                           "cells": [c.for_disk() for c in self.cells.values()]})
        atomic_write(self.path, json.dumps(study, indent=2) + "\n", kept="every completed stage's run folder is kept")


def _cells_need_no_adapter(study: Study, condition: str, task: str, folder: Callable[[], Path],
                           seed: int | None = None) -> bool:
    """Whether a trained model whose adapter is gone (a fresh clone: weights are never committed) can stay
    untrained because all its evaluation cells are complete and would come out the same.

    Only when nothing its results rest on has changed: the recorded training finished (``train_summary.json``)
    in the very folder that training with today's experiment, data, model and versions would use (``folder``:
    it loads the model, trains nothing); each cell is complete (``summary.json``) and its configuration equals
    that of the untrained model's cell just evaluated in this process, but for the adapter (one hash across the
    cells), a reference model (coupling) and the runtime.  Anything else: train as usual.
    """
    exp = study.experiment
    train = study.stages.get(f"train|{model_key(condition, task, seed)}") or {}
    if NONE not in exp.conditions or not train.get("run_dir"):
        return False
    run = Path(train["run_dir"])
    if (run / "adapter").is_dir() or not (run / "train_summary.json").is_file():
        return False  # the adapter is here (reusing it is cheap), or the training never finished
    adapters = set()
    for e in exp.evaluate:
        for width in e.widths:
            cell = study.cells.get(study._cell_key(condition, task, e.task, width, seed))
            base = study.cells.get(study._cell_key(NONE, None, e.task, width))
            if cell is None or base is None or not (Path(cell.run_dir) / "summary.json").is_file():
                return False
            try:
                mine = json.loads((Path(cell.run_dir) / "config.json").read_text(encoding="utf-8"))
                untrained = json.loads((Path(base.run_dir) / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return False
            adapters.add(mine.get("model", {}).pop("adapter", None))
            for config in (mine, untrained):
                config.pop("runtime", None)
                config.pop("reference", None)
            if mine != untrained:
                return False
    if len(adapters) != 1 or None in adapters:
        return False
    expected = folder()
    _release_memory()  # the model that folder() loaded to find the run's identity
    return _same_path(str(expected), str(run))


def _same_path(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and os.path.abspath(a) == os.path.abspath(b)


def reproduce(experiment: Experiment, output_path: str | Path, log: Callable[[str], None] = print,
              runs_path: str | Path | None = None, wait: bool = False, only: list[str] | None = None) -> Path:
    """Run (or continue) an experiment's whole grid: construct, train every condition, evaluate every cell.

    Every run is cached by its configuration, so a rerun computes only what is missing or changed.  The study
    folder is held by this process; another process on it fails at once, or with ``wait`` waits.

    Args:
        experiment: the experiment (:func:`load_experiment`).
        output_path: folder that receives the study folder (named after the experiment).
        log: receives one line per stage.
        runs_path: a run folder shared by several studies (default ``STUDY/runs``); a stage another study is
            computing there is waited for, then reused.
        wait: wait for another process that holds the study instead of failing.
        only: the conditions to compute this time (their construction included); every other condition's
            cells and stages stay as ``study.json`` records them.

    Returns:
        The study folder.

    Raises:
        UserError: a bad experiment or a failed stage's input, in one line; every completed stage is kept.
    """
    check_output_path(output_path)
    unknown = [c for c in only or [] if c not in experiment.conditions]
    if unknown:
        raise UserError(f"experiment {experiment.name}: --conditions: {', '.join(unknown)} not among its conditions "
                        f"({', '.join(experiment.conditions)})")
    root = Path(output_path) / experiment.name
    with folder_lock(root, "this study", wait=wait, on_wait=log):
        remove_stale_temporaries(root)
        return _reproduce(experiment, root, log, Path(runs_path) if runs_path else None, wait or runs_path is not None,
                          only)


def _reproduce(exp: Experiment, root: Path, log: Callable[[str], None], runs_path: Path | None, wait: bool,
               only: list[str] | None = None) -> Path:
    """reproduce's grid, inside its study folder (which this process holds)."""
    from . import api
    from .backends import load_backend
    from .tasks import get_task
    from .training import LoraSettings, TrainSettings

    study = Study(root, exp, runs_path)
    for t in exp.train_tasks:
        if not get_task(t).training_allowed:
            raise UserError(f"experiment {exp.name}: train_tasks: {t} is evaluation-only")
    for e in exp.evaluate:
        get_task(e.task)
    def train_settings(condition: str) -> Any:
        variant = exp.variants.get(condition)
        raw = {**exp.train.settings, **(variant.settings if variant else {})}
        where = f"variants.{condition}.settings" if variant else "train.settings"
        try:
            return TrainSettings(**{**raw, "lora": LoraSettings(**raw.pop("lora", {}))})
        except TypeError as e:
            raise UserError(f"experiment {exp.name}: {where}: {e}") from None

    settings = {c: train_settings(c) for c in exp.conditions if c != NONE}  # every error before any compute
    trained = [c for c in exp.conditions if c != NONE]
    if trained and not exp.train_tasks:
        raise UserError(f"experiment {exp.name}: conditions {trained} need train_tasks")
    if only is not None:
        trained = [c for c in trained if c in only]

    started = time.time()
    log(f"loading {exp.model} ({exp.backend})")
    base = load_backend(exp.backend, exp.model, **exp.model_args)
    log(f"model ready in {time.time() - started:.0f}s")

    def evaluate_model(condition: str, train_task: str | None, backend: Any, adapter: str | None,
                       seed: int | None = None) -> None:
        args = {**exp.model_args, **({"adapter": adapter} if adapter else {})}
        source = exp.variants[condition].source_model if condition in exp.variants else None
        # A model trained on another model's explanations is also judged against that model (coupling).
        reference = load_backend("hf", source) if source else None
        for e in exp.evaluate:
            for width in e.widths:
                key = f"evaluate|{model_key(condition, train_task, seed)}|{e.task}|{width}"
                log(f"{key}: {e.limit} samples")
                info = study.stage(key, lambda: {"run_dir": str(api.evaluate(
                    model=exp.model, task=e.task, styles=exp.styles, width=width, limit=e.limit, seed=exp.seed,
                    split=e.split, chunk_size=exp.chunk_size, output_path=study.runs, data=e.data, hub=e.hub,
                    backend=exp.backend, model_args=args, backend_instance=backend,
                    max_new_tokens=exp.max_new_tokens, erasure=exp.eval_erasure(e), wait=wait,
                    reference_instance=reference).run_dir)})
                study.add_cell(Cell(condition, train_task, e.task, width, info["run_dir"], info["seconds"], seed))

    if NONE in exp.conditions and (only is None or NONE in only):
        evaluate_model(NONE, None, base, None)

    built: dict[tuple[str, str | None], dict[str, Any]] = {}  # (task, source model or None for the study's own)
    sources = list(dict.fromkeys(v.source_model for c, v in exp.variants.items() if c in trained and v.source_model))
    if trained:
        for task in exp.train_tasks:
            log(f"construct|{task}: {exp.construction.limit} samples")
            built[task, None] = study.stage(f"construct|{task}",
                                            lambda: _construct(api, exp, task, base, study.runs, wait))
            for source in sources:
                log(f"construct|{task}|{source}: {exp.construction.limit} samples")
                built[task, source] = study.stage(f"construct|{task}|{source}", lambda: _construct(
                    api, exp, task, None, study.runs, wait, model=source))
    # Training loads its own copy of the weights: free the inference copy first (a 7B model twice may not fit a GPU).
    base = None  # rebound, not deleted: the stage lambdas above close over the name
    _release_memory()

    def evaluate_adapter(condition: str, task: str, adapter: str, engine: Any = None, seed: int | None = None) -> Any:
        """Evaluate one trained model; returns the engine to reuse for the next adapter (vLLM), else None."""
        if engine is not None and hasattr(engine, "with_adapter"):
            backend = engine.with_adapter(adapter)
        else:
            started = time.time()
            backend = load_backend(exp.backend, exp.model, **{**exp.model_args, "adapter": adapter})
            log(f"model with adapter ready in {time.time() - started:.0f}s")
            engine = backend if hasattr(backend, "with_adapter") else None
        evaluate_model(condition, task, backend, adapter, seed)
        del backend
        _release_memory()
        return engine

    # A backend that loads the model once per adapter (hf) evaluates each trained model as soon as it is
    # trained, so a study cut short has whole conditions (the paper's first) rather than only adapters.  One that
    # serves every adapter from one engine (vLLM) evaluates after all training: its engine holds the GPU memory
    # that training would need.
    interleave = exp.backend != "vllm"
    adapters = []
    for task in exp.train_tasks if trained else []:
        for condition in trained:
            key = f"train|{model_key(condition, task)}"
            log(key)
            variant = exp.variants.get(condition)
            if variant is not None and variant.method != "sft":
                rl_args = _train_rl_args(exp, task, variant, settings[condition], study.runs)
                folder = lambda: api.train_rl_folder(variant.method, **rl_args)  # noqa: E731
            else:
                style = exp.trains_on(condition)
                data = built[task, variant.source_model if variant else None]["files"][
                    "attribution" if style == PREDICTIONS else style]
                sft_args = _train_args(exp, data, style, settings[condition], study.runs)
                folder = lambda: api.train_folder(**sft_args)  # noqa: E731
            if _cells_need_no_adapter(study, condition, task, folder):
                # A fresh clone of a committed study has no adapter weights (never committed): retraining one only
                # to find its cells complete would cost its whole training time.
                log(f"{key}: every evaluation cell of this model is complete; its adapter is not needed "
                    "and not retrained")
                continue
            if variant is not None and variant.method != "sft":
                try:
                    result = study.train(key, model_key(condition, task), lambda: _train_rl(
                        api, variant.method, rl_args, exp.chunk_size, wait))
                except NothingToTrain as e:
                    # The rest of the grid still runs; the stage table and the cells table say what is missing.
                    log(f"{key}: skipped: {e}")
                    study.skip(key, str(e))
                    continue
            else:
                result = study.train(key, model_key(condition, task), lambda: _train(api, sft_args, wait))
            if interleave:
                evaluate_adapter(condition, task, result["adapter"])
            else:
                adapters.append((condition, task, result["adapter"]))
    engine = None  # a backend that can switch adapters (vLLM) is started once for all of them
    for condition, task, adapter in adapters:
        engine = evaluate_adapter(condition, task, adapter, engine)
    # Further training seeds, after every condition's own model: a study cut short has whole conditions first.
    # As above, an engine serving every adapter (vLLM) evaluates only after all training, and the one used for the
    # conditions' own adapters is closed first: training needs the memory it holds.
    if engine is not None and hasattr(engine, "close") and any(exp.train.seeds_of(c) for c in trained):
        engine.close()
        engine = None
    seeded_adapters = []
    for task in exp.train_tasks if trained else []:
        for condition in trained:
            for seed in exp.train.seeds_of(condition):
                key = f"train|{model_key(condition, task, seed)}"
                log(key)
                seeded = dataclasses.replace(settings[condition], seed=seed)
                variant = exp.variants.get(condition)
                rl = variant is not None and variant.method != "sft"
                if rl:
                    args = _train_rl_args(exp, task, variant, seeded, study.runs)
                    folder = lambda: api.train_rl_folder(variant.method, **args)  # noqa: E731
                else:
                    style = exp.trains_on(condition)
                    data = built[task, variant.source_model if variant else None]["files"][
                        "attribution" if style == PREDICTIONS else style]
                    args = _train_args(exp, data, style, seeded, study.runs)
                    folder = lambda: api.train_folder(**args)  # noqa: E731
                if _cells_need_no_adapter(study, condition, task, folder, seed):
                    log(f"{key}: every evaluation cell of this model is complete; its adapter is not needed "
                        "and not retrained")
                    continue
                if rl:
                    result = study.train(key, model_key(condition, task, seed), lambda: _train_rl(
                        api, variant.method, args, exp.chunk_size, wait))
                else:
                    result = study.train(key, model_key(condition, task, seed), lambda: _train(api, args, wait))
                if interleave:
                    evaluate_adapter(condition, task, result["adapter"], seed=seed)
                else:
                    seeded_adapters.append((condition, task, result["adapter"], seed))
    for condition, task, adapter, seed in seeded_adapters:
        engine = evaluate_adapter(condition, task, adapter, engine, seed)
    log(f"study complete: {root}")
    return root


SMOKE_MODEL = "standin:tulu-tiny"  # Tulu-2's shape (Llama, BOS, Tulu template); outputs mean nothing
SMOKE_TOKENS = 16
SMOKE_DIR = "smoke"  # presets/smoke/: a few synthetic examples per task in its canonical file format


def smoke_data(task: str) -> str:
    """The bundled toy file of a task in its canonical format (the task's own data if it ships in a package)."""
    from .tasks import get_task

    spec = get_task(task)
    if spec.source.package:
        return ""  # installed with selfexplain (tweets): the real data, read locally
    suffix = {"csv": ".csv", "jsonl": ".jsonl", "json": ".json", "bigbench": ".json"}[spec.source.format]
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
    from .tasks import get_task

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
    return exp.model_copy(deep=True, update={
        "name": f"{exp.name}-smoke",
        "description": f"Smoke run of {exp.name}: {exp.description}"
                       + (f" (DPO variants left out at toy size: {', '.join(dpo)})" if dpo else ""),
        "conditions": [c_ for c_ in exp.conditions if c_ not in dpo],
        "model": model or SMOKE_MODEL, "backend": "hf", "model_args": {},
        "chunk_size": 4, "max_new_tokens": SMOKE_TOKENS,
        "construction": c.model_copy(update={
            "limit": 2 * max((n_labels[t] for t in exp.train_tasks), default=2),
            "per_style": 1 if c.per_style else None, "quality": min(c.quality, 2), "hub": False,
            "data": {t: smoke_data(t) or None for t in exp.train_tasks}}),
        "train": exp.train.model_copy(update={
            "replay": None if (exp.train.replay or "").startswith("hub:") else exp.train.replay,
            "settings": {**exp.train.settings, **tiny},
            # One further seed of one condition checks that stage; more would only multiply the toy run.
            "seeds": next(({c_: exp.train.seeds_of(c_)[:1]} for c_ in exp.conditions
                           if c_ != NONE and c_ not in dpo and exp.train.seeds_of(c_)), {})}),
        "variants": variants,
        "evaluate": [e.model_copy(update={"limit": n_labels[e.task], "hub": False, "split": "test",
                                          "data": smoke_data(e.task) or None}) for e in exp.evaluate],
    })


def _release_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # a backend without torch
        pass


def _construct(api: Any, exp: Experiment, task: str, backend: Any, runs: Path, wait: bool,
               model: str | None = None) -> dict[str, Any]:
    """The construction run of ``task``: by the study's model, or (``model``) by the source of coupled variants."""
    c = exp.construction
    if model is None:
        sources = [exp.trains_on(s) for s in exp.conditions if s not in exp.variants or exp.variants[s].constructs]
    else:
        sources = [v.data for n, v in exp.variants.items() if n in exp.conditions and v.source_model == model]
    trained = [s for s in dict.fromkeys(sources) if s in S.style_names()]
    if PREDICTIONS in sources and "attribution" not in trained:
        trained.append("attribution")  # the predictions baseline trains on the attribution file's samples
    res = api.construct(model=model or exp.model, task=task, limit=c.limit, seed=exp.seed, chunk_size=exp.chunk_size,
                        output_path=runs, data=c.data_for(task), hub=c.hub,
                        backend="hf" if model else exp.backend, model_args={} if model else exp.model_args,
                        quality=c.quality, backend_instance=backend, per_style=c.per_style, influence=c.influence,
                        max_new_tokens=exp.max_new_tokens, styles=trained, wait=wait, cf_candidates=c.cf_candidates,
                        only_flipping=c.only_flipping)
    if res.stats["train_size"] == 0:
        raise UserError(f"construct|{task}: {res.stats['sizes_note']}: nothing to train on "
                        f"(see {res.run_dir / 'construction.md'})")
    return {"run_dir": str(res.run_dir), "files": {k: str(v) for k, v in res.files.items()},
            "kept": {k: v["kept"] for k, v in res.stats["styles"].items()}, "train_size": res.stats["train_size"]}


def _train_rl_args(exp: Experiment, task: str, variant: VariantCfg, settings: Any, runs: Path) -> dict[str, Any]:
    """The arguments of ``api.train_rl`` (but the method) for one RL variant."""
    from .rewards import RewardSettings
    from .rl import RLSettings

    raw = dict(variant.rl)
    try:
        rl = RLSettings(**{**raw, "style": variant.data, "reward": RewardSettings(**raw.pop("reward", {}))})
    except (TypeError, ValueError) as e:
        raise UserError(f"experiment {exp.name}: variants: rl: {e}") from None
    c = exp.construction
    return dict(task=task, model=exp.model, limit=variant.limit or c.per_style or c.limit, seed=exp.seed,
                data=c.data_for(task), hub=c.hub, output_path=runs, model_args=exp.model_args, settings=settings, rl=rl)


def _train_rl(api: Any, method: str, args: dict[str, Any], chunk_size: int, wait: bool) -> dict[str, Any]:
    res = api.train_rl(method, **args, chunk_size=chunk_size, wait=wait)
    s = res.summary
    curves = s.get("curves", {})
    return {"run_dir": str(res.run_dir), "adapter": str(res.adapter), "method": method,
            "steps": s.get("steps"), "n_task": s.get("n_task"), "pairs": s.get("pairs"),
            "reward_first": (curves.get("reward") or [None])[0], "reward_last": (curves.get("reward") or [None])[-1],
            "loss_first": (s.get("losses") or [None])[0], "loss_last": (s.get("losses") or [None])[-1]}


def _train_args(exp: Experiment, data: str, condition: str, settings: Any, runs: Path) -> dict[str, Any]:
    """The arguments of ``api.train`` for one condition trained on ``data`` (a constructed training file)."""
    return dict(data=[data], model=exp.model, mix_ratio=exp.train.mix,
                baseline=PREDICTIONS if condition == PREDICTIONS else None, output_path=runs,
                model_args=exp.model_args, settings=settings, replay=exp.train.replay)


def _train(api: Any, args: dict[str, Any], wait: bool) -> dict[str, Any]:
    res = api.train(**args, wait=wait)
    s = res.summary
    return {"run_dir": str(res.run_dir), "adapter": str(res.adapter), "steps": s.get("steps"),
            "n_task": s.get("n_task"), "n_replay": s.get("n_replay"),
            "samples_per_second": s.get("train_samples_per_second"),
            "loss_first": (s.get("losses") or [None])[0], "loss_last": (s.get("losses") or [None])[-1]}
