"""Measures of one cell's records beyond the paper's flip rate, shared by run summaries and study reports.

* **Shift** (graded faithfulness): p(ŷ | x) − p(ŷ | x̃), how much the edit moves the probability of
  the original prediction (ERASER's comprehensiveness, DeYoung et al. 2020, here for every style);
  the label-normalised probabilities of the records.
* **Against the random baseline, paired**: every valid explanation has a random edit of the same size;
  the per-sample differences (explanation − random) in flip and in shift, with paired intervals and
  sign-flip permutation p-values, and a verdict from the shift: *beats chance* where its interval lies
  above 0, *does not* where it lies at or below 0, *undetermined* otherwise or with fewer than 10 pairs
  (records written before the baseline's probabilities were kept: from the flips).
* **Erasure agreement** (records of ``evaluate --erasure``): the normalised rank, in the model's own
  erasure influence ranking, of the words an explanation names (1 = the most influential word of the
  input, 0 = the least), the same for its random baseline (0.5 in expectation), and the share of
  explanations that name w*.

Pure functions of records; this module imports nothing of the pipeline, so reports can use it.
"""

from __future__ import annotations

from typing import Any, Iterable

from .stats import MeanDifference, mean_ci, paired_difference, verdict


def shift(record: dict[str, Any], probs_key: str = "new_label_probs") -> float | None:
    """p(ŷ|x) − p(ŷ|x̃) for the explanation's edit (or, with ``random_label_probs``, the baseline's)."""
    probs = record.get(probs_key)
    if not record.get("valid") or not probs:
        return None
    y = record["prediction"]
    return float(record["label_probs"][y] - probs[y])


def _interval(values: list[float]) -> dict[str, Any]:
    ci = mean_ci(values)
    return {"mean": ci.value, "low": ci.low, "high": ci.high, "n": ci.n}


def _difference(d: MeanDifference) -> dict[str, Any]:
    return {"difference": d.difference, "low": d.low, "high": d.high, "p_value": d.p_value, "n": d.n}


def cell_measures(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Shift, the paired comparison with the random baseline and erasure agreement for one style's records."""
    valid = [r for r in records if r.get("valid")]
    shifts = [s for s in (shift(r) for r in valid) if s is not None]
    flipped = [r for r in valid if r.get("random_faithful") is not None]
    paired = [r for r in flipped if r.get("random_label_probs") and r.get("new_label_probs")]
    out: dict[str, Any] = {
        "shift": _interval(shifts),
        "random_shift": _interval([shift(r, "random_label_probs") for r in paired]),  # type: ignore[misc]
    }
    flip = paired_difference(
        [float(bool(r["faithful"])) for r in flipped], [float(bool(r["random_faithful"])) for r in flipped]
    )
    moved = paired_difference([shift(r) for r in paired], [shift(r, "random_label_probs") for r in paired])  # type: ignore[misc]
    # Records written before the baseline's probabilities were kept have flips only: the verdict falls back.
    on = "shift" if paired else "flip"
    out["vs_random"] = {
        "pairs": len(paired) if paired else len(flipped),
        "flip": _difference(flip),
        "shift": _difference(moved),
        "verdict": verdict(moved if paired else flip),
        "verdict_on": on,
    }
    ranked = [r for r in valid if r.get("erasure_rank") is not None]
    with_random = [r for r in ranked if r.get("random_erasure_rank") is not None]
    out["erasure"] = {
        "n": len(ranked),
        "rank": _interval([r["erasure_rank"] for r in ranked]),
        "random_rank": _interval([r["random_erasure_rank"] for r in with_random]),
        "names_w_star": (sum(bool(r["names_w_star"]) for r in ranked) / len(ranked)) if ranked else None,
        "random_names_w_star": (sum(bool(r["random_names_w_star"]) for r in with_random) / len(with_random))
        if with_random
        else None,
    }
    return out


def fmt_mean(m: dict[str, Any]) -> str:
    """``0.123 [0.05, 0.20]`` for a mean with its interval; ``-`` when there is none."""
    if m.get("mean") is None:
        return "-"
    if m.get("low") is None:
        return f"{m['mean']:.3f}"
    return f"{m['mean']:.3f} [{m['low']:.2f}, {m['high']:.2f}]"


def fmt_erasure(e: dict[str, Any]) -> str:
    """``0.71 (0.50) / 38%``: mean rank of the changed words, of the random baseline's, share naming w*."""
    if not e or not e.get("n"):
        return "-"
    rnd = f" ({e['random_rank']['mean']:.2f})" if e["random_rank"]["mean"] is not None else ""
    return f"{e['rank']['mean']:.2f}{rnd} / {100 * e['names_w_star']:.0f}%"


def fmt_vs_random(v: dict[str, Any]) -> str:
    """``beats chance (shift +0.12 [+0.05, +0.19] p=0.001; flip +0.10, 40 pairs)``."""
    on = v.get("verdict_on", "shift")
    main, other = (v["shift"], v["flip"]) if on == "shift" else (v["flip"], v["shift"])
    if main["difference"] is None:
        return f"{v['verdict']} (no pairs)"
    interval = f" [{main['low']:+.2f}, {main['high']:+.2f}]" if main["low"] is not None else ""
    p = f" p={main['p_value']:.3f}" if main["p_value"] is not None else ""
    rest = (
        f"; {'flip' if on == 'shift' else 'shift'} {other['difference']:+.3f}"
        if other["difference"] is not None
        else ""
    )
    pairs = f"{v['pairs']} pair" + ("" if v["pairs"] == 1 else "s")
    return f"{v['verdict']} ({on} {main['difference']:+.3f}{interval}{p}{rest}; {pairs})"


def erasure_rank(
    source: str, edited: str, words: list[str], influence: list[float], w_star: str | None
) -> tuple[float | None, bool | None]:
    """(mean normalised rank of the source words ``edited`` changes, whether w* is among them).

    ``words`` and ``influence`` are an erasure attribution of ``source`` (distinct words, first
    spelling).  Ranks are by influence, highest first, ties in input order; the normalised rank
    of the i-th of m words is 1 - i/(m-1).  None where the input has fewer than two words or the
    edit changes no source word (a counterfactual that only inserts).
    """
    from . import words as W

    keys = [W.normalize_word(w) for w in words]
    if len(keys) < 2:
        return None, None
    order = sorted(range(len(keys)), key=lambda i: (-influence[i], i))
    rank = {keys[i]: 1 - pos / (len(keys) - 1) for pos, i in enumerate(order)}
    source_keys = W.word_keys(source)
    named = {source_keys[p] for p in W.changed_positions(source, edited)}
    named &= set(rank)
    if not named:
        return None, None
    return sum(rank[k] for k in named) / len(named), (W.normalize_word(w_star) in named if w_star else False)
