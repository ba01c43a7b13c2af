"""Training variance: conditions trained with several seeds (``train.seeds``), each model evaluated on the
same samples.  One row per condition, cell and style: each seed's change from no training (faithful among
valid, the paper's estimand), their mean and spread, and an interval that includes training variance
(:func:`selfexplain.stats.seeded_change`) beside the one-model interval that every other table shows.
"""

from __future__ import annotations

from typing import Any

from ..layout import NONE
from ..stats import LEVEL, paired_test, seeded_change
from .outcomes import faith_codes
from .study import StudyData, condition_name, marked
from .table import Table, fmt


def seed_summary(
    study: StudyData, condition: str, task: str | None, eval_task: str, width: str, style: str
) -> dict[str, Any] | None:
    """The seeded change of one condition's cell in one style; None without further seeds or no untrained cell."""
    own = study.cell(condition, task, eval_task, width)
    base = study.cell(NONE, None, eval_task, width)
    seeded = study.seed_cells(condition, task, eval_task, width)
    if own is None or base is None or not seeded:
        return None
    models = [own, *seeded]
    records = [m.style_records(style) for m in models]
    b = base.style_records(style)
    ids = sorted(set(b).intersection(*records))
    if not ids:
        return None
    s = seeded_change(faith_codes(b, ids), [faith_codes(r, ids) for r in records])
    one = paired_test(faith_codes(b, ids), faith_codes(records[0], ids))
    own_seed = ((study.experiment.get("train") or {}).get("settings") or {}).get("seed", 0)
    return {
        "models": models,
        "base": base,
        "seeds": [own_seed if m.seed is None else m.seed for m in models],
        "change": s,
        "one": one,
        "n": len(ids),
    }


def seeds_table(study: StudyData) -> Table:
    t = Table(
        "seeds",
        "Training seeds: the change from no training across independently trained models",
        [
            "condition",
            "eval task",
            "width",
            "style",
            "seeds",
            "change per seed",
            "mean change [95% CI]",
            "between-seed SD",
            "one model's interval",
            "samples",
        ],
        data_columns=["mean", "low", "high", "spread", "one_low", "one_high", "n"],
        note=(
            f"Each seed's change: faithful among valid, trained model − no training, on the samples every "
            f"model ran on (the study's own model first, with its training seed). Mean change: {LEVEL:.0%} "
            "two-stage bootstrap interval (samples resampled, the same draw for every model, then seeds "
            "resampled; percentile), so it includes training variance; with few seeds the seed stage is "
            "coarse, so the spread is shown beside it. One model's interval: the paired bootstrap of the "
            "study's own model alone, as the other tables give it."
        ),
    )
    for cond in study.trained_conditions:
        for task in study.experiment["train_tasks"]:
            for cell in study.cells:
                if (cell.condition, cell.train_task) != (cond, task):
                    continue
                for style in study.styles:
                    row = seed_summary(study, cond, task, cell.eval_task, cell.width, style)
                    if row is None:
                        continue
                    s, one = row["change"], row["one"]
                    shown = (
                        f"{s.mean:+.3f}" + (f" [{s.low:+.2f}, {s.high:+.2f}]" if s.low is not None else "")
                        if s.mean is not None
                        else "-"
                    )
                    t.rows.append(
                        {
                            "condition": marked(condition_name(cond), *row["models"], row["base"]),
                            "eval task": cell.eval_task,
                            "width": cell.width,
                            "style": style,
                            "seeds": ", ".join(map(str, row["seeds"])),
                            "change per seed": ", ".join("-" if c is None else f"{c:+.3f}" for c in s.changes),
                            "mean change [95% CI]": shown,
                            "between-seed SD": fmt(s.spread),
                            "one model's interval": "-" if one.low is None else f"[{one.low:+.2f}, {one.high:+.2f}]",
                            "samples": row["n"],
                            "mean": s.mean,
                            "low": s.low,
                            "high": s.high,
                            "spread": s.spread,
                            "one_low": one.low,
                            "one_high": one.high,
                            "n": row["n"],
                        }
                    )
    return t
