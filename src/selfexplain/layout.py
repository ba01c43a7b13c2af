"""Run and study folders as they sit on disk: the vocabulary shared by the pipeline that writes them
and the reports that read them.

A study folder holds ``study.json`` (the experiment, stage times and one :class:`Cell` per
evaluation) and ``runs/`` (every run folder).  Conditions are ``none``, ``predictions`` or a style
name; a trained model is named ``condition@train_task``.  This module imports nothing of the
pipeline, so :mod:`selfexplain.reports` can read folders without importing what wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def model_key(condition: str, train_task: str | None) -> str:
    return NONE if condition == NONE else f"{condition}@{train_task}"


def read_study(root: str | Path) -> dict[str, Any]:
    path = Path(root) / STUDY_FILE
    if not path.exists():
        raise UserError(f"{root}: not a study folder (no {STUDY_FILE}; make one with selfexplain reproduce)")
    return read_json(path)


def constructed_faithful(record: dict[str, Any], style: str) -> bool | None:
    """Whether a constructed explanation (a ``construct`` record) flips the prediction (None when dropped)."""
    a, c = record["attribution"], record["constructed"][style]
    if c["explanation"] is None:
        return None
    if style == "counterfactual":
        return record["cf_new_prediction"] != a["prediction"]
    return a["erased_predictions"][a["w_star_index"]] != a["prediction"]
