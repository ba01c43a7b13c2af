"""What a change in faithfulness is a change *of*: the panel of estimands every before/after comparison reports.

The paper's faithfulness is faithful explanations among valid ones, each model over its own valid set.  When
training changes which samples are explained validly, or which label the classifier gives, that ratio moves
for reasons other than faithfulness.  So each comparison of two conditions on the same samples is computed
five ways:

* ``valid`` (the paper's): each side's rate over its own valid samples (:func:`stats.paired_test`);
* ``all``: faithful among every sample, an invalid explanation counted as not faithful; exact McNemar test
  on the discordant samples;
* ``both-valid``: only the samples both sides explain validly; exact McNemar, with the discordant counts;
* ``label-balanced``: each side's rate per predicted label (its own prediction), averaged with equal
  weight over the labels both sides predict on some valid sample (training often changes the label mix, and
  flips come mostly from one label); paired bootstrap interval, paired permutation p;
* ``by confidence``: the ``valid`` estimand inside bins of a fixed classifier's confidence (the probability
  of its predicted label; the caller passes the untrained model's, so every condition is binned alike).
  A breakdown, not one number: it shows whether a change is a change in how unsure the classifier is.

:func:`agreement` says whether the single-number estimands point the same way as the primary one.
Pure functions of per-sample outcomes; deterministic for a given seed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Final, Sequence

import numpy as np
from scipy import stats as sps

from .stats import HIT, INVALID, LEVEL, MISS, N_RESAMPLES, SMALL, PairedResult, paired_test

VALID: Final = "valid"
ALL: Final = "all"
BOTH_VALID: Final = "both-valid"
LABEL_BALANCED: Final = "label-balanced"
ESTIMANDS = (VALID, ALL, BOTH_VALID, LABEL_BALANCED)
DESCRIBED = {
    VALID: "faithful among each side's own valid explanations (the paper's)",
    ALL: "faithful among all samples (invalid = not faithful)",
    BOTH_VALID: "faithful among the samples valid in both",
    LABEL_BALANCED: "mean over predicted labels of faithful among valid",
}
FAMILIES = ("reading", "table")  # Holm over every claim of the reading, or within each paper table/figure
DEFAULT_MARGIN = 0.10  # the smallest change of interest where the paper reports none (a study may declare another)
CONFIDENCE_BINS = (0.7, 0.9)  # edges: [0, 0.7), [0.7, 0.9), [0.9, 1]
RISE, FALL, UNCLEAR = "rise", "fall", "unclear"


@dataclass(frozen=True)
class Side:
    """One condition's outcome on each sample: :data:`stats.INVALID`/``MISS``/``HIT`` and its predicted label."""

    codes: np.ndarray
    labels: Sequence[str]


@dataclass(frozen=True)
class Estimate:
    before: float | None
    after: float | None
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int  # the samples it rests on
    method: str
    discordant: tuple[int, int] | None = None  # (before only faithful, after only faithful): McNemar's counts
    detail: str = ""  # e.g. the per-label rates

    @property
    def direction(self) -> str:
        if self.low is None or self.high is None:
            return UNCLEAR
        return RISE if self.low > 0 else FALL if self.high < 0 else UNCLEAR


@dataclass(frozen=True)
class Panel:
    estimates: dict[str, Estimate]
    by_confidence: list[tuple[str, Estimate]] = field(default_factory=list)


def from_paired(p: PairedResult, n: int | None = None) -> Estimate:
    """A :func:`stats.paired_test` result as an estimate (over ``n`` samples; default its pairs)."""
    return Estimate(p.before, p.after, p.difference, p.low, p.high, p.p_value, p.n_pairs if n is None else n, p.method)


def to_paired(e: Estimate) -> PairedResult:
    """An estimate in the form the tables print with :func:`reports.tables.fmt_paired`."""
    return PairedResult(e.before, e.after, e.difference, e.low, e.high, e.p_value, e.n, method=e.method)


def mcnemar(before: np.ndarray, after: np.ndarray) -> tuple[float | None, tuple[int, int]]:
    """Exact (binomial) McNemar p on paired binary outcomes (True = faithful), and the discordant counts."""
    b = int((before & ~after).sum())
    c = int((~before & after).sum())
    if b + c == 0:
        return 1.0, (b, c)
    return float(sps.binomtest(min(b, c), b + c, 0.5).pvalue), (b, c)


def _binary(before: np.ndarray, after: np.ndarray, seed: int, method: str) -> Estimate:
    """The change in a share over samples all counted: a paired-bootstrap interval, McNemar's p."""
    n = int(before.size)
    if n == 0:
        return Estimate(None, None, None, None, None, None, 0, method)
    p_value, discordant = mcnemar(before, after)
    d = after.astype(np.int8) - before.astype(np.int8)
    if n < SMALL or np.all(d == d[0]):
        # Few samples, or no discordant pair: the paired test's exact and Newcombe intervals.
        p = paired_test(np.where(before, HIT, MISS).astype(np.int8), np.where(after, HIT, MISS).astype(np.int8), seed)
        return Estimate(p.before, p.after, p.difference, p.low, p.high, p_value, n, f"{p.method}; McNemar", discordant)
    # Each sample's change is -1, 0 or +1, so a bootstrap resample is a multinomial draw of the three counts.
    shares = [(d == -1).mean(), (d == 0).mean(), (d == 1).mean()]
    counts = np.random.default_rng(seed).multinomial(n, shares, size=N_RESAMPLES)
    boot = (counts[:, 2] - counts[:, 0]) / n
    alpha = (1 - LEVEL) / 2
    return Estimate(
        float(before.mean()),
        float(after.mean()),
        float(d.mean()),
        float(np.quantile(boot, alpha)),
        float(np.quantile(boot, 1 - alpha)),
        p_value,
        n,
        f"{method}; McNemar",
        discordant,
    )


def _label_rates(codes: np.ndarray, labels: np.ndarray, keep: list[int]) -> np.ndarray:
    """Equal-weight mean over ``keep`` labels of faithful among valid, along the last axis (NaN: no label)."""
    rates = []
    for k in keep:
        mine = (labels == k) & (codes != INVALID)
        n = mine.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rates.append(np.where(n > 0, ((codes == HIT) & mine).sum(axis=-1) / np.maximum(n, 1), np.nan))
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample without any kept label: NaN, dropped later
        return np.nanmean(np.stack(rates), axis=0)


def label_balanced(before: Side, after: Side, seed: int = 0) -> Estimate:
    """The change in the equal-weight mean over predicted labels of faithful among valid."""
    names = sorted(set(before.labels) | set(after.labels))
    code = {name: i for i, name in enumerate(names)}
    lb = np.array([code[x] for x in before.labels], dtype=np.int16)
    la = np.array([code[x] for x in after.labels], dtype=np.int16)
    cb, ca = np.asarray(before.codes, dtype=np.int8), np.asarray(after.codes, dtype=np.int8)
    n = int(cb.size)
    # Only labels both sides predict on a valid sample: a label one side never predicts has no rate there, and
    # averaging over different label sets would compare different things.
    keep = [k for k in range(len(names)) if ((lb == k) & (cb != INVALID)).any() and ((la == k) & (ca != INVALID)).any()]
    if not keep:
        return Estimate(None, None, None, None, None, None, n, "bootstrap", detail="no label valid on both sides")
    rb, ra = float(_label_rates(cb, lb, keep)), float(_label_rates(ca, la, keep))
    d = ra - rb
    per = "; ".join(
        f"{names[k]} {float(_label_rates(cb, lb, [k])):.2f}->{float(_label_rates(ca, la, [k])):.2f}" for k in keep
    )
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(N_RESAMPLES, n))
    boot = _label_rates(ca[idx], la[idx], keep) - _label_rates(cb[idx], lb[idx], keep)
    boot = boot[~np.isnan(boot)]
    alpha = (1 - LEVEL) / 2
    low, high = (float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))) if boot.size else (None, None)
    # Paired permutation: a sample's two (outcome, label) pairs swapped together.
    swap = rng.random((N_RESAMPLES, n)) < 0.5
    perm = _label_rates(np.where(swap, cb, ca), np.where(swap, lb, la), keep) - _label_rates(
        np.where(swap, ca, cb), np.where(swap, la, lb), keep
    )
    perm = perm[~np.isnan(perm)]
    p = float((1 + np.sum(np.abs(perm) >= abs(d) - 1e-12)) / (1 + perm.size)) if d != 0 else 1.0
    return Estimate(rb, ra, d, low, high, p, n, "bootstrap", detail=per)


def confidence_bin(p: float, edges: Sequence[float] = CONFIDENCE_BINS) -> str:
    """``[0.70, 0.90)``: the bin of a predicted label's probability."""
    bounds = [0.0, *edges, 1.0]
    for lo, hi in zip(bounds, bounds[1:]):
        if p < hi or hi == 1.0:
            return f"[{lo:.2f}, {hi:.2f}{']' if hi == 1.0 else ')'}"
    raise AssertionError(p)


def panel(before: Side, after: Side, confidence: Sequence[float] | None = None, seed: int = 0) -> Panel:
    """Every estimand of the change from ``before`` to ``after`` (the same samples, in the same order)."""
    cb, ca = np.asarray(before.codes, dtype=np.int8), np.asarray(after.codes, dtype=np.int8)
    if cb.shape != ca.shape or len(before.labels) != cb.size or len(after.labels) != ca.size:
        raise ValueError("the two sides of a comparison must cover the same samples")
    n = int(cb.size)
    both = (cb != INVALID) & (ca != INVALID)
    out = {
        VALID: from_paired(paired_test(cb, ca, seed), n),
        ALL: _binary(cb == HIT, ca == HIT, seed, "bootstrap"),
        BOTH_VALID: _binary(cb[both] == HIT, ca[both] == HIT, seed, "bootstrap"),
        LABEL_BALANCED: label_balanced(before, after, seed),
    }
    bins: list[tuple[str, Estimate]] = []
    if confidence is not None:
        conf = np.asarray(confidence, dtype=float)
        if conf.size != n:
            raise ValueError("one confidence per sample")
        names = np.array([confidence_bin(float(x)) for x in conf])
        for name in sorted(set(names)):
            m = names == name
            bins.append((name, from_paired(paired_test(cb[m], ca[m], seed), int(m.sum()))))
    return Panel(out, bins)


def agreement(p: Panel, primary: str = VALID) -> tuple[bool, str]:
    """(whether every estimand's interval points the way the primary's does, which ones disagree and how)."""
    main = p.estimates[primary].direction
    others = [(name, e.direction) for name, e in p.estimates.items() if name != primary and e.difference is not None]
    off = [f"{name}: {d}" for name, d in others if d != main]
    return not off, "; ".join(off)


def fmt_estimate(e: Estimate) -> str:
    """``+0.083 [+0.06, +0.11] p=0.000 (63 vs 13)``."""
    if e.difference is None or e.low is None:
        return "-"
    p = f" p={e.p_value:.3f}" if e.p_value is not None else ""
    disc = f" ({e.discordant[0]} vs {e.discordant[1]})" if e.discordant else ""
    return f"{e.difference:+.3f} [{e.low:+.2f}, {e.high:+.2f}]{p}{disc}"
