"""Bootstrap intervals and paired tests, checked against direct computations."""

import numpy as np
import pytest

from selfexplain.stats import HIT, INVALID, MISS, codes_of, newcombe_ci, paired_test, ratio, ratio_ci


def test_ratio_ignores_invalid_samples():
    c = np.array([HIT, MISS, INVALID, HIT, INVALID], dtype=np.int8)
    assert ratio(c) == pytest.approx(2 / 3)
    assert list(codes_of([True, False, True], [True, None, False])) == [HIT, INVALID, MISS]


def test_interval_contains_value_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.choice([MISS, HIT], size=40)
    large = rng.choice([MISS, HIT], size=4000)
    a, b = ratio_ci(small), ratio_ci(large)
    for ci, codes in ((a, small), (b, large)):
        assert ci.value == pytest.approx((codes == HIT).mean())
        assert ci.low <= ci.value <= ci.high
    assert (b.high - b.low) < (a.high - a.low) / 5
    # The normal approximation of a binomial proportion's interval, for scale.
    p = b.value
    assert b.high - b.low == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / 4000), rel=0.15)


def test_interval_edge_cases():
    assert ratio_ci([INVALID, INVALID]).value is None
    assert ratio_ci([HIT, HIT, INVALID]) == ratio_ci([HIT, HIT])
    all_hit = ratio_ci([HIT] * 5)
    # Not the collapsed "1.000 [1.00, 1.00]": the exact (Clopper-Pearson) interval, 0.025 ** (1/5) below.
    assert (all_hit.value, all_hit.high, all_hit.n, all_hit.method) == (1.0, 1.0, 5, "exact")
    assert all_hit.low == pytest.approx(0.025 ** (1 / 5))
    one = ratio_ci([HIT])
    assert one.low == pytest.approx(0.025) and one.high == 1.0
    assert ratio_ci([HIT, MISS] * 20, seed=3) == ratio_ci([HIT, MISS] * 20, seed=3)  # deterministic


def test_paired_test_detects_a_real_change_and_not_noise():
    rng = np.random.default_rng(1)
    before = rng.choice([INVALID, MISS, HIT], p=[0.3, 0.5, 0.2], size=300)
    after = np.where(rng.random(300) < 0.35, HIT, before)  # 35% of samples become faithful
    r = paired_test(before, after)
    assert r.difference == pytest.approx(ratio(after) - ratio(before))
    assert r.low <= r.difference <= r.high and r.low > 0
    assert r.p_value < 0.01 and r.n_pairs == 300
    same = rng.permutation(before)
    noise = paired_test(before, np.where(rng.random(300) < 0.5, before, same))
    assert noise.p_value > 0.05 or abs(noise.difference) < 0.1
    assert paired_test(before, before).p_value == 1.0


def test_paired_test_without_valid_samples_and_bad_shapes():
    r = paired_test([INVALID, INVALID], [HIT, MISS])
    assert r.before is None and r.after == 0.5 and r.difference is None
    with pytest.raises(ValueError, match="differ in length"):
        paired_test([HIT], [HIT, MISS])


def test_small_counts_use_the_exact_interval_and_large_ones_the_bootstrap():
    assert ratio_ci([HIT, MISS] * 24).method == "exact"  # 48 valid
    assert ratio_ci([HIT, MISS] * 25).method == "bootstrap"  # 50 valid
    from scipy.stats import binomtest

    ci = binomtest(3, 10).proportion_ci(0.95, method="exact")
    got = ratio_ci([HIT] * 3 + [MISS] * 7 + [INVALID] * 5)
    assert (got.low, got.high) == pytest.approx((ci.low, ci.high))


def test_resamples_without_a_valid_sample_are_left_out():
    # Before: one valid (faithful) explanation; after: ten.  Both ratios are 1: no difference.
    before = [HIT] + [INVALID] * 9
    after = [HIT] * 10
    r = paired_test(before, after)
    assert r.difference == 0
    # A resample that misses the one valid "before" sample has no ratio; counted as 0 it would put
    # differences of +1 into the bootstrap (about a third of all resamples).
    assert 0 < r.n_resamples < 9999
    # One valid sample before: the interval is Newcombe's, not the bootstrap's point [0, 0].
    assert r.method == "newcombe" and (r.low, r.high) == pytest.approx(newcombe_ci(1, 1, 10, 10))


def test_newcombe_matches_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, table II: 56/70 vs 48/80, method 10: 0.0524 to 0.3339.
    assert newcombe_ci(48, 80, 56, 70) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def test_a_collapsed_bootstrap_does_not_rule_out_a_rise():
    # The cpu-medium study's table 3 for SmolLM2: its own explanations 0 of 18 valid faithful, the constructed
    # ones 0 of 100.  Every bootstrap resample gives 0: "[0, 0]" would claim any fall is ruled out on 18 samples.
    before = [MISS] * 18 + [INVALID] * 82
    r = paired_test(before, [MISS] * 100)
    assert r.difference == 0 and r.method == "newcombe"
    assert r.low == pytest.approx(-0.1759, abs=1e-4)  # Wilson's upper bound for 0 of 18, negated
    assert r.high == pytest.approx(0.0370, abs=1e-4)  # for 0 of 100
    # Identical outcomes on 20 valid samples: not the point 0 either, but +-the exact bound on a share of
    # disagreeing samples never seen in 20.
    same = paired_test([HIT, MISS] * 10 + [INVALID], [HIT, MISS] * 10 + [INVALID])
    assert same.method == "exact" and same.high == pytest.approx(1 - 0.025 ** (1 / 20)) and same.low == -same.high


def test_few_valid_samples_get_a_p_value_that_agrees_with_their_interval():
    # The cpu-medium study, counterfactual style, untrained against w/ counterfactual on 600 tweets: 2 of 12
    # valid counterfactuals faithful against 1 of 52, 3 samples valid on both sides.  The paired permutation
    # test said p = 0.0003 (it swaps validity too, and the validity differs), beside a Newcombe interval
    # reaching 0; Fisher's exact test on the two proportions says what the interval says.
    before = np.full(600, INVALID, dtype=np.int8)
    after = np.full(600, INVALID, dtype=np.int8)
    before[:12] = [HIT, HIT] + [MISS] * 10
    after[9:61] = [HIT] + [MISS] * 51
    r = paired_test(before, after)
    assert r.method == "newcombe" and r.difference == pytest.approx(1 / 52 - 2 / 12)
    assert r.p_value == pytest.approx(0.0877, abs=1e-4) and r.high > -0.01
    from scipy.stats import fisher_exact

    assert r.p_value == fisher_exact([[2, 10], [1, 51]]).pvalue


def test_large_samples_keep_the_paired_bootstrap():
    rng = np.random.default_rng(2)
    before = rng.choice([MISS, HIT], p=[0.7, 0.3], size=200)
    after = np.where(rng.random(200) < 0.2, HIT, before)
    r = paired_test(before, after)
    assert r.method == "bootstrap"
    # Pairing makes the bootstrap narrower than the independent-samples Newcombe interval.
    lo, hi = newcombe_ci(int((before == HIT).sum()), 200, int((after == HIT).sum()), 200)
    assert r.high - r.low < hi - lo


def test_seeded_change_adds_training_variance_to_the_interval():
    from selfexplain.stats import HIT, INVALID, MISS, seeded_change

    rng = np.random.default_rng(1)
    n = 300
    before = np.where(rng.random(n) < 0.2, HIT, MISS)
    same = np.where(rng.random(n) < 0.4, HIT, MISS)
    one = seeded_change(before, [same])
    three = seeded_change(before, [same, same, same])
    # Identical seeds: no spread, and the same interval as one seed's paired bootstrap (up to resampling noise).
    assert three.spread == 0 and three.changes == [one.mean] * 3
    assert abs(three.low - one.low) < 0.02 and abs(three.high - one.high) < 0.02
    # Seeds that disagree (changes about 0, +0.2, +0.4): the same mean, a far wider interval.
    low, high = np.where(rng.random(n) < 0.2, HIT, MISS), np.where(rng.random(n) < 0.6, HIT, MISS)
    spread = seeded_change(before, [low, same, high])
    assert spread.spread > 0.15
    assert (spread.high - spread.low) > 2 * (one.high - one.low)
    assert spread.mean == pytest.approx(np.mean(spread.changes))
    # Invalid samples are left out of each side's ratio, as everywhere.
    half = np.where(np.arange(n) < n // 2, INVALID, same)
    assert seeded_change(before, [half]).changes[0] == pytest.approx(
        (half == HIT).sum() / (half != INVALID).sum() - (before == HIT).mean())
    with pytest.raises(ValueError):
        seeded_change(before, [same[:10]])
