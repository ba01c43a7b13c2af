"""Run and study folders as they sit on disk: the vocabulary shared by the pipeline that writes them
and the reports that read them.

A study folder holds ``study.json`` (the experiment, stage times and one :class:`Cell` per
evaluation) and ``runs/`` (every run folder).  Conditions are ``none``, ``predictions`` or a style
name; a trained model is named ``condition@train_task``.  This module imports nothing of the
pipeline, so :mod:`selfexplain.reports` can read folders without importing what wrote them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import UserError
from .store import read_json

NONE, PREDICTIONS = "none", "predictions"
STUDY_FILE = "study.json"
MAX_N = 5  # the paper's per-N breakdown covers N = 1..5


@dataclass
class Cell:
    """One evaluation of one model: what was trained, on what, and where the records are."""

    condition: str
    train_task: str | None
    eval_task: str
    width: str
    run_dir: str
    seconds: float
    # A further training seed of the condition (``train.seeds``); None: the study's own model of it, the one every
    # table reads.  Each seed's model is evaluated on the same samples.
    seed: int | None = None

    def for_disk(self) -> dict[str, Any]:
        """Its study.json entry (``seed`` only where there is one, so older studies keep their form)."""
        return {k: v for k, v in self.__dict__.items() if k != "seed" or v is not None}


def model_key(condition: str, train_task: str | None, seed: int | None = None) -> str:
    """``condition@task``, or ``condition@task#seed2`` for a further training seed's model."""
    key = NONE if condition == NONE else f"{condition}@{train_task}"
    return key if seed is None else f"{key}#seed{seed}"


# study.json format 2 stores every path relative to the study folder, so a study can be moved, copied or
# committed; version 0.1 (no "format") stored them as written, absolute or relative to the current folder.
STUDY_FORMAT = 2
PATH_KEYS = ("run_dir", "adapter")  # in cells and stages; a stage's "files" maps names to paths


def read_study(root: str | Path) -> dict[str, Any]:
    """``study.json`` with every stored path resolved against the study folder (never the current folder)."""
    root = Path(root)
    path = root / STUDY_FILE
    if not path.exists():
        raise UserError(f"{root}: not a study folder (no {STUDY_FILE}; make one with selfexplain reproduce)")
    study = read_json(path)
    if not isinstance(study, dict) or not isinstance(study.get("cells", []), list):
        raise UserError(f"{path}: not a study file (no list of cells)")
    old = study.get("format", 1) < STUDY_FORMAT
    resolve = (lambda p: _resolve_v1(root, p)) if old else (lambda p: str(root / p))
    study["cells"] = [_map_paths(c, resolve) for c in study.get("cells", [])]
    study["stages"] = {k: _map_paths(v, resolve) for k, v in study.get("stages", {}).items()}
    return study


def study_for_disk(root: str | Path, study: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`read_study`: paths relative to the study folder, and the format number."""
    root = os.path.abspath(root)
    rel = lambda p: os.path.relpath(os.path.abspath(p), root)  # noqa: E731
    return {
        "format": STUDY_FORMAT,
        **{k: v for k, v in study.items() if k not in ("cells", "stages", "format")},
        "stages": {k: _map_paths(v, rel) for k, v in study["stages"].items()},
        "cells": [_map_paths(c, rel) for c in study["cells"]],
    }


def _map_paths(entry: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    out = dict(entry)
    for key in PATH_KEYS:
        if isinstance(out.get(key), str):
            out[key] = fn(out[key])
    if isinstance(out.get("files"), dict):
        out["files"] = {k: fn(v) for k, v in out["files"].items()}
    return out


def _resolve_v1(root: Path, stored: str) -> str:
    """A path from a version-0.1 study.json: the study's own copy under runs/ first (a run folder, or a file in
    one), so a copied study never reads the original's records; else an absolute path as stored (a shared
    --runs-path); else under the study."""
    p = Path(stored)
    for local in (root / "runs" / p.name, root / "runs" / p.parent.name / p.name):
        if local.exists():
            return str(local)
    return str(p if p.is_absolute() else root / p)


def constructed_faithful(record: dict[str, Any], style: str) -> bool | None:
    """Whether a constructed explanation (a ``construct`` record) flips the prediction (None when dropped)."""
    a, c = record["attribution"], record["constructed"][style]
    if c["explanation"] is None:
        return None
    if c.get("flips") is not None:  # recorded since construction records it
        return bool(c["flips"])
    if style == "counterfactual":
        return record["cf_new_prediction"] != a["prediction"]
    return a["erased_predictions"][a["w_star_index"]] != a["prediction"]


@dataclass(frozen=True)
class RunStatus:
    """What an evaluation run folder holds against what its configuration asks for."""

    held: int  # complete records
    expected: int | None  # samples x styles; None when the folder has no readable config.json
    torn: bool  # the last line was cut short (a killed run)
    finished: bool  # summary.json was written after the last chunk

    @property
    def complete(self) -> bool:
        return self.finished and not self.torn and self.held == self.expected

    def describe(self) -> str:
        if self.complete:
            return f"{self.held} records, complete"
        of = f"{self.held}/{self.expected}" if self.expected is not None else f"{self.held}"
        if self.torn:
            why = "the last line is cut short"
        elif not self.finished:
            why = "run incomplete"
        else:
            why = (
                "records are missing"
                if self.expected is None or self.held < self.expected
                else "more records than samples"
            )
        return f"{of} records, {why}"


def run_status(run_dir: str | Path) -> RunStatus:
    """Count an evaluation run's records; a finished run's summary says how many samples it drew."""
    run_dir = Path(run_dir)
    records, held, torn = run_dir / "records.jsonl", 0, False
    if records.exists():
        data = records.read_bytes()
        held, torn = data.count(b"\n"), bool(data) and not data.endswith(b"\n")
    config = read_json(run_dir / "config.json") if (run_dir / "config.json").exists() else None
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else None
    expected = None
    if isinstance(config, dict) and isinstance(config.get("styles"), list):
        samples = (summary or {}).get("n_samples", (config.get("data") or {}).get("limit"))
        expected = samples * len(config["styles"]) if isinstance(samples, int) else None
    return RunStatus(held, expected, torn, summary is not None)
