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
  Below :data:`SMALL` valid samples on either side, or where the bootstrap
  collapses to a point (every valid outcome equal), the interval is Newcombe's
  hybrid score interval instead (:func:`newcombe_ci`): a bootstrap of 18
  all-unfaithful pairs says "[0, 0]" and would rule out any rise, where 18
  samples can only rule out rises above about 0.18; its p-value is then Fisher's
  exact test on the same two proportions, not the permutation test, which swaps
  validity along with the outcome and so, where the valid counts differ widely,
  tests the validity.  Where the two conditions agree on every sample, ±the
  exact bound on the share of samples that could disagree (m valid samples:
  1 - 0.025^(1/m)).

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
    return _bootstrap_mean(flags, seed)


def _bootstrap_mean(v: np.ndarray, seed: int) -> Interval:
    ci = sps.bootstrap(
        (v,),
        np.mean,
        n_resamples=N_RESAMPLES,
        confidence_level=LEVEL,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return Interval(float(v.mean()), float(ci.low), float(ci.high), int(v.size))


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
    method: str = "bootstrap"  # "newcombe" (few valid samples, or a collapsed bootstrap); "exact" (identical)


def newcombe_ci(hits_before: int, n_before: int, hits_after: int, n_after: int) -> tuple[float, float]:
    """95% interval of ``after - before`` for two proportions: Newcombe's (1998) hybrid score method 10.

    Each proportion's Wilson interval, combined by squares.  It treats the two as independent samples,
    which for positively correlated paired outcomes is conservative (wider), never falsely narrow.
    """

    def wilson(k: int, n: int) -> tuple[float, float, float]:
        ci = sps.binomtest(k, n).proportion_ci(LEVEL, method="wilson")
        return k / n, float(ci.low), float(ci.high)

    p1, l1, u1 = wilson(hits_before, n_before)
    p2, l2, u2 = wilson(hits_after, n_after)
    d = p2 - p1
    return d - float(np.hypot(p2 - l2, u1 - p1)), d + float(np.hypot(u2 - p2, p1 - l1))


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
    counts = (int((a == HIT).sum()), int((a != INVALID).sum()), int((b == HIT).sum()), int((b != INVALID).sum()))
    if np.array_equal(a, b):
        # Every sample's two outcomes agree: the difference is 0 unless unseen samples would disagree, and
        # m samples without one disagreement bound that share by the exact (Clopper-Pearson) 1 - 0.025^(1/m).
        bound = 1 - ((1 - LEVEL) / 2) ** (1 / counts[1])
        return PairedResult(ra, rb, d, -bound, bound, 1.0, n, 0, "exact")
    if n < 2:
        return PairedResult(ra, rb, d, *newcombe_ci(*counts), 1.0, n, 0, "newcombe")
    rng = np.random.default_rng(seed)
    # Paired bootstrap: resample samples (both outcomes together); drop resamples without a ratio.
    idx = rng.integers(0, n, size=(N_RESAMPLES, n))
    boot = ratio(b[idx]) - ratio(a[idx])
    boot = boot[~np.isnan(boot)]
    alpha = (1 - LEVEL) / 2
    method = "bootstrap"
    if min(counts[1], counts[3]) < SMALL or boot.size == 0 or boot.min() == boot.max():
        (low, high), method = newcombe_ci(*counts), "newcombe"
        # The permutation test below swaps validity with the outcome, so where one side has far fewer valid
        # samples it tests "the same validity", not "the same faithfulness": 2/12 against 1/52 gave p = 0.0003
        # beside an interval that reached 0.  Fisher's exact test, like the interval, takes the two
        # proportions as independent samples.
        p = float(sps.fisher_exact([[counts[0], counts[1] - counts[0]], [counts[2], counts[3] - counts[2]]]).pvalue)
        return PairedResult(ra, rb, d, low, high, min(p, 1.0), n, int(boot.size), method)
    low, high = float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))
    # Paired permutation: swap each sample's two outcomes with probability 1/2.
    swap = rng.random((N_RESAMPLES, n)) < 0.5
    pa, pb = np.where(swap, b, a), np.where(swap, a, b)
    perm = ratio(pb) - ratio(pa)
    perm = perm[~np.isnan(perm)]
    # The observed assignment is one of the permutations (Phipson & Smyth 2010): p is never 0.
    p = float((1 + np.sum(np.abs(perm) >= abs(d) - 1e-12)) / (1 + perm.size))
    return PairedResult(ra, rb, d, low, high, p, n, int(boot.size), method)


# ---- graded measures: means of per-sample values -----------------------------------


def mean_ci(values: Sequence[float] | np.ndarray, seed: int = 0) -> Interval:
    """The mean with a 95% percentile-bootstrap interval (none for fewer than two values)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Interval(None, None, None, 0)
    value = float(v.mean())
    if v.size < 2 or np.all(v == v[0]):
        return Interval(value, value if v.size > 1 else None, value if v.size > 1 else None, int(v.size))
    return _bootstrap_mean(v, seed)


@dataclass(frozen=True)
class MeanDifference:
    """A paired difference of means (explanation minus its random baseline, sample by sample)."""

    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None  # two-sided sign-flip permutation test
    n: int


def paired_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, seed: int = 0
) -> MeanDifference:
    """mean(a - b) over pairs, its paired-bootstrap interval and a sign-flip permutation p-value."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired values differ in length: {x.shape} vs {y.shape}")
    d = x - y
    n = int(d.size)
    if n == 0:
        return MeanDifference(None, None, None, None, 0)
    mean = float(d.mean())
    if n < 2 or np.all(d == 0):
        return MeanDifference(mean, mean if n > 1 else None, mean if n > 1 else None, 1.0 if n > 1 else None, n)
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, n, size=(N_RESAMPLES, n))].mean(axis=1)
    alpha = (1 - LEVEL) / 2
    signs = np.where(rng.random((N_RESAMPLES, n)) < 0.5, -1.0, 1.0)
    perm = (signs * d).mean(axis=1)
    p = float((1 + np.sum(np.abs(perm) >= abs(mean) - 1e-12)) / (1 + N_RESAMPLES))
    return MeanDifference(mean, float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha)), p, n)


BEATS, DOES_NOT, UNDETERMINED = "beats chance", "does not", "undetermined"
MIN_PAIRS = 10  # fewer pairs than this: no verdict


def verdict(diff: MeanDifference) -> str:
    """Whether explanations beat their random baseline: the paired interval above 0, at or below 0, or across it."""
    if diff.difference is None or diff.n < MIN_PAIRS or diff.low is None or diff.high is None:
        return UNDETERMINED
    if diff.low > 0:
        return BEATS
    if diff.high <= 0:
        return DOES_NOT
    return UNDETERMINED


# ---- power -------------------------------------------------------------------------

POWER = 0.8


def detectable_difference(before: float | None, n_before: int, n_after: int, power: float = POWER) -> float | None:
    """The smallest rise from rate ``before`` that a two-sided 5% test detects with ``power`` at these counts.

    Cohen's h for two proportions: h = (z_{1-α/2} + z_power) * sqrt(1/n1 + 1/n2), turned back into a
    difference of proportions from ``before`` (p2 = sin²(asin √p1 + h/2)).  It treats the two samples
    as independent, which for paired data is conservative.  None where a count is 0; 1 - before where
    even a rise to 1 would not be detected reliably.
    """
    if before is None or n_before <= 0 or n_after <= 0:
        return None
    h = (sps.norm.ppf(1 - (1 - LEVEL) / 2) + sps.norm.ppf(power)) * np.sqrt(1 / n_before + 1 / n_after)
    angle = np.arcsin(np.sqrt(before)) + h / 2
    if angle >= np.pi / 2:
        return float(1 - before)
    return float(np.sin(angle) ** 2 - before)


# ---- many comparisons --------------------------------------------------------------


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (family-wise error); None (no test) stays None and is not counted.

    The k-th smallest of m p-values becomes max over j <= k of min(1, (m - j + 1) p_(j)).
    """
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


# ---- training seeds ----------------------------------------------------------------


@dataclass(frozen=True)
class SeededChange:
    """The change from one condition to a trained one whose training was repeated with several seeds."""

    changes: list[float | None]  # each training seed's change (faithful among valid), the study's own first
    mean: float | None
    spread: float | None  # between-seed standard deviation (ddof 1)
    low: float | None  # two-stage bootstrap: samples, then seeds, resampled
    high: float | None
    n: int  # samples


def seeded_change(
    before: Sequence[int] | np.ndarray, afters: Sequence[Sequence[int] | np.ndarray], seed: int = 0
) -> SeededChange:
    """Mean change over training seeds with an interval that includes training variance.

    Every model was evaluated on the same samples (``afters[k][i]`` and ``before[i]`` are one sample).  The
    interval is a two-stage bootstrap: each resample draws the samples with replacement (the same draw for
    every model, as they share them) and then the seeds with replacement, and takes the mean change over the
    drawn seeds; percentile bounds.  With one seed it is the paired bootstrap of that seed's change.  Few seeds
    make the seed stage coarse (3 seeds: 10 distinct multisets), so the spread is shown beside it.
    """
    b = np.asarray(before, dtype=np.int8)
    a = np.stack([np.asarray(x, dtype=np.int8) for x in afters])
    if a.shape[1:] != b.shape:
        raise ValueError(f"every model needs the same samples: {a.shape[1:]} vs {b.shape}")
    n, k = int(b.size), int(a.shape[0])
    rb = ratio(b)
    changes = [None if np.isnan(x := float(ratio(m) - rb)) else x for m in a]
    known = [c for c in changes if c is not None]
    if not known or n < 2:
        return SeededChange(changes, None, None, None, None, n)
    mean = float(np.mean(known))
    spread = float(np.std(known, ddof=1)) if len(known) > 1 else None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(N_RESAMPLES, n))
    d = ratio(a[:, idx]) - ratio(b[idx])[None, :]  # (seeds, resamples)
    pick = rng.integers(0, k, size=(N_RESAMPLES, k))
    with np.errstate(invalid="ignore"):
        boot = np.nanmean(d[pick, np.arange(N_RESAMPLES)[:, None]], axis=1) if k > 1 else d[0]
    boot = boot[~np.isnan(boot)]
    if boot.size == 0:
        return SeededChange(changes, mean, spread, None, None, n)
    alpha = (1 - LEVEL) / 2
    return SeededChange(changes, mean, spread, float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha)), n)
