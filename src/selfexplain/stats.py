"""Statistics the paper does not report: bootstrap intervals and paired tests.

Faithfulness is a ratio over the *valid* explanations only, and the set of
valid samples differs between two models evaluated on the same inputs.  So each
sample is coded as one of three outcomes (:data:`INVALID`, :data:`MISS`,
:data:`HIT`); faithfulness is ``#HIT / #(MISS or HIT)``.  Accuracy uses the same
coding with every sample valid (``HIT`` = correct), so one set of functions
serves both.

* :func:`ratio_ci` is a percentile bootstrap over the samples (scipy).
* :func:`paired_test` compares two conditions evaluated on the *same* samples:
  the difference, its paired-bootstrap interval, and a two-sided paired
  permutation test (each sample's two outcomes swapped at random), which stays
  exact in spirit when the valid sets differ.

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


def ratio(codes: np.ndarray, axis: int = -1) -> np.ndarray:
    """#HIT / #(MISS or HIT) along ``axis``; 0 where nothing is valid (only reached inside resamples)."""
    hits = (codes == HIT).sum(axis=axis)
    valid = (codes != INVALID).sum(axis=axis)
    return hits / np.maximum(valid, 1)


def codes_of(valid: Sequence[bool], hit: Sequence[bool | None]) -> np.ndarray:
    return np.array([INVALID if not v else (HIT if h else MISS) for v, h in zip(valid, hit)], dtype=np.int8)


@dataclass(frozen=True)
class Interval:
    value: float | None
    low: float | None
    high: float | None
    n: int  # samples the value is a ratio over


def ratio_ci(codes: Sequence[int] | np.ndarray, seed: int = 0) -> Interval:
    """The ratio with a 95% percentile-bootstrap interval over the valid samples."""
    c = np.asarray(codes, dtype=np.int8)
    flags = (c[c != INVALID] == HIT).astype(float)
    if flags.size == 0:
        return Interval(None, None, None, 0)
    value = float(flags.mean())
    if flags.size == 1 or flags.min() == flags.max():
        # Every resample equals the sample: the bootstrap interval collapses to the value.
        return Interval(value, value, value, int(flags.size))
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

    def diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return ratio(y, axis) - ratio(x, axis)

    d = rb - ra
    if n < 2 or np.array_equal(a, b):
        return PairedResult(ra, rb, d, d, d, 1.0, n)
    boot = sps.bootstrap((a, b), diff, paired=True, n_resamples=N_RESAMPLES, confidence_level=LEVEL,
                         method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    perm = sps.permutation_test((a, b), diff, permutation_type="samples", n_resamples=N_RESAMPLES,
                                alternative="two-sided", vectorized=True, rng=np.random.default_rng(seed))
    ci = boot.confidence_interval
    return PairedResult(ra, rb, d, float(ci.low), float(ci.high), float(perm.pvalue), n)
