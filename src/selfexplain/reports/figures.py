"""The paper's figures as PNG files (matplotlib, no display needed).

* figure 2: multi-word faithfulness by number of words N, per style and model;
* figure 3: faithfulness gain over no training for each training/evaluation task pair;
* figure 4: every model evaluated on every style (cross-style), with random baselines.

Error bars are the 95% bootstrap intervals of :mod:`selfexplain.stats`; points
or bars resting on fewer than 50 valid explanations are marked, as in the paper.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..layout import MAX_N, NONE  # noqa: E402
from ..stats import HIT, MISS, ratio_ci  # noqa: E402
from ..store import atomic_write  # noqa: E402
from .study import StudyData, condition_name
from .tables import cross_style_rows, cross_task_rows  # noqa: E402

FEW = 50  # the paper marks figures resting on fewer valid explanations
COLORS = {
    NONE: "#222222",
    "predictions": "#999999",
    "attribution": "#1f77b4",
    "redaction": "#d62728",
    "counterfactual": "#2ca02c",
}
# Conditions beyond the paper (variants), in the experiment's order; no orange: it is the random baseline's.
EXTRA = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39")


def _colors(study: StudyData) -> dict[str, str]:
    """One colour per condition: the paper's fixed ones, and each variant its own, so they can be told apart."""
    extra = [c for c in study.experiment["conditions"] if c not in COLORS]  # every cell's condition is listed
    return {**COLORS, **{c: EXTRA[i % len(EXTRA)] for i, c in enumerate(extra)}}


def _errors(value: float, low: float | None, high: float | None) -> tuple[float, float]:
    return (value - (low if low is not None else value), (high if high is not None else value) - value)


def figure2_by_n(study: StudyData, out: Path) -> Path | None:
    """Faithfulness by N for every multi-word cell on a training task."""
    cells = [c for c in study.cells if c.width == "multi"]
    if not cells:
        return None
    tasks = sorted({c.eval_task for c in cells})
    styles = study.styles
    colors = _colors(study)
    fig, axes = plt.subplots(
        len(tasks), len(styles), figsize=(4 * len(styles), 3.2 * len(tasks)), squeeze=False, sharey=True
    )
    for ti, task in enumerate(tasks):
        for si, style in enumerate(styles):
            ax = axes[ti][si]
            for k, cell in enumerate(c for c in cells if c.eval_task == task):
                label = condition_name(cell.condition) + (
                    f" ({cell.train_task})" if cell.train_task and cell.train_task != task else ""
                )
                recs = [r for r in cell.style_records(style).values() if r["valid"]]
                xs, ys, lo, hi, few = [], [], [], [], []
                for n in range(1, MAX_N + 1):
                    group = [r for r in recs if r["n"] == n]
                    ci = ratio_ci(np.array([HIT if r["faithful"] else MISS for r in group], dtype=np.int8))
                    if ci.value is None:
                        continue
                    x = n + (k - 1.5) * 0.06  # small offsets keep error bars apart
                    xs.append(x)
                    ys.append(ci.value)
                    e = _errors(ci.value, ci.low, ci.high)
                    lo.append(e[0])
                    hi.append(e[1])
                    few.append(ci.n < FEW)
                if not xs:
                    continue
                color = colors[cell.condition]
                ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker="o", capsize=2, lw=1.2, label=label)
                fx = [x for x, f in zip(xs, few) if f]
                fy = [y for y, f in zip(ys, few) if f]
                ax.scatter(fx, fy, marker="x", s=60, color="black", zorder=5)
            ax.set_title(f"{task}: {style}")
            ax.set_xticks(range(1, MAX_N + 1))
            ax.set_xlabel("N (words)")
            ax.set_ylim(-0.02, 1.02)
            if si == 0:
                ax.set_ylabel("faithfulness")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8)
    fig.suptitle("Figure 2: multi-word faithfulness by number of words (x: fewer than 50 valid)")
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return _save(fig, out / "figure2_faithfulness_by_n.png")


def figure3_cross_task(study: StudyData, out: Path) -> Path | None:
    """Heat maps of the faithfulness gain, one per trained style."""
    rows = cross_task_rows(study)
    if not rows:
        return None
    styles = [s for s in study.styles if any(r["style"] == s for r in rows)]
    train_tasks = sorted({r["train_task"] for r in rows})
    eval_tasks = list(dict.fromkeys(r["eval_task"] for r in rows))
    fig, axes = plt.subplots(
        1, len(styles), figsize=(1.6 + 1.5 * len(eval_tasks) * len(styles), 2.2 + 0.8 * len(train_tasks)), squeeze=False
    )
    for si, style in enumerate(styles):
        ax = axes[0][si]
        grid = np.full((len(train_tasks), len(eval_tasks)), np.nan)
        text = [["" for _ in eval_tasks] for _ in train_tasks]
        for r in rows:
            if r["style"] != style or r.get("diff") is None:
                continue
            i, j = train_tasks.index(r["train_task"]), eval_tasks.index(r["eval_task"])
            grid[i, j] = r["diff"]
            star = "*" if r["p_value"] is not None and r["p_value"] < 0.05 else ""
            text[i][j] = f"{r['diff']:+.2f}{star}\n[{r['diff_low']:+.2f},{r['diff_high']:+.2f}]"
        ax.imshow(grid, cmap="RdBu", vmin=-0.5, vmax=0.5)
        for i in range(len(train_tasks)):
            for j in range(len(eval_tasks)):
                dark = not np.isnan(grid[i, j]) and abs(grid[i, j]) > 0.3
                ax.text(
                    j, i, text[i][j] or "n/a", ha="center", va="center", fontsize=8, color="white" if dark else "black"
                )
        ax.set_xticks(range(len(eval_tasks)), eval_tasks)
        ax.set_yticks(range(len(train_tasks)), train_tasks)
        ax.set_xlabel("evaluation task")
        if si == 0:
            ax.set_ylabel("training task")
        ax.set_title(style)
    fig.suptitle(
        "Figure 3: faithfulness gain over no training (* p<0.05: paired permutation, Fisher's exact "
        "where few are valid)"
    )
    fig.tight_layout()
    return _save(fig, out / "figure3_cross_task.png")


PANELS = (  # (value, low, high, random baseline, axis label, y limits)
    ("faithfulness", "ci_low", "ci_high", "random", "faithfulness (flip rate)", (0, 1.05)),
    ("shift", "shift_low", "shift_high", "random_shift", "shift p(ŷ|x) − p(ŷ|x̃)", (-0.55, 1.05)),
)


def figure4_cross_style(study: StudyData, out: Path) -> Path | None:
    """Bars: each model on each evaluation style, flip rate and shift, with intervals and the random baseline.

    A "+" above a shift bar marks a cell whose explanations beat their random baseline (paired).
    """
    rows = cross_style_rows(study)
    if not rows:
        return None
    tasks = list(dict.fromkeys(r["eval_task"] for r in rows))
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    styles = study.styles
    fig, axes = plt.subplots(
        len(tasks),
        len(PANELS),
        figsize=(2 * (2 + 1.1 * len(conditions) * len(styles) / 2), 3.4 * len(tasks)),
        squeeze=False,
    )
    width = 0.8 / len(conditions)
    colors = _colors(study)
    for ti, task in enumerate(tasks):
        for pi, (key, low, high, rnd, ylabel, ylim) in enumerate(PANELS):
            ax = axes[ti][pi]
            for ci_, cond in enumerate(conditions):
                for si, style in enumerate(styles):
                    r = next(
                        (x for x in rows if x["eval_task"] == task and x["condition"] == cond and x["style"] == style),
                        None,
                    )
                    if r is None or r[key] is None:
                        continue
                    x = si + (ci_ - (len(conditions) - 1) / 2) * width
                    # Nested lists, not a (2, 1) array: matplotlib reads each row of an array as a scalar (deprecated).
                    err = [[float(e)] for e in _errors(r[key], r[low], r[high])]
                    ax.bar(
                        x,
                        r[key],
                        width,
                        yerr=err,
                        capsize=2,
                        color=colors[cond],
                        label=condition_name(cond) if si == 0 else None,
                    )
                    mark = "*" if r["n_valid"] < FEW else ""
                    if key == "shift" and r["verdict"] == "beats chance":
                        mark += "+"
                    if mark:
                        ax.text(x, r[key] + err[1][0] + 0.02, mark, ha="center", fontsize=9)
                    if r[rnd] is not None:
                        ax.plot(
                            [x - width / 2, x + width / 2],
                            [r[rnd]] * 2,
                            color="orange",
                            lw=2,
                            label="random baseline" if (si == 0 and ci_ == 0) else None,
                        )
            ax.set_xticks(range(len(styles)), [f"eval: {s}" for s in styles])
            ax.set_ylim(*ylim)
            ax.axhline(0, color="#888", lw=0.5)
            ax.set_ylabel(ylabel)
            ax.set_title(
                f"{task} (* fewer than 50 valid" + ("; + beats its random baseline)" if key == "shift" else ")")
            )
            if pi == 0 and ax.get_legend_handles_labels()[0]:  # nothing to label when no cell has a value
                ax.legend(fontsize=7, ncol=3)
    fig.suptitle("Figure 4: cross-style generalisation, flip rate and graded shift")
    fig.tight_layout()
    return _save(fig, out / "figure4_cross_style.png")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, png.getvalue(), kept="the study's runs are untouched")
    return path


def all_figures(study: StudyData, out: Path) -> list[Path]:
    return [p for p in (figure2_by_n(study, out), figure3_cross_task(study, out), figure4_cross_style(study, out)) if p]
