"""Table 3: constructed explanations vs the model's own on the same training samples, and how many of each
style's training edits flip the model's prediction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..layout import constructed_faithful
from ..stats import HIT, MISS, ratio_ci
from .outcomes import faith_codes
from .study import ONE_LABEL, ONE_LABEL_MARK, ONE_LABEL_WHY, StudyData, fmt_top, read_records, top_label, top_share
from .table import SMALL_NOTE, Table, fmt_interval


def construction_quality_table(study: StudyData) -> Table:
    """Table 3: faithfulness of constructed explanations vs the model's own, on the same training samples; and
    the share of each style's training file whose edit flips the model's prediction."""
    t = Table(
        "table3_constructed_vs_original",
        "Table 3: constructed vs originally generated explanations",
        [
            "task",
            "style",
            "original [95% CI]",
            "original valid",
            "constructed [95% CI]",
            "constructed n",
            "training data flips [95% CI]",
            "training n",
            "constructing model's most frequent answer",
        ],
        data_columns=[
            "original",
            "original_ci_low",
            "original_ci_high",
            "constructed",
            "constructed_ci_low",
            "constructed_ci_high",
            "train_flips",
            "train_flips_ci_low",
            "train_flips_ci_high",
            "top_label_share",
        ],
        note="Original and constructed: on the first `quality` training samples of the construction run "
        "(one-word prompts).  Training data flips: the share of the explanations in the style's training "
        "file (what the model is trained on) whose edit changes the constructing model's prediction. " + SMALL_NOTE,
    )
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
            tr = ratio_ci(np.array([HIT if f else MISS for f in training_flips(records, style, stats)], dtype=np.int8))
            t.rows.append(
                {
                    "task": task,
                    "style": style,
                    "original [95% CI]": fmt_interval(o.value, o.low, o.high, o.n),
                    "original valid": o.n,
                    "constructed [95% CI]": fmt_interval(c.value, c.low, c.high, c.n),
                    "constructed n": c.n,
                    "training data flips [95% CI]": fmt_interval(tr.value, tr.low, tr.high, tr.n),
                    "training n": tr.n,
                    "original": o.value,
                    "original_ci_low": o.low,
                    "original_ci_high": o.high,
                    "constructed": c.value,
                    "constructed_ci_low": c.low,
                    "constructed_ci_high": c.high,
                    "train_flips": tr.value,
                    "train_flips_ci_low": tr.low,
                    "train_flips_ci_high": tr.high,
                    "top_label_share": top_share(top),
                    "constructing model's most frequent answer": fmt_top(top, mark=True),
                }
            )
    if any(ONE_LABEL_MARK in r["constructing model's most frequent answer"] for r in t.rows):
        t.note += (
            f" {ONE_LABEL_MARK}: the constructing model gives one label to {ONE_LABEL:.0%} of its inputs or "
            "more: " + ONE_LABEL_WHY
        )
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
