"""The study folder: ``study.json`` (cells and stage times, resumable) and ``runs/``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from ..layout import NONE, STUDY_FILE, Cell, model_key, read_study, study_for_disk
from ..store import atomic_write, compute_seconds
from .config import Experiment


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
        expected = {
            self._cell_key(cond, None if cond == NONE else tt, e.task, w, seed)
            for cond in experiment.conditions
            for tt in ([None] if cond == NONE else experiment.train_tasks)
            for seed in ([None] if cond == NONE else [None, *experiment.train.seeds_of(cond)])
            for e in experiment.evaluate
            for w in e.widths
        }
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
            if prev and same_path(prev.get("run_dir"), info.get("run_dir")):
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
        if before and not same_path(before, result.get("run_dir")):
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
        study = study_for_disk(
            self.root,
            {
                "experiment": self.experiment.model_dump(),
                "stages": self.stages,
                "cells": [c.for_disk() for c in self.cells.values()],
            },
        )
        atomic_write(self.path, json.dumps(study, indent=2) + "\n", kept="every completed stage's run folder is kept")


def cells_need_no_adapter(
    study: Study, condition: str, task: str, folder: Callable[[], Path], seed: int | None = None
) -> bool:
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
    release_memory()  # the model that folder() loaded to find the run's identity
    return same_path(str(expected), str(run))


def same_path(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and os.path.abspath(a) == os.path.abspath(b)


def release_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # a backend without torch
        pass
