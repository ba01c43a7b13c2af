"""Many models, one table: evaluate runs of one task, from any models, backends, adapters and precisions.

Rows are models, named by the identity in each run's configuration (name, weights' hash or revision,
adapter hash, dtype, backend); columns are style x width, each with the faithfulness and its interval,
valid n/N, the random baseline and the graded shift, plus accuracy.  Runs over the same samples are
compared pairwise, per style and width, with the paired bootstrap and permutation test of the study tables:
the difference of the two faithfulness rates, each over the samples its run explains validly, resampled
(and swapped) sample by sample, so a sample valid in one run only still counts for that run; "valid
pairs" counts the samples both explain validly.  Holm's correction runs over every comparison.
Runs whose samples are nested (one seed's draw of 300 inside its draw of 600: a prefix, as ``--limit``
draws) are paired on the smaller run's samples, and the pair's row says on how many.  Runs over
different samples are listed but not paired, and the table says which and why.  Runs of different tasks
are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Sequence

from .. import estimands as E
from ..errors import UserError
from ..layout import STUDY_FILE, RunStatus, read_study, run_status
from ..measures import cell_measures
from ..stats import INVALID, SMALL, holm, ratio_ci
from ..store import read_json
from ..wordclasses import class_counts, fmt_classes
from .outcomes import PANEL_COLUMNS, accuracy_codes, compare, faith_codes, panel_columns
from .study import ONE_LABEL, ONE_LABEL_MARK, ONE_LABEL_WHY, RecordSet, fmt_top, one_label_note, read_records, top_share
from .table import DISAGREE_MARK, DISAGREE_NOTE, Table, fmt, fmt_interval, fmt_p, fmt_paired

INCOMPLETE = "‡"
KEPT = "the runs are untouched"


@dataclass
class Run(RecordSet):
    path: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]
    status: RunStatus
    condition: str | None = None  # the study condition, for runs taken from a study

    @property
    def task(self) -> str:
        return self.config["task"]["name"]

    @property
    def width(self) -> str:
        return self.config["width"]


def model_label(config: dict[str, Any], condition: str | None = None) -> str:
    """A model as its run names it: name, the hash or revision of its weights, adapter, dtype, backend."""
    m = config.get("model", {})
    parts = [str(m.get("name", "model"))]
    for key in ("revision", "commit"):
        if m.get(key):
            parts.append(f"@{str(m[key])[:10]}")
            break
    weights = next((v for k, v in sorted(m.items()) if k.endswith("sha256") and k != "adapter"), None)
    if weights:
        parts.append(f"#{str(weights)[:8]}")
    if m.get("adapter"):
        parts.append(f"+ adapter {str(m['adapter'])[:8]}")
    extras = [str(x) for x in (m.get("dtype"), config.get("backend")) if x]
    label = " ".join(parts) + (f" ({', '.join(extras)})" if extras else "")
    return f"{condition}: {label}" if condition else label


def load_runs(paths: Sequence[str | Path], allow_incomplete: bool = False) -> list[Run]:
    """Evaluate run folders, and every cell of study folders, as runs; one error line for anything else."""
    runs: list[Run] = []
    for p in map(Path, paths):
        if (p / STUDY_FILE).is_file():
            for c in read_study(p)["cells"]:
                runs.append(load_run(Path(c["run_dir"]), allow_incomplete, c["condition"]))
        elif (p / "config.json").is_file():
            runs.append(load_run(p, allow_incomplete))
        else:
            raise UserError(f"{p}: neither an evaluate run folder (config.json) nor a study folder ({STUDY_FILE})")
    if not runs:
        raise UserError("no runs to compare")
    tasks = {r.task: r for r in runs}
    if len(tasks) > 1:
        a, b = list(tasks.values())[:2]
        raise UserError(
            f"runs of different tasks: {a.path} holds {a.task}, {b.path} holds {b.task}; "
            "a leaderboard compares models on one task"
        )
    return runs


def load_run(path: Path, allow_incomplete: bool, condition: str | None = None) -> Run:
    """One evaluate run folder; an incomplete one (still running, or killed) only with ``allow_incomplete``."""
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not an evaluate run folder (no config.json)")
    config = read_json(path / "config.json")
    if not isinstance(config, dict) or config.get("command") != "evaluate":
        raise UserError(f"{path}: not an evaluate run folder")
    status = run_status(path)
    if not status.complete and not allow_incomplete:
        raise UserError(
            f"{path}: {status.describe()}; rerun the command that wrote it to complete it, or pass "
            "--allow-incomplete to use the records it holds"
        )
    records = read_records(path)
    if not records:
        raise UserError(f"{path}: no records")
    return Run(path, config, records, status, condition)


@dataclass
class Leaderboard:
    task: str
    rows: list[tuple[str, dict[str, Run]]]  # (model label, width -> run)
    groups: list[tuple[str, str]]  # (style, width) columns
    table: Table = field(init=False)
    pairs: Table = field(init=False)


def build(runs: list[Run]) -> Leaderboard:
    """The table of models and the table of paired comparisons (Holm-corrected)."""
    by_model: dict[str, dict[str, Run]] = {}
    for r in runs:
        label = model_label(r.config, r.condition)
        widths = by_model.setdefault(label, {})
        if r.width in widths:
            raise UserError(
                f"two {r.width}-word runs of one model ({label}): {widths[r.width].path} and {r.path}; give one"
            )
        widths[r.width] = r
    styles = list(dict.fromkeys(s for r in runs for s in r.config.get("styles", [])))
    shown = [w for w in ("one", "multi") if any(w in m for m in by_model.values())]
    groups = [(s, w) for w in shown for s in styles]
    board = Leaderboard(runs[0].task, list(by_model.items()), groups)
    board.table = _models_table(board)
    board.pairs = _pairs_table(board)
    return board


def _group(style: str, width: str) -> str:
    return f"{style}, {width}-word"


def _models_table(board: Leaderboard) -> Table:
    cols = ["model", "accuracy [95% CI]", "most frequent answer", *[_group(s, w) for s, w in board.groups]]
    data: list[str] = []
    for s, w in board.groups:
        data += [f"{s}_{w}_{k}" for k in ("faithfulness", "ci_low", "ci_high", "n_valid", "n", "random", "shift")]
    t = Table(
        "leaderboard",
        f"Leaderboard: {board.task}",
        cols,
        data_columns=["accuracy", "n_samples", "top_label_share", *data],
        note=(
            "Each cell: faithfulness [95% interval] · valid/N · random baseline · graded shift "
            "(mean p(ŷ|x) − p(ŷ|x') over valid explanations) · the class of the words the valid "
            "explanations target, as a share of them, with each class's faithful share (content, stop, "
            "handle, hashtag, url, number, punctuation, emoji; mixed). † fewer than 50 valid; "
            f"{INCOMPLETE} an incomplete run. Accuracy and the most frequent answer on the first width's "
            f"samples; {ONE_LABEL_MARK} a model that gives one label to {ONE_LABEL:.0%} of them or more: "
            + ONE_LABEL_WHY
        ),
    )
    for label, runs in board.rows:
        first = runs.get("one") or runs["multi"]  # a row holds one width at least
        samples = first.samples()
        acc = ratio_ci(accuracy_codes(samples, sorted(samples)))
        top = first.top_label()
        row: dict[str, Any] = {
            "model": label
            + (INCOMPLETE if any(not r.status.complete for r in runs.values()) else "")
            + (ONE_LABEL_MARK if one_label_note(top) else ""),
            "accuracy [95% CI]": fmt_interval(acc.value, acc.low, acc.high, acc.n),
            "most frequent answer": fmt_top(top),
            "accuracy": acc.value,
            "n_samples": len(samples),
            "top_label_share": top_share(top),
        }
        for s, w in board.groups:
            run = runs.get(w)
            recs = run.style_records(s) if run else {}
            if not recs:
                row[_group(s, w)] = "-"
                continue
            ids = sorted(recs)
            ci = ratio_ci(faith_codes(recs, ids))
            rnd = ratio_ci(faith_codes(recs, ids, "random_faithful"))
            shift = cell_measures(recs.values())["shift"]["mean"]
            row[_group(s, w)] = (
                f"{fmt_interval(ci.value, ci.low, ci.high, ci.n)} · {ci.n}/{len(ids)} · "
                f"random {fmt(rnd.value)} · shift {'-' if shift is None else f'{shift:+.3f}'} · "
                f"targets {fmt_classes(class_counts(recs.values()))}"
            )
            row.update(
                {
                    f"{s}_{w}_faithfulness": ci.value,
                    f"{s}_{w}_ci_low": ci.low,
                    f"{s}_{w}_ci_high": ci.high,
                    f"{s}_{w}_n_valid": ci.n,
                    f"{s}_{w}_n": len(ids),
                    f"{s}_{w}_random": rnd.value,
                    f"{s}_{w}_shift": shift,
                }
            )
        t.rows.append(row)
    return t


def _pairs_table(board: Leaderboard) -> Table:
    t = Table(
        "leaderboard_pairs",
        "Paired comparisons (B − A)",
        ["A", "B", "style", "change B − A [95% CI] p", "Holm p", "valid pairs"],
        data_columns=[
            "diff",
            "diff_low",
            "diff_high",
            "diff_method",
            "p_value",
            "holm_p",
            "n_pairs",
            "robust",
            *PANEL_COLUMNS,
        ],
    )
    unpaired: list[str] = []
    nested: list[str] = []  # pairs of runs whose samples nest: compared on the smaller one's
    for (la, ra), (lb, rb) in combinations(board.rows, 2):
        for s, w in board.groups:
            a, b = ra.get(w), rb.get(w)
            if a is None or b is None:
                continue
            ia, ib = a.style_records(s), b.style_records(s)
            if not ia or not ib:
                continue
            if not (set(ia) <= set(ib) or set(ib) <= set(ia)):
                common = len(set(ia) & set(ib))
                unpaired.append(f"{la} and {lb} ({w}-word: {len(ia)} and {len(ib)} samples, {common} in common)")
                continue
            ids = sorted(set(ia) & set(ib))
            if len(ia) != len(ib):
                nested.append(f"{la} and {lb} ({w}-word) on the {len(ids)} samples of the smaller run")
            panel, ca, cb = compare(a, b, s)  # binned by A's confidence
            p = E.to_paired(panel.estimates[E.VALID])  # the panel's own paired test, not a second one
            robust, _ = E.agreement(panel)
            few = min(int((ca != INVALID).sum()), int((cb != INVALID).sum())) < SMALL
            shown = fmt_paired(p) + ("†" if few and p.difference is not None else "")
            t.rows.append(
                {
                    "A": la,
                    "B": lb,
                    "style": _group(s, w),
                    "change B − A [95% CI] p": shown + ("" if robust or p.difference is None else DISAGREE_MARK),
                    "valid pairs": int(((ca != INVALID) & (cb != INVALID)).sum()),
                    "diff": p.difference,
                    "diff_low": p.low,
                    "diff_high": p.high,
                    "diff_method": p.method,
                    "p_value": p.p_value,
                    "n_pairs": p.n_pairs,
                    "robust": robust,
                    **panel_columns(panel),
                }
            )
    for r, adjusted in zip(t.rows, holm([r["p_value"] for r in t.rows])):
        r["holm_p"] = adjusted
        r["Holm p"] = fmt_p(adjusted)
    t.note = (
        f"Runs over the same samples, per style and width: the change in faithfulness, each run's rate over "
        f"the samples it explains validly, with a paired bootstrap interval and a two-sided paired "
        f"permutation p (a sample's two outcomes resampled and swapped together); valid pairs: the samples "
        f"both explain validly; † a run with fewer than {SMALL} valid in the pair, where the interval is "
        f"Newcombe's hybrid score interval instead, with Fisher's exact p (as where the bootstrap collapses to "
        f"a point; diff_method in the CSV). Holm p corrects for all "
        f"{len(t.rows)} comparisons of this table (* below 0.05). " + DISAGREE_NOTE
    )
    nested = list(dict.fromkeys(nested))
    if nested:
        t.note += " Paired on nested samples (one run's samples inside the other's): " + "; ".join(nested) + "."
    unpaired = list(dict.fromkeys(unpaired))
    if unpaired:
        t.note += " Not paired (different samples): " + "; ".join(unpaired) + "."
    return t


# ---- output -------------------------------------------------------------------------------------------------


def figure(board: Leaderboard, path: Path) -> Path:
    """Faithfulness per model and style (one panel per width), with 95% intervals: a dot plot."""
    from .figures import _save, plt

    widths = list(dict.fromkeys(w for _, w in board.groups))
    styles = list(dict.fromkeys(s for s, _ in board.groups))
    labels = [label for label, _ in board.rows]
    # Room for the labels (identities are long) beside panels of a fixed useful width.
    label_inches = 0.065 * max(len(label) for label in labels)
    fig, axes = plt.subplots(
        1,
        len(widths),
        figsize=(label_inches + 4.5 * len(widths), 0.9 + 0.45 * len(labels) * len(styles)),
        squeeze=False,
    )
    for wi, w in enumerate(widths):
        ax = axes[0][wi]
        for si, s in enumerate(styles):
            labelled = False  # the style's first plotted point names it (a model without one has none)
            for mi, row in enumerate(board.table.rows):
                v = row.get(f"{s}_{w}_faithfulness")
                if v is None:
                    continue
                y = mi * (len(styles) + 1) + si
                lo, hi = row.get(f"{s}_{w}_ci_low"), row.get(f"{s}_{w}_ci_high")
                err = [[v - lo], [hi - v]] if lo is not None else None
                ax.errorbar(v, y, xerr=err, fmt="o", color=f"C{si}", capsize=3, label=None if labelled else s)
                labelled = True
        ax.set_yticks([mi * (len(styles) + 1) + (len(styles) - 1) / 2 for mi in range(len(labels))], labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("faithfulness (95% interval)")
        ax.set_title(f"{board.task}, {w}-word")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def write(board: Leaderboard, out: Path) -> dict[str, Path]:
    """leaderboard.md, leaderboard.csv, leaderboard_pairs.csv, leaderboard.png and leaderboard.html in ``out``."""
    from jinja2 import Environment, select_autoescape

    from ..store import atomic_write
    from .html import STYLE, _fmt, _Raw

    out.mkdir(parents=True, exist_ok=True)
    files = {"figure": figure(board, out / "leaderboard.png")}
    for t in (board.table, board.pairs):
        atomic_write(out / f"{t.name}.csv", t.csv(), kept=KEPT)
    md = board.table.markdown() + "\n" + board.pairs.markdown() + "\n![leaderboard](leaderboard.png)\n"
    atomic_write(out / "leaderboard.md", md, kept=KEPT)
    import base64

    page = (
        Environment(autoescape=select_autoescape(default=True, default_for_string=True))
        .from_string(_PAGE)
        .render(
            style=_Raw(STYLE),
            task=board.task,
            tables=[board.table, board.pairs],
            fmt=_fmt,
            figure=base64.b64encode(files["figure"].read_bytes()).decode(),
        )
    )
    atomic_write(out / "leaderboard.html", page, kept=KEPT)
    files.update(
        markdown=out / "leaderboard.md",
        csv=out / "leaderboard.csv",
        pairs=out / "leaderboard_pairs.csv",
        html=out / "leaderboard.html",
    )
    return files


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfexplain leaderboard: {{ task }}</title>
<style>{{ style }}</style></head><body>
<h1>selfexplain leaderboard: {{ task }}</h1>
{% for t in tables %}<section class="table" id="{{ t.name }}"><h3>{{ t.title }}</h3>
{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}
{% if t.rows %}<table><thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for r in t.rows %}<tr>{% for c in t.columns %}<td>{{ fmt(r.get(c)) }}</td>{% endfor %}</tr>{% endfor %}
</tbody></table>{% else %}<p class="note">(none)</p>{% endif %}</section>
{% endfor %}
<figure><img alt="leaderboard" src="data:image/png;base64,{{ figure }}"></figure>
</body></html>
"""
