"""The Python API: one function per CLI command, usable from notebooks.

    from selfexplain.api import evaluate
    result = evaluate(model="embedded", task="tweets", styles=["attribution"], limit=20)
    print(result.summary.styles[0].faithfulness, result.run_dir)

Every command is resumable: its run folder is named from a hash of its full configuration, and work is stored
chunk by chunk (see :mod:`selfexplain.store`).  This module is the facade: each command lives in
:mod:`selfexplain.pipeline` (``runs``, ``evaluate``, ``attribute``, ``construct``, ``train``, ``train_rl``,
``cot``), and ``rejudge`` in :mod:`selfexplain.rejudge`.
"""

from __future__ import annotations

from .pipeline.attribute import AttributeResult, attribute
from .pipeline.construct import ConstructResult, construct, construction_stats, quality_table
from .pipeline.cot import CotResult, cot
from .pipeline.evaluate import EvalResult, evaluate
from .pipeline.runs import SPLITS, TEST_FRACTION, Hooks, resolve_styles, sample_examples
from .pipeline.train import TrainResult, replay_chats, train, train_folder
from .pipeline.train_rl import train_rl, train_rl_folder
from .rejudge import rejudge

__all__ = [
    "evaluate",
    "attribute",
    "construct",
    "train",
    "train_rl",
    "rejudge",
    "cot",
    "EvalResult",
    "CotResult",
    "AttributeResult",
    "ConstructResult",
    "TrainResult",
    "Hooks",
    "sample_examples",
    "resolve_styles",
    "replay_chats",
    "train_folder",
    "train_rl_folder",
    "construction_stats",
    "quality_table",
    "SPLITS",
    "TEST_FRACTION",
]
