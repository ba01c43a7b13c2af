"""Studies: the paper's grid (construct -> train -> evaluate) from one YAML file.

An experiment file names a model, the training tasks, the training conditions and the evaluation cells.
``selfexplain reproduce`` walks the grid:

* ``none``: the model as it is;
* ``predictions``: LoRA-trained on the gold labels of the constructed samples (section 4.1's "w/ Predictions");
* a style name: LoRA-trained on that style's constructed explanations.

Each trained model (and the untrained one) is evaluated on every evaluation task, every style and every width
listed.  This module is the facade of :mod:`selfexplain.study`: ``config`` (the experiment file's schema and the
presets), ``folder`` (``study.json``), ``grid`` (``reproduce``) and ``smoke``.
"""

from __future__ import annotations

from .layout import NONE, PREDICTIONS, STUDY_FILE, Cell, model_key, read_study, study_for_disk
from .study.config import (
    PRESETS,
    ConstructCfg,
    EvalCfg,
    Experiment,
    ReadingCfg,
    TrainCfg,
    VariantCfg,
    load_experiment,
    preset_names,
)
from .study.folder import Study
from .study.grid import reproduce
from .study.smoke import SMOKE_MODEL, smoke, smoke_data

__all__ = [
    "Experiment",
    "ConstructCfg",
    "TrainCfg",
    "EvalCfg",
    "VariantCfg",
    "ReadingCfg",
    "PRESETS",
    "preset_names",
    "load_experiment",
    "Study",
    "reproduce",
    "smoke",
    "smoke_data",
    "SMOKE_MODEL",
    "NONE",
    "PREDICTIONS",
    "STUDY_FILE",
    "Cell",
    "model_key",
    "read_study",
    "study_for_disk",
]
