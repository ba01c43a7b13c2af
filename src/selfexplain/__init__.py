"""selfexplain: measure and train the faithfulness of LLM self-explanations.

The public surface is this package's ``__all__``: the commands as functions (:func:`evaluate`, :func:`attribute`,
:func:`construct`, :func:`train`, :func:`train_rl`, :func:`rejudge`, :func:`cot`, :func:`reproduce`,
:func:`write_study_report`),
their results, the registries of tasks, styles, backends and presets with their ``register_*`` and ``get_*``
functions, and the base classes a user extends.  Everything else is internal and may change between versions.

Importing the package is cheap: each name loads its module on first use (torch only when a model loads).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it; loaded on first access (PEP 562), so `import selfexplain` costs nothing.
_EXPORTS: dict[str, str] = {
    # the commands
    "evaluate": "api",
    "attribute": "api",
    "construct": "api",
    "train": "api",
    "train_rl": "api",
    "rejudge": "api",
    "cot": "api",
    "reproduce": "experiments",
    "load_experiment": "experiments",
    "write_study_report": "reports",
    # their results and progress hooks
    "EvalResult": "api",
    "AttributeResult": "api",
    "ConstructResult": "api",
    "TrainResult": "api",
    "CotResult": "api",
    "Hooks": "api",
    "Experiment": "experiments",
    # registries
    "Registry": "registry",
    "TASKS": "tasks",
    "STYLES": "styles",
    "BACKENDS": "backends",
    "PRESETS": "experiments",
    "register_task": "tasks",
    "get_task": "tasks",
    "load_task_file": "tasks",
    "TaskSpec": "tasks",
    "register_style": "styles",
    "get_style": "styles",
    "Style": "styles",
    "register_backend": "backends",
    "load_backend": "backends",
    "Backend": "backends",
    "Generation": "backends",
    # errors
    "UserError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'selfexplain' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ loads these lazily
    from .api import (
        AttributeResult,
        ConstructResult,
        CotResult,
        EvalResult,
        Hooks,
        TrainResult,
        attribute,
        construct,
        cot,
        evaluate,
        rejudge,
        train,
        train_rl,
    )
    from .backends import BACKENDS, Backend, Generation, load_backend, register_backend
    from .errors import UserError
    from .experiments import PRESETS, Experiment, load_experiment, reproduce
    from .registry import Registry
    from .reports import write_study_report
    from .styles import STYLES, Style, get_style, register_style
    from .tasks import TASKS, TaskSpec, get_task, load_task_file, register_task
