"""The estimand panel on hand-made outcomes whose answers are worked out by hand."""

import numpy as np
import pytest
from scipy import stats as sps

from selfexplain.estimands import (
    ALL,
    BOTH_VALID,
    FALL,
    LABEL_BALANCED,
    RISE,
    UNCLEAR,
    VALID,
    Side,
    agreement,
    confidence_bin,
    fmt_estimate,
    label_balanced,
    mcnemar,
    panel,
)
from selfexplain.stats import HIT as H
from selfexplain.stats import INVALID as I
from selfexplain.stats import MISS as M


def side(codes, labels):
    return Side(np.array(codes, dtype=np.int8), labels)


# Ten samples.  Before: valid on 4, faithful on 1.  After: valid on 8, faithful on 4.
BEFORE = side([H, M, M, M, I, I, I, I, I, I], ["N"] * 10)
AFTER = side([M, H, M, H, H, H, M, M, I, I], ["N"] * 10)


def test_each_estimand_counts_what_its_name_says():
    p = panel(BEFORE, AFTER)
    valid, every, both = p.estimates[VALID], p.estimates[ALL], p.estimates[BOTH_VALID]
    assert (valid.before, valid.after) == (1 / 4, 4 / 8)  # each side over its own valid samples
    assert (every.before, every.after, every.n) == (1 / 10, 4 / 10, 10)  # invalid counted as not faithful
    # Valid in both: samples 0-3, faithful 1 -> 2; sample 0 lost its flip, samples 1 and 3 gained one.
    assert (both.before, both.after, both.n) == (1 / 4, 2 / 4, 4)
    assert both.discordant == (1, 2)
    assert every.discordant == (1, 4)
    assert every.p_value == pytest.approx(sps.binomtest(1, 5, 0.5).pvalue)


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs():
    before = np.array([True] * 13 + [False] * 63 + [True] * 5 + [False] * 519)
    after = np.array([False] * 13 + [True] * 63 + [True] * 5 + [False] * 519)
    p, counts = mcnemar(before, after)
    assert counts == (13, 63)
    assert p == pytest.approx(sps.binomtest(13, 76, 0.5).pvalue)
    assert p < 1e-7
    assert mcnemar(np.array([True, False]), np.array([True, False])) == (1.0, (0, 0))


def test_label_balanced_weights_each_predicted_label_equally_and_can_turn_the_sign():
    # Before: "N" valid 4 (1 faithful), "P" valid 2 (1): pooled 2/6, balanced (0.25 + 0.5) / 2 = 0.375.
    # After: "N" valid 6 (0 faithful), "P" valid 2 (2): pooled 2/8, balanced (0 + 1) / 2 = 0.5.
    before = side([H, M, M, M, H, M, I, I], ["N", "N", "N", "N", "P", "P", "N", "N"])
    after = side([M, M, M, M, H, H, M, M], ["N", "N", "N", "N", "P", "P", "N", "N"])
    p = panel(before, after)
    assert p.estimates[VALID].difference == pytest.approx(2 / 8 - 2 / 6)
    e = p.estimates[LABEL_BALANCED]
    assert (e.before, e.after, e.difference) == (pytest.approx(0.375), pytest.approx(0.5), pytest.approx(0.125))
    assert e.detail == "N 0.25->0.00; P 0.50->1.00"
    # The label is each side's own prediction: a sample relabelled by training counts under its new label.
    relabelled = side([M, M, M, M, H, H, M, M], ["N", "N", "N", "N", "P", "P", "P", "P"])
    assert label_balanced(before, relabelled).after == pytest.approx((0 + 2 / 4) / 2)


def test_a_label_only_one_side_predicts_validly_is_left_out_of_the_balanced_mean():
    before = side([H, M, I, I], ["N", "N", "P", "P"])  # "P" never valid before
    after = side([M, M, H, H], ["N", "N", "P", "P"])
    e = label_balanced(before, after)
    assert (e.before, e.after) == (0.5, 0.0)  # over "N" alone
    assert e.detail == "N 0.50->0.00"
    none = label_balanced(side([I, I], ["N", "N"]), side([H, M], ["N", "N"]))
    assert none.difference is None and none.detail == "no label valid on both sides"


def test_confidence_bins_are_fixed_and_split_the_samples_by_the_given_confidence():
    assert [confidence_bin(x) for x in (0.5, 0.69999, 0.7, 0.89, 0.9, 1.0)] == [
        "[0.00, 0.70)", "[0.00, 0.70)", "[0.70, 0.90)", "[0.70, 0.90)", "[0.90, 1.00]", "[0.90, 1.00]"]
    conf = [0.55, 0.6, 0.95, 0.99, 0.75, 0.8, 0.97, 0.51, 0.6, 0.92]
    p = panel(BEFORE, AFTER, confidence=conf)
    bins = dict(p.by_confidence)
    assert sorted(bins) == ["[0.00, 0.70)", "[0.70, 0.90)", "[0.90, 1.00]"]
    low = bins["[0.00, 0.70)"]  # samples 0, 1, 7, 8: before valid 0, 1 (1 faithful); after valid 0, 1, 7 (1)
    assert (low.n, low.before, low.after) == (4, 1 / 2, 1 / 3)
    with pytest.raises(ValueError):
        panel(BEFORE, AFTER, confidence=[0.9])


def test_agreement_names_the_estimands_that_point_elsewhere():
    rng = np.random.default_rng(0)
    n = 400
    # Before: valid on a quarter, never faithful.  After: valid on all, faithful on a tenth.  Among all it
    # rises clearly; among valid it rises too.
    before = side(np.where(rng.random(n) < 0.25, M, I), ["N"] * n)
    after = side(np.where(rng.random(n) < 0.1, H, M), ["N"] * n)
    p = panel(before, after)
    assert p.estimates[ALL].direction == RISE and p.estimates[VALID].direction == RISE
    agree, why = agreement(p)
    assert agree and why == ""
    # Nothing faithful on either side: no direction.
    flat = side(np.full(n, M), ["N"] * n)
    fewer = side(np.where(np.arange(n) < 100, M, I), ["N"] * n)
    same = panel(flat, fewer)
    assert same.estimates[VALID].direction == UNCLEAR
    mixed = panel(side(np.where(np.arange(n) < 40, H, M), ["N"] * n),
                  side(np.where(np.arange(n) < 30, H, np.where(np.arange(n) < 60, M, I)), ["N"] * n))
    # Among valid 0.10 -> 0.50 (a rise); among all 0.10 -> 0.075 (a fall or unclear); both-valid 40 -> 30 of 60.
    assert mixed.estimates[VALID].direction == RISE
    assert mixed.estimates[BOTH_VALID].direction in (FALL, UNCLEAR)
    agree, why = agreement(mixed)
    assert not agree and "both-valid" in why and "all" in why


def test_the_shown_form_carries_the_discordant_counts():
    p = panel(BEFORE, AFTER)
    assert fmt_estimate(p.estimates[ALL]).endswith("(1 vs 4)")
    assert fmt_estimate(p.estimates[VALID]).startswith("+0.250 [")
