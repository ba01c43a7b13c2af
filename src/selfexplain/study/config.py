"""Experiment files: the schema of the YAML (model, training tasks, conditions, variants, evaluation cells,
the declared reading) and the shipped presets, validated with every error naming the file and field.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .. import estimands as E
from .. import styles as S
from ..errors import UserError
from ..layout import NONE, PREDICTIONS
from ..names import name_problem
from ..registry import Registry


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
            warnings.warn(
                "experiment field 'batch_size' is now 'chunk_size' (samples per chunk); "
                "the training batch is train.settings.batch_size",
                FutureWarning,
                stacklevel=2,
            )
            data = {("chunk_size" if k == "batch_size" else k): v for k, v in data.items()}
        return data

    @model_validator(mode="after")
    def _conditions(self) -> "Experiment":
        paper = [NONE, PREDICTIONS, *S.style_names()]
        for name, variant in self.variants.items():
            problem = name_problem(name)  # it names cells, stages and report rows
            if problem or name in paper:
                # Messages name their field themselves: a model-level error has no location of its own.
                raise ValueError(
                    f"field 'variants': the name {name!r} " + (problem or "is one of the paper's conditions")
                )
            if variant.data not in (PREDICTIONS, *S.style_names()):
                raise ValueError(
                    f"field 'variants.{name}.data': {variant.data!r} is not a trained condition; "
                    f"use {[PREDICTIONS, *S.style_names()]}"
                )
            if variant.method not in ("sft", "grpo", "dpo"):
                raise ValueError(f"field 'variants.{name}.method': {variant.method!r}; use sft, grpo or dpo")
            if variant.method != "sft" and (variant.data == PREDICTIONS or variant.source_model):
                raise ValueError(
                    f"field 'variants.{name}': {variant.method} trains one style on the check "
                    "itself (data: a style; no source_model)"
                )
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
    from ..tasks import read_yaml_mapping

    raw = read_yaml_mapping(path, "experiment")
    try:
        return Experiment.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise UserError(f"{path}: field '{where}': {message}" if where else f"{path}: {message}") from None
