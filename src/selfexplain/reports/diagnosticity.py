"""Which measure to trust: each faithfulness measure tried on pairs whose faithful member is known.

The construction run scores every word of every input by erasure (Li et al. 2017): the word whose erasure
moves p(ŷ) most is w*, the constructed attribution (and, applied, the constructed redaction).  Against any
other word of the same input, w* is the more faithful explanation by the definition the paper trains on.  A
measure is *diagnostic* in so far as it ranks w* above the other word (Causal Diagnosticity, EMNLP 2025,
evaluates faithfulness metrics on such pairs).  Per training task, from the construction records alone (no
model is run):

* per-pair measures, averaged over every other word of each input (no random draw): the share of pairs a
  measure ranks w* above, ties, and below, with a bootstrap interval over inputs.  The binary flip is the
  paper's measure; the graded shift in normalised p(ŷ) (and the erasure rank, which orders the same numbers)
  is what picks w*, so it ranks w* first by construction and is shown as the ceiling; the shift in raw
  p(ŷ) (the paper's p_θ, a different normalisation) is not what picks w*;
* each estimand of :mod:`selfexplain.estimands` over the whole set, with w* against one word drawn at random
  per input (seeded): whether it ranks the constructed set above the random one.  Every erasure is a valid
  edit, so among valid, among all and valid in both coincide here; label-balanced does not.

Counterfactual explanations have no random counterpart in the construction records, so they are not tried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import estimands as E
from ..stats import HIT, MISS, mean_ci
from .study import StudyData, read_records
from .table import Table, fmt_interval

SEED = 0
MEASURES = {
    "binary flip (the paper's)": "flip",
    "graded shift, normalised p(ŷ) (= erasure rank; what picks w*)": "influence",
    "graded shift, raw p(ŷ)": "influence_raw",
}


def _values(a: dict[str, Any], measure: str) -> list[float]:
    if measure == "flip":
        return [float(e != a["prediction"]) for e in a["erased_predictions"]]
    return [float(x) for x in a[measure]]


def _pairs(records: list[dict[str, Any]], measure: str) -> tuple[list[float], list[float], list[float]]:
    """Per input: the shares of the other words a measure ranks w* above, level with, and below."""
    above, tie, below = [], [], []
    for a in records:
        v = _values(a, measure)
        star = v[a["w_star_index"]]
        others = np.array([x for i, x in enumerate(v) if i != a["w_star_index"]])
        above.append(float((star > others).mean()))
        tie.append(float((star == others).mean()))
        below.append(float((star < others).mean()))
    return above, tie, below


def _usable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attributions with w* and at least one other word."""
    out = []
    for r in records:
        a = r.get("attribution") or {}
        if a.get("w_star_index") is not None and len(a.get("words") or []) >= 2 and "influence_raw" in a:
            out.append(a)
    return out


def diagnosticity_table(study: StudyData) -> Table:
    t = Table(
        "diagnosticity",
        "Which measure to trust: constructed (w*) against other words of the same input",
        ["task", "measure", "ranks w* above [95% CI]", "tie", "below", "constructed − random [95% CI] p", "inputs"],
        data_columns=[
            "above",
            "above_low",
            "above_high",
            "tie_share",
            "below_share",
            "diff",
            "diff_low",
            "diff_high",
            "p_value",
            "n",
        ],
        note=(
            "Pairs whose more faithful member is known: erasure's w* (the constructed attribution; applied, "
            "the constructed redaction) against another word of the same input, from the construction "
            "records. Per-pair measures: over every other word of each input, the share of pairs the measure "
            "ranks w* above, level with (a tie cannot tell the two apart) and below; a bootstrap interval "
            "over inputs. The normalised shift (and the erasure rank, the same numbers ordered) is what "
            "picks w*: its row is the ceiling, not evidence. Estimands: w* against one other word drawn at "
            "random per input, the change random → constructed and its direction; every erasure is valid, so "
            "among valid, among all and valid in both coincide here. Counterfactual explanations have no "
            "random counterpart in the records and are not tried."
        ),
    )
    for key, stage in study.stages.items():
        if not key.startswith("construct|") or key.count("|") > 1 or not stage.get("run_dir"):
            continue  # a second construction (another model's) is not the study model's measure
        task = key.split("|", 1)[1]
        records = _usable(read_records(Path(stage["run_dir"])))
        if not records:
            continue
        for name, measure in MEASURES.items():
            above, tie, below = _pairs(records, measure)
            ci = mean_ci(above)
            t.rows.append(
                {
                    "task": task,
                    "measure": name,
                    "ranks w* above [95% CI]": fmt_interval(ci.value, ci.low, ci.high),
                    "tie": f"{np.mean(tie):.3f}",
                    "below": f"{np.mean(below):.3f}",
                    "inputs": len(records),
                    "constructed − random [95% CI] p": "-",
                    "above": ci.value,
                    "above_low": ci.low,
                    "above_high": ci.high,
                    "tie_share": float(np.mean(tie)),
                    "below_share": float(np.mean(below)),
                    "n": len(records),
                }
            )
        panel = _estimand_panel(records)
        for name, est in panel.estimates.items():
            t.rows.append(
                {
                    "task": task,
                    "measure": f"estimand: {E.DESCRIBED[name]}",
                    "inputs": len(records),
                    "ranks w* above [95% CI]": {E.RISE: "yes", E.FALL: "no (below)", E.UNCLEAR: "unclear"}[
                        est.direction
                    ],
                    "tie": "-",
                    "below": "-",
                    "constructed − random [95% CI] p": E.fmt_estimate(est),
                    "diff": est.difference,
                    "diff_low": est.low,
                    "diff_high": est.high,
                    "p_value": est.p_value,
                    "n": est.n,
                }
            )
    return t


def _estimand_panel(records: list[dict[str, Any]]) -> E.Panel:
    """w* against one other word per input, drawn at random (seeded), as two sides of every estimand."""
    rng = np.random.default_rng(SEED)
    star, rand, labels, conf = [], [], [], []
    for a in records:
        flips = _values(a, "flip")
        others = [i for i in range(len(flips)) if i != a["w_star_index"]]
        j = others[int(rng.integers(len(others)))]
        star.append(HIT if flips[a["w_star_index"]] else MISS)
        rand.append(HIT if flips[j] else MISS)
        labels.append(a["prediction"])
        conf.append(float(a["label_probs"][a["prediction"]]))
    return E.panel(E.Side(np.array(rand, dtype=np.int8), labels), E.Side(np.array(star, dtype=np.int8), labels), conf)
