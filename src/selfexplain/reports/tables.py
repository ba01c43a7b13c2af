"""The paper's tables for a study folder, computed from the per-sample records.

Each table is a :class:`Table` (columns and rows of plain values) so that it can
be written as Markdown and CSV and checked by tests against the records.  Every
faithfulness and accuracy figure carries a 95% bootstrap interval; every
comparison of a trained model with the untrained one on the same samples
carries the difference, its paired-bootstrap interval and a paired permutation
p-value (:mod:`selfexplain.stats`); every faithfulness figure sits next to its
random baseline.

Tables (numbering follows the paper): 3 constructed vs original explanations,
4 one-word faithfulness before/after training, 5 the same for multi-word
prompts, 6 frequent words (:mod:`.lexicon`), 7 accuracy, 10 valid counts.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .. import estimands as E, words as W
from ..errors import UserError
from ..layout import NONE, PREDICTIONS, Cell, RunStatus, constructed_faithful, model_key, read_study, run_status
from ..store import iter_records
from ..measures import cell_measures, fmt_erasure, fmt_mean, fmt_vs_random
from ..stats import HIT, INVALID, MISS, SMALL, PairedResult, detectable_difference, paired_test, ratio_ci
from ..wordclasses import class_counts, fmt_classes

CONDITION_NAMES = {NONE: "no training", PREDICTIONS: "w/ predictions"}
ONE_LABEL = 0.95  # a classifier that gives one label to this share of its inputs or more barely reads them
ONE_LABEL_MARK = "§"
# What every table's legend of ONE_LABEL_MARK says after naming what it marks.
ONE_LABEL_WHY = ("hardly any edit can flip its prediction, so its binary faithfulness measures that collapse, not "
                 "its explanations (its graded shift still measures them).")


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
    return (f"answers '{top[0]}' to {top[1]} of {top[2]} samples, so hardly any edit can flip its prediction "
            "(binary faithfulness near 0 whatever the explanation; the graded shift still measures it)")


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
        return sorted((c for c in self.seeded if (c.condition, c.train_task, c.eval_task, c.width)
                       == (condition, train_task, eval_task, width)), key=lambda c: c.seed)

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
    cells, seeded = [], []
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
            raise UserError(f"study.json: {key}'s cells were evaluated with different adapters "
                            f"({Path(where.run_dir).name} with {str(was)[:12]}, {now} with {str(adapter)[:12]}); "
                            f"run `selfexplain reproduce --conditions {cell.condition}` to evaluate them again")


# ---- outcomes -----------------------------------------------------------------

def faith_codes(records: dict[str, dict[str, Any]], ids: Iterable[str], key: str = "faithful") -> np.ndarray:
    """Per-sample outcome codes for faithfulness (``key='random_faithful'`` for the baseline)."""
    out = []
    for i in ids:
        r = records[i]
        if not r["valid"] or (key == "random_faithful" and r.get("random_prediction") is None):
            out.append(INVALID)
        else:
            out.append(HIT if r[key] else MISS)
    return np.array(out, dtype=np.int8)


def accuracy_codes(samples: dict[str, dict[str, Any]], ids: Iterable[str]) -> np.ndarray:
    return np.array([HIT if samples[i]["prediction"] == samples[i]["gold"] else MISS for i in ids], dtype=np.int8)


def faith_pair(before: RecordSet, after: RecordSet, style: str) -> tuple[PairedResult, np.ndarray, np.ndarray]:
    """The paired change in ``style``'s faithfulness on the samples both ran on, and each side's codes."""
    b, a = before.style_records(style), after.style_records(style)
    common = sorted(set(b) & set(a))
    bc, ac = faith_codes(b, common), faith_codes(a, common)
    return paired_test(bc, ac), bc, ac


def compare(before: RecordSet, after: RecordSet, style: str, untrained: RecordSet | None = None,
            ) -> tuple[E.Panel, np.ndarray, np.ndarray]:
    """The estimand panel of ``style``'s change on the samples both ran on, binned by the confidence of
    ``untrained`` (default: ``before``), and each side's codes."""
    b, a = before.style_records(style), after.style_records(style)
    ids = sorted(set(b) & set(a))
    bc, ac = faith_codes(b, ids), faith_codes(a, ids)
    binned_by = (untrained or before).samples()
    conf = [confidence(binned_by.get(i)) for i in ids]
    panel = E.panel(E.Side(bc, [b[i]["prediction"] for i in ids]), E.Side(ac, [a[i]["prediction"] for i in ids]),
                    None if any(c is None for c in conf) else conf)
    return panel, bc, ac


def confidence(record: dict[str, Any] | None) -> float | None:
    """The probability of the predicted label (None for records without label probabilities)."""
    if not record or not record.get("label_probs"):
        return None
    return float(record["label_probs"][record["prediction"]])


PANEL_COLUMNS = [*[f"{e}_{k}" for e in E.ESTIMANDS for k in ("diff", "low", "high", "p")],
                 "all_discordant", "both_valid_discordant", "label_rates", "by_confidence"]


def panel_columns(panel: E.Panel) -> dict[str, Any]:
    """A panel's numbers as CSV columns (:data:`PANEL_COLUMNS`)."""
    out: dict[str, Any] = {}
    for name, est in panel.estimates.items():
        out.update({f"{name}_diff": est.difference, f"{name}_low": est.low, f"{name}_high": est.high,
                    f"{name}_p": est.p_value})
    pair = lambda c: None if c is None else f"{c[0]} vs {c[1]}"  # noqa: E731
    out["all_discordant"] = pair(panel.estimates[E.ALL].discordant)
    out["both_valid_discordant"] = pair(panel.estimates[E.BOTH_VALID].discordant)
    out["label_rates"] = panel.estimates[E.LABEL_BALANCED].detail
    out["by_confidence"] = "; ".join(f"{name} n={est.n}: {E.fmt_estimate(est)}" for name, est in panel.by_confidence)
    return out


def accuracy_pair(before: RecordSet, after: RecordSet) -> PairedResult:
    """The paired change in accuracy on the samples both classified."""
    b, a = before.samples(), after.samples()
    common = sorted(set(b) & set(a))
    return paired_test(accuracy_codes(b, common), accuracy_codes(a, common))


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


INCOMPLETE_MARK = "‡"


def incomplete_note(study: StudyData) -> str:
    """The note every table of a study with incomplete cells carries (empty when all are complete)."""
    if not study.incomplete:
        return ""
    return (f" {INCOMPLETE_MARK}: the figure rests on an incomplete run ({len(study.incomplete)} cell(s), listed "
            "in the cells table); rerun the same `selfexplain reproduce` to complete it.")


def baseline_rule_note(study: StudyData) -> str:
    """Where cells were evaluated before that rule, whose baselines were drawn from all the input's words (their
    records lack ``no_random``): said, since such a baseline could repeat the explanation's own edit."""
    old = [c for c in study.cells if c.records and "no_random" not in c.records[0]]
    if not old:
        return ""
    n = len(study.cells)
    names = ", ".join(dict.fromkeys(condition_name(c.condition) for c in old))
    where = f"in all {n} cells" if len(old) == n else f"in {len(old)} of the {n} cells ({names})"
    return (f"; {where}, evaluated before this rule and not yet re-judged (`selfexplain rejudge`), from all its "
            "words, so that a baseline could repeat the explanation's own edit")


def variants_note(study: StudyData) -> str:
    """What each condition beyond the paper is (empty when the study has none)."""
    def what(v: dict[str, Any]) -> str:
        method = v.get("method", "sft")
        if method != "sft":
            opts = {**v.get("rl", {}), **v.get("settings", {})}
            return (f"trains the {v['data']} style by {method.upper()} on the faithfulness check"
                    + (f" ({', '.join(f'{k} {val}' for k, val in opts.items())})" if opts else ""))
        source = f" constructed by {v['source_model']} (cells also judged against it)" if v.get("source_model") else ""
        return (f"trains on the {v['data']} data{source} with "
                + (", ".join(f"{k} {val}" for k, val in v.get("settings", {}).items()) or "the same settings"))

    parts = [f"'{condition_name(name)}' {what(v)}" + (f" ({v['note']})" if v.get("note") else "")
             for name, v in study.variants.items()]
    return (" Beyond the paper: " + "; ".join(parts) + ".") if parts else ""


def marked(label: str, *cells: CellData | None) -> str:
    """``label`` with :data:`INCOMPLETE_MARK` when any of ``cells`` (the cell and what it is compared with) is incomplete."""
    return label + (INCOMPLETE_MARK if any(c is not None and not c.status.complete for c in cells) else "")


def cells_table(study: StudyData) -> Table:
    """Every cell of the study: what it should hold, what it holds, where."""
    t = Table("cells", "Cells: records held against what each run's configuration asks for",
              ["condition", "train task", "eval task", "width", "records", "most frequent answer", "run folder"],
              data_columns=["held", "expected", "complete", "top_label_share"],
              note="A cell is complete when its run finished (summary.json) and holds samples x styles records. "
                   f"Most frequent answer: the label the model predicts most often, on how many samples; at "
                   f"{ONE_LABEL:.0%} or more " + ONE_LABEL_WHY + incomplete_note(study))
    for c in study.cells + study.seeded:
        top = c.top_label()
        name = condition_name(c.condition) + ("" if c.seed is None else f" (training seed {c.seed})")
        t.rows.append({"condition": marked(name, c), "train task": c.train_task or "-",
                       "eval task": c.eval_task, "width": c.width, "records": c.status.describe(),
                       "most frequent answer": fmt_top(top), "run folder": Path(c.run_dir).name,
                       "held": c.status.held, "expected": c.status.expected, "complete": c.status.complete,
                       "top_label_share": top_share(top)})
    return t


SMALL_MARK = "†"
DISAGREE_MARK = "≠"
DISAGREE_NOTE = (f"{DISAGREE_MARK}: the other estimands (faithful among all samples, among the samples valid in both, "
                 "label-balanced) do not all point the way this one does; the CSV has each, and the reading names "
                 "them.")
SMALL_NOTE = (f"{SMALL_MARK}: fewer than {SMALL} valid samples; the interval is the exact (Clopper-Pearson) one, "
              "and the estimate is rough.")
PAIRED_NOTE = ("each side's rate over its own valid samples among the samples both ran on; a paired-"
               "bootstrap 95% interval, or Newcombe's hybrid score interval (independent samples: wider) where "
               f"either side has fewer than {SMALL} valid or the bootstrap collapses to a point, or where the two agree "
               "on every sample ± the exact bound on a share of disagreeing samples (diff_method in the CSV); "
               "two-sided paired permutation p beside a bootstrap interval, Fisher's exact p beside Newcombe's")


def fmt_interval(value: float | None, low: float | None, high: float | None, n: int | None = None) -> str:
    """``0.512 [0.41, 0.60]``, marked with :data:`SMALL_MARK` when it rests on fewer than ``SMALL`` samples."""
    if value is None:
        return "-"
    mark = SMALL_MARK if n is not None and n < SMALL else ""
    if low is None:
        return fmt(value) + mark
    return f"{value:.3f} [{low:.2f}, {high:.2f}]{mark}"


def fmt_p(p: float | None) -> str:
    """A (Holm-adjusted) p for a table: ``0.037*``, ``<0.001*``, ``-`` for none."""
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}") + ("*" if p < 0.05 else "")


def fmt_paired(p: PairedResult) -> str:
    if p.difference is None:
        return "-"
    stars = "" if p.p_value is None else ("**" if p.p_value < 0.01 else "*" if p.p_value < 0.05 else "")
    return f"{p.difference:+.3f} [{p.low:+.2f}, {p.high:+.2f}] p={p.p_value:.3f}{stars}"


# ---- tables -------------------------------------------------------------------

@dataclass
class Table:
    name: str
    title: str
    columns: list[str]  # shown in Markdown and HTML
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    data_columns: list[str] = field(default_factory=list)  # numeric forms, CSV only

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        if not self.rows:
            return "\n".join(lines + ["(no cells of this kind in the study)", ""])
        lines += ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        for r in self.rows:
            lines.append("| " + " | ".join(_cell_text(r.get(c)) for c in self.columns) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        cols = self.columns + self.data_columns
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({c: r.get(c) for c in cols})
        return buf.getvalue()


def _cell_text(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return fmt(v)
    return str(v).replace("|", "\\|")


def faith_row(cell: CellData, style: str, base: CellData | None) -> dict[str, Any]:
    """Faithfulness of one style in one cell, its random baseline, and the paired change from ``base``."""
    recs = cell.style_records(style)
    ids = sorted(recs)
    ci = ratio_ci(faith_codes(recs, ids))
    rnd = ratio_ci(faith_codes(recs, ids, "random_faithful"))
    m = cell_measures(recs.values())
    vs, er = m["vs_random"], m["erasure"]
    row = {
        "faithfulness": ci.value, "ci_low": ci.low, "ci_high": ci.high, "n_valid": ci.n, "n": len(ids),
        "random": rnd.value, "random_ci_low": rnd.low, "random_ci_high": rnd.high,
        "shown": fmt_interval(ci.value, ci.low, ci.high, ci.n),
        "random_shown": fmt_interval(rnd.value, rnd.low, rnd.high, rnd.n),
        "valid_shown": f"{ci.n}/{len(ids)}",
        "shift": m["shift"]["mean"], "shift_low": m["shift"]["low"], "shift_high": m["shift"]["high"],
        "random_shift": m["random_shift"]["mean"],
        "vs_random_shift": vs["shift"]["difference"], "vs_random_low": vs["shift"]["low"],
        "vs_random_high": vs["shift"]["high"], "vs_random_p": vs["shift"]["p_value"],
        "vs_random_flip": vs["flip"]["difference"], "vs_random_pairs": vs["pairs"], "verdict": vs["verdict"],
        "erasure_rank": er["rank"]["mean"], "random_erasure_rank": er["random_rank"]["mean"],
        "names_w_star": er["names_w_star"],
        "shift_shown": fmt_mean(m["shift"]),
        # The flip half of the comparison says nothing for a classifier that gives (almost) one label: marked.
        "vs_random_shown": fmt_vs_random(vs) + (ONE_LABEL_MARK if cell.one_label() else ""),
        "erasure_shown": fmt_erasure(er),
        "targets_shown": fmt_classes(class_counts(recs.values())),
    }
    if base is not None and base is not cell:
        panel, b_codes, a_codes = compare(base, cell, style, base)
        p = panel.estimates[E.VALID]
        mde = detectable_difference(p.before, int((b_codes != INVALID).sum()), int((a_codes != INVALID).sum()))
        robust, _ = E.agreement(panel)
        row.update({"diff": p.difference, "diff_low": p.low, "diff_high": p.high, "diff_method": p.method,
                    "p_value": p.p_value, "n_pairs": p.n, "detectable": mde, "detectable_shown": fmt(mde),
                    "change_shown": fmt_paired(E.to_paired(p))
                    + ("" if robust else DISAGREE_MARK), "robust": robust, **panel_columns(panel)})
    return row



FAITH_COLUMNS = ["task", "condition", "style", "faithfulness [95% CI]", "valid", "random baseline [95% CI]",
                 "shift [95% CI]", "vs random baseline", "erasure rank (random) / names w*",
                 "targets: share (faithfulness)", "change vs no training [95% CI] p", "detectable rise (80% power)"]
FAITH_DATA = ["faithfulness", "ci_low", "ci_high", "n_valid", "n", "random", "random_ci_low", "random_ci_high",
              "shift", "shift_low", "shift_high", "random_shift", "vs_random_shift", "vs_random_low",
              "vs_random_high", "vs_random_p", "vs_random_flip", "vs_random_pairs", "verdict",
              "erasure_rank", "random_erasure_rank", "names_w_star",
              "diff", "diff_low", "diff_high", "diff_method", "p_value", "detectable", "robust", *PANEL_COLUMNS,
              "complete"]


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "faithfulness [95% CI]": row["shown"], "valid": row["valid_shown"],
            "random baseline [95% CI]": row["random_shown"], "shift [95% CI]": row["shift_shown"],
            "vs random baseline": row["vs_random_shown"], "erasure rank (random) / names w*": row["erasure_shown"],
            "targets: share (faithfulness)": row["targets_shown"],
            "change vs no training [95% CI] p": row.get("change_shown", ""),
            "detectable rise (80% power)": row.get("detectable_shown", "")}


def faithfulness_table(study: StudyData, width: str, name: str, title: str) -> Table:
    """Tables 4 and 5: on each training task, no training vs w/ predictions vs w/ the style itself."""
    t = Table(name, title, FAITH_COLUMNS, data_columns=FAITH_DATA, note=(
        "Faithfulness = faithful / valid explanations, with a 95% percentile bootstrap interval. " + SMALL_NOTE
        + " Random baseline: "
        "as many words as the explanation, chosen at random from the input's other words (never those the "
        "explanation names or edits) and applied the same way" + baseline_rule_note(study) + ". Change: "
        + PAIRED_NOTE + " (* p<0.05, ** p<0.01). Shift: mean p(ŷ|x) − p(ŷ|edited x) over valid explanations (graded "
        "faithfulness). vs random baseline: paired difference explanation − its random edit in shift (interval, "
        "sign-flip permutation p) and in flip rate; 'beats chance' where the shift interval lies above 0, 'does "
        "not' where it lies at or below 0. Erasure rank: where the words an explanation changes rank in the "
        "model's own erasure attribution (1 = most influential, random 0.5), and the share that name w*. "
        + CLASS_NOTE + " Detectable rise: the smallest increase over no training that these valid counts detect "
        "with 80% power (two-sided 5%); a change smaller than it and not significant is 'too few samples', not "
        "'no effect'. " + DISAGREE_NOTE))
    for task in study.experiment["train_tasks"]:
        base = study.cell(NONE, None, task, width)
        for style in study.styles:
            conditions = [(NONE, None)] + [(c, task) for c in study.trained_conditions
                                           if study.trains_on(c) in (PREDICTIONS, style)]
            for cond, tt in conditions:
                cell = study.cell(cond, tt, task, width)
                if cell is None:
                    continue
                row = faith_row(cell, style, base)
                label = marked(condition_name(cond), cell, base) + (ONE_LABEL_MARK if cell.one_label() else "")
                t.rows.append(_shown({"task": task, "condition": label, "style": style,
                                      "complete": cell.status.complete, **row}))
    if any(ONE_LABEL_MARK in r["condition"] for r in t.rows):
        t.note += (f" {ONE_LABEL_MARK}: this model gives one label to {ONE_LABEL:.0%} of the samples or more (cells "
                   "table: most frequent answer): " + ONE_LABEL_WHY)
    t.note += variants_note(study) + incomplete_note(study)
    return t


def cross_style_rows(study: StudyData, width: str = "one") -> list[dict[str, Any]]:
    """Figure 4's data: every trained condition (and none) evaluated on every style and task."""
    rows = []
    for task in study.experiment["train_tasks"]:
        base = study.cell(NONE, None, task, width)
        for cond, tt in [(NONE, None)] + [(c, task) for c in study.trained_conditions]:
            cell = study.cell(cond, tt, task, width)
            if cell is None:
                continue
            for style in study.styles:
                rows.append({"train_task": task, "condition": cond, "eval_task": task, "style": style,
                             **faith_row(cell, style, base)})
    return rows


def cross_task_rows(study: StudyData, width: str = "one") -> list[dict[str, Any]]:
    """Figure 3's data: gain over no training for each (training task, evaluation task), trained style = evaluated style."""
    rows = []
    for tt in study.experiment["train_tasks"]:
        for et in eval_tasks(study):
            base = study.cell(NONE, None, et, width)
            for style in study.styles:
                if style not in study.trained_conditions:
                    continue
                cell = study.cell(style, tt, et, width)
                if cell is None or base is None:
                    continue
                rows.append({"train_task": tt, "eval_task": et, "style": style, **faith_row(cell, style, base)})
    return rows


def accuracy_table(study: StudyData) -> Table:
    """Table 7: classification accuracy per model and evaluation task, paired change from no training."""
    t = Table("table7_accuracy", "Table 7: classification accuracy",
              ["task", "condition", "accuracy [95% CI]", "change vs no training [95% CI] p",
               "detectable change (80% power)", "n"],
              data_columns=["accuracy", "ci_low", "ci_high", "diff", "diff_low", "diff_high", "p_value", "detectable",
                            "complete"],
              note="Accuracy on the evaluation samples of each task's first width (the classification turn is the "
                   "same in every style and width). " + SMALL_NOTE + " Change: paired bootstrap, or Newcombe's interval "
                   "where it collapses to a point (the exact bound where both agree on every sample).")
    for task in eval_tasks(study):
        width = first_width(study, task)
        base = study.cell(NONE, None, task, width)
        models = [(NONE, None)] + [(c, tt) for tt in study.experiment["train_tasks"] for c in study.trained_conditions]
        for cond, tt in models:
            cell = study.cell(cond, tt, task, width)
            if cell is None:
                continue
            samples = cell.samples()
            ids = sorted(samples)
            ci = ratio_ci(accuracy_codes(samples, ids))
            row = {"task": task, "condition": marked(condition_name(cond) + (f" ({tt})" if tt and tt != task else ""),
                                                     cell, base), "complete": cell.status.complete,
                   "accuracy [95% CI]": fmt_interval(ci.value, ci.low, ci.high, ci.n), "n": len(ids),
                   "accuracy": ci.value, "ci_low": ci.low, "ci_high": ci.high}
            if base is not None and cell is not base:
                p = accuracy_pair(base, cell)
                # Accuracy may fall as well as rise: the rise from min(p, 1 - p) is the harder one to detect.
                before = None if p.before is None else min(p.before, 1 - p.before)
                mde = detectable_difference(before, p.n_pairs, p.n_pairs)
                row.update({"change vs no training [95% CI] p": fmt_paired(p), "diff": p.difference,
                            "diff_low": p.low, "diff_high": p.high, "p_value": p.p_value,
                            "detectable change (80% power)": fmt(mde), "detectable": mde})
            t.rows.append(row)
    t.note += variants_note(study) + incomplete_note(study)
    return t


def eval_tasks(study: StudyData) -> list[str]:
    """Evaluation tasks in experiment order, each once (a task may be listed once per width)."""
    return list(dict.fromkeys(e["task"] for e in study.experiment["evaluate"]))


def first_width(study: StudyData, task: str) -> str:
    for e in study.experiment["evaluate"]:
        if e["task"] == task:
            return e["widths"][0]
    return "one"


def valid_counts_table(study: StudyData) -> Table:
    """Table 10: how many explanations passed the style and word-count conditions, per cell."""
    t = Table("table10_valid_counts", "Table 10: valid explanations (kept for faithfulness) per cell",
              ["task", "width", "condition", "style", "valid", "valid, strict", "valid by target class", "n",
               "most common invalid reasons"])
    for cell in study.cells:
        for style in study.styles:
            recs = list(cell.style_records(style).values())
            if not recs:
                continue
            reasons: dict[str, int] = {}
            for r in recs:
                if not r["valid"]:
                    reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
            top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
            t.rows.append({"task": cell.eval_task, "width": cell.width,
                           "condition": marked(condition_name(cell.condition) + (
                               f" ({cell.train_task})" if cell.train_task and cell.train_task != cell.eval_task else ""), cell),
                           "style": style, "valid": sum(bool(r["valid"]) for r in recs),
                           "valid, strict": sum(map(strict_redaction, recs)) if style == "redaction" else "-",
                           "valid by target class": fmt_classes(class_counts(recs), faithfulness=False),
                           "n": len(recs), "most common invalid reasons": top or "-"})
    t.note = (STRICT_NOTE + " " + CLASS_NOTE + " " + variants_note(study) + incomplete_note(study)).strip()
    return t


CLASS_NOTE = ("Targets: the class of the words a valid explanation redacts, lists or edits (content word, stop word, "
              "@handle, #hashtag, URL, number, punctuation, emoji; 'mixed' where a multi-word explanation spans "
              "classes; rules in selfexplain/wordclasses.py), as a share of the valid explanations, with the "
              "faithful share of each class.")
STRICT_NOTE = ("Valid redactions keep the input's words outside the [REDACTED] markers (compared by key: case, "
               "attached punctuation and a handle's \"@\" are not compared; the classifier sees the original with "
               "those words redacted, so what was not compared never reaches it). Strict: every other character is "
               "the input's too, whitespace aside.")


def strict_redaction(record: dict[str, Any]) -> bool:
    """A redaction record valid under the strict rule (recorded by evaluate; computed from older records)."""
    if record.get("valid_strict") is not None:
        return bool(record["valid_strict"])
    return bool(record["valid"]) and W.unaltered(record["edited_input"] or "", str(record["parsed"]))


def construction_quality_table(study: StudyData) -> Table:
    """Table 3: faithfulness of constructed explanations vs the model's own, on the same training samples; and
    the share of each style's training file whose edit flips the model's prediction."""
    t = Table("table3_constructed_vs_original", "Table 3: constructed vs originally generated explanations",
              ["task", "style", "original [95% CI]", "original valid", "constructed [95% CI]", "constructed n",
               "training data flips [95% CI]", "training n", "constructing model's most frequent answer"],
              data_columns=["original", "original_ci_low", "original_ci_high", "constructed", "constructed_ci_low",
                            "constructed_ci_high", "train_flips", "train_flips_ci_low", "train_flips_ci_high",
                            "top_label_share"],
              note="Original and constructed: on the first `quality` training samples of the construction run "
                   "(one-word prompts).  Training data flips: the share of the explanations in the style's training "
                   "file (what the model is trained on) whose edit changes the constructing model's prediction. "
                   + SMALL_NOTE)
    for key, stage in study.stages.items():
        if not key.startswith("construct|"):
            continue
        task = key.split("|", 1)[1]
        run_dir = Path(stage["run_dir"])
        quality_dirs = sorted(run_dir.glob("quality-*"))
        if not quality_dirs:
            continue
        originals = read_records(quality_dirs[0])
        n_quality = len({r["sample_id"] for r in originals})
        records = read_records(run_dir)
        built = records[:n_quality]
        stats_file = run_dir / "construction.json"
        stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
        # Erasure cannot flip a classifier that gives nearly every input one answer: then every number of this
        # row reads that collapse (cpu-medium's SmolLM2 answers "Positive" to all 400 of its tweets).
        top = top_label(r["attribution"]["prediction"] for r in records)
        for style in ["attribution", "redaction", "counterfactual"]:
            recs = {r["sample_id"]: r for r in originals if r["style"] == style}
            o = ratio_ci(faith_codes(recs, sorted(recs)))
            flags = [f for f in (constructed_faithful(r, style) for r in built) if f is not None]
            c = ratio_ci(np.array([HIT if f else MISS for f in flags], dtype=np.int8))
            tr = ratio_ci(np.array([HIT if f else MISS for f in training_flips(records, style, stats)],
                                   dtype=np.int8))
            t.rows.append({"task": task, "style": style, "original [95% CI]": fmt_interval(o.value, o.low, o.high, o.n),
                           "original valid": o.n, "constructed [95% CI]": fmt_interval(c.value, c.low, c.high, c.n),
                           "constructed n": c.n, "training data flips [95% CI]": fmt_interval(tr.value, tr.low, tr.high, tr.n),
                           "training n": tr.n, "original": o.value, "original_ci_low": o.low,
                           "original_ci_high": o.high, "constructed": c.value, "constructed_ci_low": c.low,
                           "constructed_ci_high": c.high, "train_flips": tr.value, "train_flips_ci_low": tr.low,
                           "train_flips_ci_high": tr.high, "top_label_share": top_share(top),
                           "constructing model's most frequent answer": fmt_top(top, mark=True)})
    if any(ONE_LABEL_MARK in r["constructing model's most frequent answer"] for r in t.rows):
        t.note += (f" {ONE_LABEL_MARK}: the constructing model gives one label to {ONE_LABEL:.0%} of its inputs or "
                   "more: " + ONE_LABEL_WHY)
    return t


def training_flips(records: list[dict[str, Any]], style: str, stats: dict[str, Any]) -> list[bool]:
    """Whether each explanation of a style's training file flips the prediction: its first ``train_size`` usable
    records (kept; flipping too under --only-flipping), as construct wrote them."""
    out: list[bool] = []
    if "train_size" not in stats:  # a construction that did not finish wrote no training files
        return out
    for r in records:
        f = constructed_faithful(r, style)
        if f is None or (stats.get("only_flipping") and not f):
            continue
        if len(out) == stats["train_size"]:
            break
        out.append(f)
    return out
