"""The table container (Markdown and CSV from one set of rows) and the formatters and marks every table uses."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from ..stats import SMALL, PairedResult


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


SMALL_MARK = "†"


DISAGREE_MARK = "≠"


DISAGREE_NOTE = (
    f"{DISAGREE_MARK}: the other estimands (faithful among all samples, among the samples valid in both, "
    "label-balanced) do not all point the way this one does; the CSV has each, and the reading names "
    "them."
)


SMALL_NOTE = (
    f"{SMALL_MARK}: fewer than {SMALL} valid samples; the interval is the exact (Clopper-Pearson) one, "
    "and the estimate is rough."
)


PAIRED_NOTE = (
    "each side's rate over its own valid samples among the samples both ran on; a paired-"
    "bootstrap 95% interval, or Newcombe's hybrid score interval (independent samples: wider) where "
    f"either side has fewer than {SMALL} valid or the bootstrap collapses to a point, or where the two agree "
    "on every sample ± the exact bound on a share of disagreeing samples (diff_method in the CSV); "
    "two-sided paired permutation p beside a bootstrap interval, Fisher's exact p beside Newcombe's"
)


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
