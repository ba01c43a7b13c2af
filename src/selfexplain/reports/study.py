"""A study as the reports read it: its cells with their records (by style, by sample), the label mix of each
model (one-label guard), and the notes every table shares (incomplete cells, rules, variants).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserError
from ..layout import NONE, PREDICTIONS, Cell, RunStatus, model_key, read_study, run_status
from ..store import iter_records

CONDITION_NAMES = {NONE: "no training", PREDICTIONS: "w/ predictions"}


ONE_LABEL = 0.95  # a classifier that gives one label to this share of its inputs or more barely reads them


ONE_LABEL_MARK = "§"


# What every table's legend of ONE_LABEL_MARK says after naming what it marks.
ONE_LABEL_WHY = (
    "hardly any edit can flip its prediction, so its binary faithfulness measures that collapse, not "
    "its explanations (its graded shift still measures them)."
)


def condition_name(condition: str) -> str:
    return CONDITION_NAMES.get(condition, f"w/ {condition}")


def read_records(run_dir: str | Path) -> list[dict[str, Any]]:
    return list(iter_records(run_dir))


class RecordSet:
    """An evaluation's records, by style or by sample (the classification turn is shared by the styles)."""

    records: list[dict[str, Any]]

    def style_records(self, style: str) -> dict[str, dict[str, Any]]:
        return {r["sample_id"]: r for r in self.records if r["style"] == style}

    def samples(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in self.records:
            out.setdefault(r["sample_id"], r)
        return out

    def top_label(self) -> tuple[str, int, int] | None:
        """(the label it predicts most often, on how many samples, of how many); None without records."""
        return top_label(r["prediction"] for r in self.samples().values())

    def one_label(self) -> str | None:
        """Why its binary faithfulness says little: it gives one label to :data:`ONE_LABEL` of its samples or more."""
        return one_label_note(self.top_label())


def top_label(predictions: Iterable[str]) -> tuple[str, int, int] | None:
    """(the most frequent of ``predictions``, how often, of how many); None when there are none."""
    counts = Counter(predictions)
    if not counts:
        return None
    label, k = max(sorted(counts.items()), key=lambda x: x[1])  # ties: the first label by name
    return label, k, sum(counts.values())


def one_label_note(top: tuple[str, int, int] | None) -> str | None:
    """What a classifier giving one label to :data:`ONE_LABEL` of its samples or more does to faithfulness.

    Hardly any edit flips the prediction of a classifier that gives every input the same answer, so a low
    binary faithfulness there reads the classifier's collapse, not the explanations; the graded shift in
    p(ŷ) still reads them.
    """
    if top is None or top[1] < ONE_LABEL * top[2]:
        return None
    return (
        f"answers '{top[0]}' to {top[1]} of {top[2]} samples, so hardly any edit can flip its prediction "
        "(binary faithfulness near 0 whatever the explanation; the graded shift still measures it)"
    )


def top_share(top: tuple[str, int, int] | None) -> float | None:
    """The share of samples given the most frequent answer, for the CSVs."""
    return round(top[1] / top[2], 4) if top else None


def fmt_top(top: tuple[str, int, int] | None, mark: bool = False) -> str:
    """``Negative 600 of 600``; with ``mark``, :data:`ONE_LABEL_MARK` after a one-label classifier's."""
    if top is None:
        return "-"
    return f"{top[0]} {top[1]} of {top[2]}" + (ONE_LABEL_MARK if mark and one_label_note(top) else "")


@dataclass
class CellData(Cell, RecordSet):
    """A study cell with its records loaded."""

    records: list[dict[str, Any]] = field(default_factory=list)
    status: RunStatus = RunStatus(0, None, False, False)


@dataclass
class StudyData:
    root: Path
    experiment: dict[str, Any]
    stages: dict[str, Any]
    cells: list[CellData]
    reading_overrides: dict[str, Any] = field(default_factory=dict)  # set at report time (report flags)
    seeded: list[CellData] = field(default_factory=list)  # further training seeds' cells (the seeds table's)

    def seed_cells(self, condition: str, train_task: str | None, eval_task: str, width: str) -> list[CellData]:
        """The further training seeds' cells of one model and cell, by seed."""
        return sorted(
            (
                c
                for c in self.seeded
                if (c.condition, c.train_task, c.eval_task, c.width) == (condition, train_task, eval_task, width)
            ),
            key=lambda c: c.seed if c.seed is not None else -1,
        )

    def cell(self, condition: str, train_task: str | None, eval_task: str, width: str) -> CellData | None:
        key = model_key(condition, train_task)
        for c in self.cells:
            if model_key(c.condition, c.train_task) == key and c.eval_task == eval_task and c.width == width:
                return c
        return None

    @property
    def styles(self) -> list[str]:
        return list(self.experiment["styles"])

    @property
    def trained_conditions(self) -> list[str]:
        return [c for c in self.experiment["conditions"] if c != NONE]

    @property
    def variants(self) -> dict[str, dict[str, Any]]:
        """The experiment's conditions beyond the paper (name -> data, settings, note)."""
        return dict(self.experiment.get("variants") or {})

    def trains_on(self, condition: str) -> str:
        """The paper's condition whose data ``condition`` trains on (itself unless a variant)."""
        return self.variants[condition]["data"] if condition in self.variants else condition

    @property
    def incomplete(self) -> list[CellData]:
        return [c for c in self.cells + self.seeded if not c.status.complete]


def load_study(root: str | Path) -> StudyData:
    root = Path(root)
    study = read_study(root)
    cells: list[CellData] = []
    seeded: list[CellData] = []
    for c in study["cells"]:  # read_study resolved every path against the study folder
        cell = CellData(**c, records=read_records(c["run_dir"]), status=run_status(c["run_dir"]))
        (cells if cell.seed is None else seeded).append(cell)
    _check_one_adapter(cells + seeded)
    return StudyData(root, study["experiment"], study["stages"], cells, seeded=seeded)


def _check_one_adapter(cells: list[CellData]) -> None:
    """Every cell of one trained model was evaluated with the same adapter: a cell left from an earlier training of
    the model would report another model's numbers under its name."""
    seen: dict[str, tuple[str, CellData]] = {}
    for cell in cells:
        config = Path(cell.run_dir) / "config.json"
        if cell.condition == NONE or not config.is_file():
            continue
        adapter = json.loads(config.read_text(encoding="utf-8")).get("model", {}).get("adapter")
        key = model_key(cell.condition, cell.train_task, cell.seed)
        first = seen.setdefault(key, (adapter, cell))
        if first[0] != adapter:
            (was, where), now = first, Path(cell.run_dir).name
            raise UserError(
                f"study.json: {key}'s cells were evaluated with different adapters "
                f"({Path(where.run_dir).name} with {str(was)[:12]}, {now} with {str(adapter)[:12]}); "
                f"run `selfexplain reproduce --conditions {cell.condition}` to evaluate them again"
            )


INCOMPLETE_MARK = "‡"


def incomplete_note(study: StudyData) -> str:
    """The note every table of a study with incomplete cells carries (empty when all are complete)."""
    if not study.incomplete:
        return ""
    return (
        f" {INCOMPLETE_MARK}: the figure rests on an incomplete run ({len(study.incomplete)} cell(s), listed "
        "in the cells table); rerun the same `selfexplain reproduce` to complete it."
    )


def baseline_rule_note(study: StudyData) -> str:
    """Where cells were evaluated before that rule, whose baselines were drawn from all the input's words (their
    records lack ``no_random``): said, since such a baseline could repeat the explanation's own edit."""
    old = [c for c in study.cells if c.records and "no_random" not in c.records[0]]
    if not old:
        return ""
    n = len(study.cells)
    names = ", ".join(dict.fromkeys(condition_name(c.condition) for c in old))
    where = f"in all {n} cells" if len(old) == n else f"in {len(old)} of the {n} cells ({names})"
    return (
        f"; {where}, evaluated before this rule and not yet re-judged (`selfexplain rejudge`), from all its "
        "words, so that a baseline could repeat the explanation's own edit"
    )


def variants_note(study: StudyData) -> str:
    """What each condition beyond the paper is (empty when the study has none)."""

    def what(v: dict[str, Any]) -> str:
        method = v.get("method", "sft")
        if method != "sft":
            opts = {**v.get("rl", {}), **v.get("settings", {})}
            return f"trains the {v['data']} style by {method.upper()} on the faithfulness check" + (
                f" ({', '.join(f'{k} {val}' for k, val in opts.items())})" if opts else ""
            )
        source = f" constructed by {v['source_model']} (cells also judged against it)" if v.get("source_model") else ""
        return f"trains on the {v['data']} data{source} with " + (
            ", ".join(f"{k} {val}" for k, val in v.get("settings", {}).items()) or "the same settings"
        )

    parts = [
        f"'{condition_name(name)}' {what(v)}" + (f" ({v['note']})" if v.get("note") else "")
        for name, v in study.variants.items()
    ]
    return (" Beyond the paper: " + "; ".join(parts) + ".") if parts else ""


def marked(label: str, *cells: CellData | None) -> str:
    """``label`` with :data:`INCOMPLETE_MARK` when any of ``cells`` (the cell and what it is compared with)
    is incomplete."""
    return label + (INCOMPLETE_MARK if any(c is not None and not c.status.complete for c in cells) else "")
