"""Statistics the paper does not report: intervals and paired tests.

Faithfulness is a ratio over the *valid* explanations only, and the set of
valid samples differs between two models evaluated on the same inputs.  So each
sample is coded as one of three outcomes (:data:`INVALID`, :data:`MISS`,
:data:`HIT`); faithfulness is ``#HIT / #(MISS or HIT)``.  Accuracy uses the same
coding with every sample valid (``HIT`` = correct), so one set of functions
serves both.

* :func:`ratio_ci` is a percentile bootstrap over the valid samples (scipy);
  below :data:`SMALL` valid samples, or where every outcome is equal (where a
  bootstrap collapses to a point), the exact Clopper-Pearson interval instead.
* :func:`paired_test` compares two conditions evaluated on the *same* samples:
  the difference, its paired-bootstrap interval, and a two-sided paired
  permutation test (each sample's two outcomes swapped at random).  A resample
  in which either condition has no valid sample has no ratio: it is left out
  (the statistic is conditioned on both ratios existing), never counted as 0.

Every function is deterministic for a given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps

INVALID, MISS, HIT = 0, 1, 2
N_RESAMPLES = 9999
LEVEL = 0.95
SMALL = 50  # fewer valid samples than this: exact intervals, and tables mark the cell


def ratio(codes: np.ndarray, axis: int = -1) -> np.ndarray:
    """#HIT / #(MISS or HIT) along ``axis``; NaN where nothing is valid."""
    hits = (codes == HIT).sum(axis=axis)
    valid = (codes != INVALID).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid > 0, hits / np.maximum(valid, 1), np.nan)


def codes_of(valid: Sequence[bool], hit: Sequence[bool | None]) -> np.ndarray:
    return np.array([INVALID if not v else (HIT if h else MISS) for v, h in zip(valid, hit)], dtype=np.int8)


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None
    n: int  # samples the value is a ratio over
    method: str = "bootstrap"  # or "exact" (Clopper-Pearson)


def ratio_ci(codes: Sequence[int] | np.ndarray, seed: int = 0) -> Interval:
    """The ratio with a 95% interval over the valid samples (bootstrap, or exact when small or degenerate)."""
    c = np.asarray(codes, dtype=np.int8)
    flags = (c[c != INVALID] == HIT).astype(float)
    if flags.size == 0:
        return Interval(None, None, None, 0)
    value = float(flags.mean())
    if flags.size < SMALL or flags.min() == flags.max():
        # A bootstrap of few samples is too narrow, and of equal outcomes collapses to a point.
        ci = sps.binomtest(int(flags.sum()), int(flags.size)).proportion_ci(LEVEL, method="exact")
        return Interval(value, float(ci.low), float(ci.high), int(flags.size), "exact")
    res = sps.bootstrap((flags,), np.mean, n_resamples=N_RESAMPLES, confidence_level=LEVEL,
                        method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return Interval(value, float(ci.low), float(ci.high), int(flags.size))


@dataclass(frozen=True)
class PairedResult:
    before: float | None
    after: float | None
    difference: float | None  # after - before
    low: float | None  # paired-bootstrap 95% interval of the difference
    high: float | None
    p_value: float | None  # two-sided paired permutation test
    n_pairs: int  # samples present in both conditions
    n_resamples: int = 0  # bootstrap resamples in which both ratios existed


def paired_test(before: Sequence[int] | np.ndarray, after: Sequence[int] | np.ndarray, seed: int = 0) -> PairedResult:
    """Compare two conditions on the same samples (``before[i]`` and ``after[i]`` are one sample)."""
    a, b = np.asarray(before, dtype=np.int8), np.asarray(after, dtype=np.int8)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in length: {a.shape} vs {b.shape}")
    n = int(a.size)
    va, vb = (a != INVALID).any(), (b != INVALID).any()
    ra = float(ratio(a)) if va else None
    rb = float(ratio(b)) if vb else None
    if ra is None or rb is None:
        return PairedResult(ra, rb, None, None, None, None, n)
    d = rb - ra
    if n < 2 or np.array_equal(a, b):
        return PairedResult(ra, rb, d, d, d, 1.0, n)
    rng = np.random.default_rng(seed)
    # Paired bootstrap: resample samples (both outcomes together); drop resamples without a ratio.
    idx = rng.integers(0, n, size=(N_RESAMPLES, n))
    boot = ratio(b[idx]) - ratio(a[idx])
    boot = boot[~np.isnan(boot)]
    alpha = (1 - LEVEL) / 2
    low, high = (float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))) if boot.size else (None, None)
    # Paired permutation: swap each sample's two outcomes with probability 1/2.
    swap = rng.random((N_RESAMPLES, n)) < 0.5
    pa, pb = np.where(swap, b, a), np.where(swap, a, b)
    perm = ratio(pb) - ratio(pa)
    perm = perm[~np.isnan(perm)]
    # The observed assignment is one of the permutations (Phipson & Smyth 2010): p is never 0.
    p = float((1 + np.sum(np.abs(perm) >= abs(d) - 1e-12)) / (1 + perm.size))
    return PairedResult(ra, rb, d, low, high, p, n, int(boot.size))
